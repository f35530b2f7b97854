// CUDA version of csrc/cpu/dot_attention.cpp: fused dot-product attention
// (TransformerConv), forward and backward.
//
// For each receiving node i (a CSR row), head h and entry k = (j -> i):
//   s[k, h]      = scale * <query[i, h, :], key[j, h, :] + edge[k, h, :]>
//   alpha[k, h]  = softmax over the entries of row i of s[., h]
//   out[i, h, :] = sum_k alpha[k, h] * (value[j, h, :] + edge[k, h, :])
// edge is optional and given in CSR order. Only [E, H] tensors are formed
// (alpha, and the score gradient dS in backward).
//
// One warp per receiving row, as in attention.cu. Forward: for each head, the
// lanes split the channels of each entry's dot product (warp reduction) and
// lane 0 stores the score in alpha; the row softmax runs over the stored
// scores (fused::softmax_row_head: no online rescaling is needed once the
// row's maximum is known); then the lanes split the H * C features for the
// weighted sum, each output element accumulated over the entries in CSR order.
//
// Backward, without atomics (the CPU formula):
//   row pass (per i):  dS[k, h] = alpha[k, h] * (<g_i, value_j + edge_k> + ga[k, h] - <g_i, out_i>
//                                               - sum_row alpha * ga),
//                      grad_query[i] = scale * sum_k dS[k] (key_j + edge_k),
//                      grad_edge[k]  = alpha[k] g_i + scale dS[k] query_i;
//   column pass over the transposed pattern (one warp per sending node j):
//                      grad_key[j]   = scale * sum_k dS[k] query_i,
//                      grad_value[j] = sum_k alpha[k] g_i.
#include "fused_attention.cuh"

namespace gnn_kernels {
namespace gpu {

namespace {

constexpr const char* kOp = "dot_attention";

struct DotShapes {
  int64_t m, n, e, heads, channels;
};

// The checks of the CPU check_dot_inputs, in the same order and with the same messages.
DotShapes check_dot_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& query, const Tensor& key,
                           const Tensor& value, const std::optional<Tensor>& edge, const CudaContext& ctx) {
  check_cuda_contiguous(query, "query", ctx.device());
  check_cuda_contiguous(key, "key", ctx.device());
  STD_TORCH_CHECK(query.dim() == 3 && key.dim() == 3, "gnn_kernels::dot_attention: 'query' and 'key' must be 3-D");
  STD_TORCH_CHECK(fused::is_float_type(query.scalar_type()), "gnn_kernels::dot_attention: only float32/float64");
  DotShapes s{rowptr.numel() - 1, key.size(0), col.numel(), query.size(1), query.size(2)};
  check_long(rowptr, "rowptr", ctx.device());
  fused::check_hc(query, kOp, "query", s.m, s.heads, s.channels, query.scalar_type(), ctx);
  fused::check_hc(key, kOp, "key", s.n, s.heads, s.channels, query.scalar_type(), ctx);
  fused::check_hc(value, kOp, "value", s.n, s.heads, s.channels, query.scalar_type(), ctx);
  if (edge.has_value()) fused::check_hc(*edge, kOp, "edge", s.e, s.heads, s.channels, query.scalar_type(), ctx);
  check_csr(rowptr, col, s.n, ctx);
  return s;
}

template <typename scalar_t>
__global__ void dot_attention_forward_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                             const scalar_t* __restrict__ qp, const scalar_t* __restrict__ kp,
                                             const scalar_t* __restrict__ vp, const scalar_t* __restrict__ ep,
                                             scalar_t* __restrict__ op, scalar_t* __restrict__ alp, int64_t m,
                                             int64_t heads, int64_t channels, scalar_t scale) {
  const int64_t hc = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {  // warp-uniform loop
    const int64_t lo = rp[i], hi = rp[i + 1];
    if (lo == hi) continue;  // out stays 0 (zero-initialized)
    const scalar_t* q = qp + i * hc;
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t* qh = q + h * channels;
      scalar_t mx = -std::numeric_limits<scalar_t>::infinity();  // identical in every lane
      for (int64_t k = lo; k < hi; ++k) {
        const scalar_t* kh = kp + col[k] * hc + h * channels;
        scalar_t acc = 0;
        if (ep != nullptr) {
          const scalar_t* eh = ep + k * hc + h * channels;
          for (int64_t f = lane; f < channels; f += kWarp) acc += qh[f] * (kh[f] + eh[f]);
        } else {
          for (int64_t f = lane; f < channels; f += kWarp) acc += qh[f] * kh[f];
        }
        const scalar_t score = warp_sum(acc) * scale;
        if (lane == 0) alp[k * heads + h] = score;
        mx = score > mx ? score : mx;  // like the CPU running max: a NaN score never becomes the max
      }
      fused::softmax_row_head(alp, lo, hi, heads, h, mx);
    }
    __syncwarp();  // every lane reads every alpha of the row below
    scalar_t* o = op + i * hc;
    for (int64_t f = lane; f < hc; f += kWarp) {
      const int64_t h = f / channels;
      scalar_t acc = 0;
      if (ep != nullptr) {
        for (int64_t k = lo; k < hi; ++k) acc += alp[k * heads + h] * (vp[col[k] * hc + f] + ep[k * hc + f]);
      } else {
        for (int64_t k = lo; k < hi; ++k) acc += alp[k * heads + h] * vp[col[k] * hc + f];
      }
      o[f] = acc;
    }
  }
}

// Row pass of the backward: dS (into dsp, [E, H]), grad_query and grad_edge.
template <typename scalar_t>
__global__ void dot_attention_row_grad_kernel(
    const int64_t* __restrict__ rp, const int64_t* __restrict__ col, const scalar_t* __restrict__ qp,
    const scalar_t* __restrict__ kp, const scalar_t* __restrict__ vp, const scalar_t* __restrict__ ep,
    const scalar_t* __restrict__ outp, const scalar_t* __restrict__ alp, const scalar_t* __restrict__ gp,
    const scalar_t* __restrict__ gap, scalar_t* __restrict__ dsp, scalar_t* __restrict__ gqp,
    scalar_t* __restrict__ gep, int64_t m, int64_t heads, int64_t channels, scalar_t scale) {
  const int64_t hc = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {  // warp-uniform loop
    const int64_t lo = rp[i], hi = rp[i + 1];
    if (lo == hi) continue;  // grad_query stays 0; the row has no entries
    const scalar_t* g = gp + i * hc;
    const scalar_t* o = outp + i * hc;
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t* gh = g + h * channels;
      // sum_k alpha[k] dalpha[k] = <g_i, out_i> (+ alpha . ga), identical in every lane
      scalar_t base = 0;
      for (int64_t f = lane; f < channels; f += kWarp) base += gh[f] * o[h * channels + f];
      base = warp_sum(base);
      if (gap != nullptr) {
        scalar_t extra = 0;
        for (int64_t k = lo + lane; k < hi; k += kWarp) extra += alp[k * heads + h] * gap[k * heads + h];
        base += warp_sum(extra);
      }
      for (int64_t k = lo; k < hi; ++k) {
        const scalar_t* vh = vp + col[k] * hc + h * channels;
        scalar_t acc = 0;
        if (ep != nullptr) {
          const scalar_t* eh = ep + k * hc + h * channels;
          for (int64_t f = lane; f < channels; f += kWarp) acc += gh[f] * (vh[f] + eh[f]);
        } else {
          for (int64_t f = lane; f < channels; f += kWarp) acc += gh[f] * vh[f];
        }
        scalar_t dalpha = warp_sum(acc);
        if (gap != nullptr) dalpha += gap[k * heads + h];
        if (lane == 0) dsp[k * heads + h] = alp[k * heads + h] * (dalpha - base);
      }
    }
    __syncwarp();  // lane 0's writes of dS are read by every lane below
    const scalar_t* q = qp + i * hc;
    for (int64_t f = lane; f < hc; f += kWarp) {
      const int64_t h = f / channels;
      scalar_t acc = 0;
      if (ep != nullptr) {
        for (int64_t k = lo; k < hi; ++k) {
          const scalar_t w = scale * dsp[k * heads + h];
          acc += w * (kp[col[k] * hc + f] + ep[k * hc + f]);
          gep[k * hc + f] = alp[k * heads + h] * g[f] + w * q[f];
        }
      } else {
        for (int64_t k = lo; k < hi; ++k) acc += (scale * dsp[k * heads + h]) * kp[col[k] * hc + f];
      }
      gqp[i * hc + f] = acc;
    }
  }
}

// Column pass: one warp per sender j over the transposed pattern (t_col: receivers, t_perm: CSR
// positions), lanes over the features; grad_key and grad_value summed in transposed order.
template <typename scalar_t>
__global__ void dot_attention_sender_grad_kernel(const int64_t* __restrict__ trp, const int64_t* __restrict__ tc,
                                                 const int64_t* __restrict__ tp, const scalar_t* __restrict__ qp,
                                                 const scalar_t* __restrict__ gp, const scalar_t* __restrict__ alp,
                                                 const scalar_t* __restrict__ dsp, scalar_t* __restrict__ gkp,
                                                 scalar_t* __restrict__ gvp, int64_t n, int64_t heads,
                                                 int64_t channels, scalar_t scale) {
  const int64_t hc = heads * channels;
  const int lane = lane_id();
  for (int64_t j = global_warp(); j < n; j += warp_stride()) {  // warp-uniform loop
    const int64_t lo = trp[j], hi = trp[j + 1];
    for (int64_t f = lane; f < hc; f += kWarp) {
      const int64_t h = f / channels;
      scalar_t acc_key = 0, acc_value = 0;
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t k = tp[p], i = tc[p];
        acc_key += (scale * dsp[k * heads + h]) * qp[i * hc + f];
        acc_value += alp[k * heads + h] * gp[i * hc + f];
      }
      gkp[j * hc + f] = acc_key;
      gvp[j * hc + f] = acc_value;
    }
  }
}

}  // namespace

// t_rowptr/t_col/t_perm: the transposed pattern, only carried for the backward formula.
std::tuple<Tensor, Tensor> dot_attention_forward(Tensor rowptr, Tensor col, Tensor query, Tensor key, Tensor value,
                                                 std::optional<Tensor> edge, double scale,
                                                 std::optional<Tensor> /*t_rowptr*/,
                                                 std::optional<Tensor> /*t_col*/,
                                                 std::optional<Tensor> /*t_perm*/) {
  check_cuda_tensor(query, "query");
  CudaContext ctx(query);
  const DotShapes s = check_dot_inputs(rowptr, col, query, key, value, edge, ctx);
  const int64_t heads = s.heads, channels = s.channels;
  Tensor out = torch::stable::new_zeros(query, {s.m, heads, channels});
  Tensor alpha = torch::stable::new_empty(query, {s.e, heads});
  if (s.m == 0 || s.e == 0 || heads == 0) return std::make_tuple(out, alpha);
  dispatch_float(query.scalar_type(), kOp, [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    dot_attention_forward_kernel<scalar_t><<<grid_warps(s.m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), query.const_data_ptr<scalar_t>(),
        key.const_data_ptr<scalar_t>(), value.const_data_ptr<scalar_t>(), ep, out.mutable_data_ptr<scalar_t>(),
        alpha.mutable_data_ptr<scalar_t>(), s.m, heads, channels, scalar_t(scale));
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(out, alpha);
}

// Returns (grad_query [M, H, C], grad_key [N, H, C], grad_value [N, H, C], grad_edge [E, H, C]
// or [0, H, C] without edge), as on the CPU. alpha [E, H] and out [M, H, C] are the forward's
// outputs; grad_alpha (optional, [E, H], CSR order) is the gradient reaching alpha directly.
std::tuple<Tensor, Tensor, Tensor, Tensor> dot_attention_backward(
    Tensor rowptr, Tensor col, Tensor query, Tensor key, Tensor value, std::optional<Tensor> edge, double scale,
    Tensor out, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha, std::optional<Tensor> t_rowptr,
    std::optional<Tensor> t_col, std::optional<Tensor> t_perm) {
  check_cuda_tensor(query, "query");
  CudaContext ctx(query);
  const DotShapes s = check_dot_inputs(rowptr, col, query, key, value, edge, ctx);
  const int64_t heads = s.heads, channels = s.channels;
  const ScalarType dtype = query.scalar_type();
  fused::check_hc(out, kOp, "out", s.m, heads, channels, dtype, ctx);
  fused::check_hc(grad_out, kOp, "grad_out", s.m, heads, channels, dtype, ctx);
  fused::check_eh(alpha, kOp, "alpha", s.e, heads, dtype, ctx);
  if (grad_alpha.has_value()) fused::check_eh(*grad_alpha, kOp, "grad_alpha", s.e, heads, dtype, ctx);
  fused::check_transposed(t_rowptr, t_col, t_perm, kOp, s.m, s.n, s.e, ctx);

  Tensor grad_query = torch::stable::new_zeros(query, {s.m, heads, channels});
  Tensor grad_key = torch::stable::new_zeros(query, {s.n, heads, channels});
  Tensor grad_value = torch::stable::new_zeros(query, {s.n, heads, channels});
  // every entry lies in exactly one row, so the row pass writes all of grad_edge
  Tensor grad_edge = torch::stable::new_empty(query, {edge.has_value() ? s.e : 0, heads, channels});
  if (s.m == 0 || s.e == 0 || heads == 0) return std::make_tuple(grad_query, grad_key, grad_value, grad_edge);
  Tensor score_grad = torch::stable::new_empty(query, {s.e, heads});  // dS, written by the row pass
  dispatch_float(dtype, "dot_attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gep = edge.has_value() ? grad_edge.mutable_data_ptr<scalar_t>() : nullptr;
    dot_attention_row_grad_kernel<scalar_t><<<grid_warps(s.m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), query.const_data_ptr<scalar_t>(),
        key.const_data_ptr<scalar_t>(), value.const_data_ptr<scalar_t>(), ep, out.const_data_ptr<scalar_t>(),
        alpha.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(), gap,
        score_grad.mutable_data_ptr<scalar_t>(), grad_query.mutable_data_ptr<scalar_t>(), gep, s.m, heads,
        channels, scalar_t(scale));
    GNN_CUDA_LAUNCH_CHECK();
    dot_attention_sender_grad_kernel<scalar_t><<<grid_warps(s.n), kThreads, 0, ctx.stream()>>>(
        t_rowptr->const_data_ptr<int64_t>(), t_col->const_data_ptr<int64_t>(), t_perm->const_data_ptr<int64_t>(),
        query.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(), alpha.const_data_ptr<scalar_t>(),
        score_grad.const_data_ptr<scalar_t>(), grad_key.mutable_data_ptr<scalar_t>(),
        grad_value.mutable_data_ptr<scalar_t>(), s.n, heads, channels, scalar_t(scale));
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(grad_query, grad_key, grad_value, grad_edge);
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("dot_attention_forward", TORCH_BOX(&gnn_kernels::gpu::dot_attention_forward));
  m.impl("dot_attention_backward", TORCH_BOX(&gnn_kernels::gpu::dot_attention_backward));
}
