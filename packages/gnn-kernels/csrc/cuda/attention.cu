// CUDA version of csrc/cpu/attention.cpp: fused attention aggregation for
// GAT-style layers, forward and backward.
//
// For each receiving node i (a CSR row) and head h:
//   s[e, h]     = leaky_relu(a_src[col[e], h] + a_dst[i, h] + a_edge[e, h])
//   alpha[e, h] = softmax over the entries e of row i of s[., h]
//   out[i, h,:] = sum_e alpha[e, h] * x[col[e], h, :]
// Only [E, H] scores are stored, never an [E, H, C] tensor.
//
// One warp per receiving row. Forward: for each head, the lanes split the
// row's entries for the max pass and the exp/sum pass (warp reductions), then
// the lanes split the features for the weighted sum, each output element
// accumulated over the entries in CSR order as on the CPU. Masked entries get
// alpha 0 (a fully masked row: alpha 0, out 0). Backward: per receiving row and
// head, a warp-reduced dot product <grad_out[i, h], x[col[e], h]> per entry, then
// the softmax and leaky-relu backward (grad_score) and its row sum (grad_a_dst);
// then one warp per sender over the transposed pattern for grad_x and grad_a_src.
#include "common.cuh"

namespace gnn_kernels {
namespace gpu {

namespace {

void check_attention_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& a_src, const Tensor& a_dst,
                            const std::optional<Tensor>& a_edge, const Tensor& x, const CudaContext& ctx) {
  check_cuda_contiguous(a_src, "a_src", ctx.device());
  check_cuda_contiguous(a_dst, "a_dst", ctx.device());
  check_cuda_contiguous(x, "x", ctx.device());
  STD_TORCH_CHECK(x.dim() == 3, "gnn_kernels::attention: 'x' must be [N, H, C]");
  const int64_t heads = x.size(1);
  STD_TORCH_CHECK(a_src.dim() == 2 && a_src.size(0) == x.size(0) && a_src.size(1) == heads,
                  "gnn_kernels::attention: 'a_src' must be [N, H]");
  STD_TORCH_CHECK(a_dst.dim() == 2 && a_dst.size(0) == rowptr.numel() - 1 && a_dst.size(1) == heads,
                  "gnn_kernels::attention: 'a_dst' must be [M, H]");
  STD_TORCH_CHECK(a_src.scalar_type() == x.scalar_type() && a_dst.scalar_type() == x.scalar_type(),
                  "gnn_kernels::attention: dtypes must match");
  if (a_edge.has_value()) {
    check_cuda_contiguous(*a_edge, "a_edge", ctx.device());
    STD_TORCH_CHECK(a_edge->dim() == 2 && a_edge->size(0) == col.numel() && a_edge->size(1) == heads,
                    "gnn_kernels::attention: 'a_edge' must be [E, H]");
    STD_TORCH_CHECK(a_edge->scalar_type() == x.scalar_type(), "gnn_kernels::attention: dtypes must match");
  }
  check_csr(rowptr, col, x.size(0), ctx);
}

template <typename scalar_t>
__global__ void attention_forward_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                         const scalar_t* __restrict__ sp, const scalar_t* __restrict__ dp,
                                         const scalar_t* __restrict__ ep, const bool* __restrict__ mk,
                                         const scalar_t* __restrict__ xp, scalar_t* __restrict__ op,
                                         scalar_t* __restrict__ alp, int64_t m, int64_t heads, int64_t channels,
                                         scalar_t slope) {
  const int64_t row_size = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {  // warp-uniform loop
    const int64_t lo = rp[i], hi = rp[i + 1];
    if (lo == hi) continue;  // out stays 0 (zero-initialized)
    for (int64_t h = 0; h < heads; ++h) {
      // pass 1: raw scores (leaky-relu applied) and their maximum
      scalar_t mx = -std::numeric_limits<scalar_t>::infinity();
      for (int64_t k = lo + lane; k < hi; k += kWarp) {
        scalar_t s = sp[col[k] * heads + h] + dp[i * heads + h] + (ep ? ep[k * heads + h] : scalar_t(0));
        s = s > 0 ? s : s * slope;
        if (mk != nullptr && mk[k]) s = -std::numeric_limits<scalar_t>::infinity();
        alp[k * heads + h] = s;
        mx = s > mx ? s : mx;
      }
      mx = warp_max(mx);
      if (mx == -std::numeric_limits<scalar_t>::infinity()) mx = 0;  // all masked: alpha = 0
      // pass 2: exponentials and their sum (each lane touches only its own entries)
      scalar_t sum = 0;
      for (int64_t k = lo + lane; k < hi; k += kWarp) {
        const scalar_t v = device_exp(alp[k * heads + h] - mx);
        alp[k * heads + h] = v;
        sum += v;
      }
      sum = warp_sum(sum);
      const scalar_t inv = scalar_t(1) / (sum + scalar_t(1e-16));
      for (int64_t k = lo + lane; k < hi; k += kWarp) alp[k * heads + h] = alp[k * heads + h] * inv;
    }
    __syncwarp();  // every lane reads every alpha of the row below
    scalar_t* o = op + i * row_size;
    for (int64_t f = lane; f < row_size; f += kWarp) {
      const int64_t h = f / channels;
      scalar_t acc = 0;
      for (int64_t k = lo; k < hi; ++k) acc += alp[k * heads + h] * xp[col[k] * row_size + f];
      o[f] = acc;
    }
  }
}

template <typename scalar_t>
__global__ void attention_backward_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                          const scalar_t* __restrict__ sp, const scalar_t* __restrict__ dp,
                                          const scalar_t* __restrict__ ep, const scalar_t* __restrict__ xp,
                                          const scalar_t* __restrict__ alp, const scalar_t* __restrict__ gp,
                                          const scalar_t* __restrict__ gap, scalar_t* __restrict__ gr,
                                          scalar_t* __restrict__ gd, int64_t m, int64_t heads, int64_t channels,
                                          scalar_t slope) {
  const int64_t row_size = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {  // warp-uniform loop
    const int64_t lo = rp[i], hi = rp[i + 1];
    const scalar_t* g = gp + i * row_size;
    for (int64_t h = 0; h < heads; ++h) {
      // d loss / d alpha[e, h] = <grad_out[i, h], x[col[e], h]> (+ grad_alpha), kept in gr for now
      scalar_t dot = 0;  // identical in every lane (butterfly reduction)
      for (int64_t k = lo; k < hi; ++k) {
        const scalar_t* xr = xp + col[k] * row_size;
        scalar_t acc = 0;
        for (int64_t f = lane; f < channels; f += kWarp) acc += g[h * channels + f] * xr[h * channels + f];
        acc = warp_sum(acc);
        if (gap) acc += gap[k * heads + h];
        if (lane == 0) gr[k * heads + h] = acc;
        dot += acc * alp[k * heads + h];
      }
      __syncwarp();  // lane 0's writes of gr are read by every lane below
      // softmax backward, then leaky-relu backward; their row sum is grad_a_dst
      scalar_t row_sum = 0;
      for (int64_t k = lo + lane; k < hi; k += kWarp) {
        const scalar_t gs = alp[k * heads + h] * (gr[k * heads + h] - dot);
        const scalar_t raw =
            sp[col[k] * heads + h] + dp[i * heads + h] + (ep ? ep[k * heads + h] : scalar_t(0));
        const scalar_t v = raw > 0 ? gs : gs * slope;
        gr[k * heads + h] = v;
        row_sum += v;
      }
      row_sum = warp_sum(row_sum);
      if (lane == 0) gd[i * heads + h] = row_sum;
    }
  }
}

// One warp per sender j over the transposed pattern (t_col: receivers, t_perm: CSR positions):
// grad_x[j, h, :] = sum alpha[e, h] * grad_out[i, h, :] and grad_a_src[j, h] = sum grad_score[e, h].
template <typename scalar_t>
__global__ void attention_sender_grad_kernel(const int64_t* __restrict__ trp, const int64_t* __restrict__ tc,
                                             const int64_t* __restrict__ tp, const scalar_t* __restrict__ alp,
                                             const scalar_t* __restrict__ gp, const scalar_t* __restrict__ gr,
                                             scalar_t* __restrict__ gx, scalar_t* __restrict__ gs, int64_t n,
                                             int64_t heads, int64_t channels) {
  const int64_t row_size = heads * channels;
  const int lane = lane_id();
  for (int64_t j = global_warp(); j < n; j += warp_stride()) {  // warp-uniform loop
    const int64_t lo = trp[j], hi = trp[j + 1];
    for (int64_t f = lane; f < row_size; f += kWarp) {
      const int64_t h = f / channels;
      scalar_t acc = 0;
      for (int64_t k = lo; k < hi; ++k) acc += alp[tp[k] * heads + h] * gp[tc[k] * row_size + f];
      gx[j * row_size + f] = acc;
    }
    for (int64_t h = 0; h < heads; ++h) {
      scalar_t sum = 0;
      for (int64_t k = lo + lane; k < hi; k += kWarp) sum += gr[tp[k] * heads + h];
      sum = warp_sum(sum);
      if (lane == 0) gs[j * heads + h] = sum;
    }
  }
}

}  // namespace

// t_rowptr/t_col/t_perm: the transposed pattern, used only by the backward formula.
// mask: optional bool [E] in CSR order (entries with zero attention); alpha is returned in CSR order.
std::tuple<Tensor, Tensor> attention_forward(Tensor rowptr, Tensor col, Tensor a_src, Tensor a_dst,
                                             std::optional<Tensor> a_edge, std::optional<Tensor> mask, Tensor x,
                                             double negative_slope, std::optional<Tensor> /*t_rowptr*/,
                                             std::optional<Tensor> /*t_col*/,
                                             std::optional<Tensor> /*t_perm*/) {
  check_cuda_tensor(x, "x");
  CudaContext ctx(x);
  check_attention_inputs(rowptr, col, a_src, a_dst, a_edge, x, ctx);
  const int64_t m = rowptr.numel() - 1, heads = x.size(1), channels = x.size(2), e = col.numel();
  if (mask.has_value()) {
    check_cuda_contiguous(*mask, "mask", ctx.device());
    STD_TORCH_CHECK(mask->scalar_type() == ScalarType::Bool && mask->dim() == 1 && mask->numel() == e,
                    "gnn_kernels::attention: 'mask' must be a bool [E] tensor");
  }
  const bool* mk = mask.has_value() ? static_cast<const bool*>(mask->const_data_ptr()) : nullptr;
  Tensor out = torch::stable::new_zeros(x, {m, heads, channels});
  Tensor alpha = torch::stable::new_empty(x, {e, heads});
  if (m == 0 || e == 0 || heads == 0) return std::make_tuple(out, alpha);
  dispatch_float(x.scalar_type(), "attention_forward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ep = a_edge.has_value() ? a_edge->const_data_ptr<scalar_t>() : nullptr;
    attention_forward_kernel<scalar_t><<<grid_warps(m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), a_src.const_data_ptr<scalar_t>(),
        a_dst.const_data_ptr<scalar_t>(), ep, mk, x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
        alpha.mutable_data_ptr<scalar_t>(), m, heads, channels, scalar_t(negative_slope));
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(out, alpha);
}

// Gradients (grad_x [N, H, C], grad_a_src [N, H], grad_a_dst [M, H], grad_score [E, H] in CSR
// order = the gradient of a_edge), as on the CPU. alpha (CSR order) is 0 on masked entries.
std::tuple<Tensor, Tensor, Tensor, Tensor> attention_backward(
    Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor t_perm, Tensor a_src, Tensor a_dst,
    std::optional<Tensor> a_edge, Tensor x, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha,
    double negative_slope) {
  check_cuda_tensor(x, "x");
  CudaContext ctx(x);
  check_attention_inputs(rowptr, col, a_src, a_dst, a_edge, x, ctx);
  check_cuda_contiguous(alpha, "alpha", ctx.device());
  check_cuda_contiguous(grad_out, "grad_out", ctx.device());
  const int64_t m = rowptr.numel() - 1, n = x.size(0), heads = x.size(1), channels = x.size(2), e = col.numel();
  STD_TORCH_CHECK(t_rowptr.numel() == n + 1 && t_col.numel() == e && t_perm.numel() == e,
                  "gnn_kernels::attention_backward: the transposed pattern must have N + 1 offsets and E entries");
  check_csr(t_rowptr, t_col, m, ctx);
  check_index(t_perm, e, "t_perm", ctx);
  STD_TORCH_CHECK(alpha.dim() == 2 && alpha.size(0) == e && alpha.size(1) == heads,
                  "gnn_kernels::attention_backward: 'alpha' must be [E, H]");
  STD_TORCH_CHECK(grad_out.dim() == 3 && grad_out.size(0) == m && grad_out.size(1) == heads &&
                      grad_out.size(2) == channels,
                  "gnn_kernels::attention_backward: 'grad_out' must be [M, H, C]");
  STD_TORCH_CHECK(alpha.scalar_type() == x.scalar_type() && grad_out.scalar_type() == x.scalar_type(),
                  "gnn_kernels::attention_backward: dtypes must match");
  if (grad_alpha.has_value()) {
    check_cuda_contiguous(*grad_alpha, "grad_alpha", ctx.device());
    STD_TORCH_CHECK(grad_alpha->dim() == 2 && grad_alpha->size(0) == e && grad_alpha->size(1) == heads,
                    "gnn_kernels::attention_backward: 'grad_alpha' must be [E, H]");
    STD_TORCH_CHECK(grad_alpha->scalar_type() == x.scalar_type(),
                    "gnn_kernels::attention_backward: dtypes must match");
  }
  Tensor grad_x = torch::stable::new_zeros(x, {n, heads, channels});
  Tensor grad_src = torch::stable::new_zeros(x, {n, heads});
  Tensor grad_dst = torch::stable::new_zeros(x, {m, heads});
  Tensor grad_score = torch::stable::new_empty(x, {e, heads});
  if (m == 0 || n == 0 || heads == 0) return std::make_tuple(grad_x, grad_src, grad_dst, grad_score);
  dispatch_float(x.scalar_type(), "attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ep = a_edge.has_value() ? a_edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    attention_backward_kernel<scalar_t><<<grid_warps(m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), a_src.const_data_ptr<scalar_t>(),
        a_dst.const_data_ptr<scalar_t>(), ep, x.const_data_ptr<scalar_t>(), alpha.const_data_ptr<scalar_t>(),
        grad_out.const_data_ptr<scalar_t>(), gap, grad_score.mutable_data_ptr<scalar_t>(),
        grad_dst.mutable_data_ptr<scalar_t>(), m, heads, channels, scalar_t(negative_slope));
    GNN_CUDA_LAUNCH_CHECK();
    attention_sender_grad_kernel<scalar_t><<<grid_warps(n), kThreads, 0, ctx.stream()>>>(
        t_rowptr.const_data_ptr<int64_t>(), t_col.const_data_ptr<int64_t>(), t_perm.const_data_ptr<int64_t>(),
        alpha.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
        grad_score.const_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(),
        grad_src.mutable_data_ptr<scalar_t>(), n, heads, channels);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(grad_x, grad_src, grad_dst, grad_score);
}

}  // namespace gpu
}  // namespace gnn_kernels
