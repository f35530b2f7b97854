// CUDA version of csrc/cpu/gatv2_attention.cpp: fused GATv2 attention,
// forward and backward.
//
// For each receiving node i (a CSR row), head h and entry k = (j -> i):
//   z[k, h, c]   = x_src[j, h, c] + x_dst[i, h, c] + edge[k, h, c]
//   s[k, h]      = sum_c att[h, c] * leaky_relu(z[k, h, c])
//   alpha[k, h]  = softmax over the entries of row i of s[., h]
//   out[i, h, :] = sum_k alpha[k, h] * x_src[j, h, :]
// edge is optional and given in CSR order. z is never stored: only [E, H]
// tensors are formed (alpha, and the score gradient dS in backward).
//
// One warp per receiving row, as in attention.cu. Forward: for each head, the
// lanes split the channels of each entry's score (warp reduction), lane 0
// stores it in alpha, the row softmax runs over the stored scores
// (fused::softmax_row_head); then the lanes split the H * C features for the
// weighted sum, in CSR order.
//
// Backward (dz[k, h, c] = dS[k, h] att[h, c] leaky_relu'(z[k, h, c])):
//   row pass (per i):  dS[k, h] = alpha[k, h] * (<g_i, x_src_j> + ga[k, h] - <g_i, out_i>
//                                               - sum_row alpha * ga),
//                      grad_x_dst[i] = sum_k dz[k], grad_edge[k] = dz[k],
//                      grad_att += dS[k, h] leaky_relu(z[k]) as per-warp partial sums;
//   column pass over the transposed pattern (one warp per sending node j, z recomputed):
//                      grad_x_src[j] = sum_k alpha[k] g_i + dz[k];
//   grad_att = the sum of the per-warp partials (fused::column_sum, fixed order).
// No atomics: the CPU version sums grad_att over fixed row chunks; here each
// warp of a fixed-size grid (which depends only on M and H * C) keeps its own
// [H, C] partial, so the result is deterministic too.
#include "fused_attention.cuh"

namespace gnn_kernels {
namespace gpu {

namespace {

constexpr const char* kOp = "gatv2_attention";

struct Gatv2Shapes {
  int64_t m, n, e, heads, channels;
};

// The checks of the CPU check_gatv2_inputs, in the same order and with the same messages.
Gatv2Shapes check_gatv2_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& x_src, const Tensor& x_dst,
                               const Tensor& att, const std::optional<Tensor>& edge, const CudaContext& ctx) {
  check_cuda_contiguous(x_src, "x_src", ctx.device());
  STD_TORCH_CHECK(x_src.dim() == 3, "gnn_kernels::gatv2_attention: 'x_src' must be [N, H, C]");
  STD_TORCH_CHECK(fused::is_float_type(x_src.scalar_type()), "gnn_kernels::gatv2_attention: only float32/float64");
  check_long(rowptr, "rowptr", ctx.device());
  Gatv2Shapes s{rowptr.numel() - 1, x_src.size(0), col.numel(), x_src.size(1), x_src.size(2)};
  const ScalarType dtype = x_src.scalar_type();
  fused::check_hc(x_dst, kOp, "x_dst", s.m, s.heads, s.channels, dtype, ctx);
  check_cuda_contiguous(att, "att", ctx.device());
  STD_TORCH_CHECK(att.dim() == 2 && att.size(0) == s.heads && att.size(1) == s.channels,
                  "gnn_kernels::gatv2_attention: 'att' must be [", s.heads, ", ", s.channels, "]");
  STD_TORCH_CHECK(att.scalar_type() == dtype, "gnn_kernels::gatv2_attention: 'att' dtype must match");
  if (edge.has_value()) fused::check_hc(*edge, kOp, "edge", s.e, s.heads, s.channels, dtype, ctx);
  check_csr(rowptr, col, s.n, ctx);
  return s;
}

template <typename scalar_t>
__global__ void gatv2_attention_forward_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                               const scalar_t* __restrict__ xsp, const scalar_t* __restrict__ xdp,
                                               const scalar_t* __restrict__ ap, const scalar_t* __restrict__ ep,
                                               scalar_t* __restrict__ op, scalar_t* __restrict__ alp, int64_t m,
                                               int64_t heads, int64_t channels, scalar_t slope) {
  const int64_t hc = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {  // warp-uniform loop
    const int64_t lo = rp[i], hi = rp[i + 1];
    if (lo == hi) continue;  // out stays 0 (zero-initialized)
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t* xdh = xdp + i * hc + h * channels;
      const scalar_t* ah = ap + h * channels;
      scalar_t mx = -std::numeric_limits<scalar_t>::infinity();  // identical in every lane
      for (int64_t k = lo; k < hi; ++k) {
        const scalar_t* xsh = xsp + col[k] * hc + h * channels;
        scalar_t acc = 0;
        if (ep != nullptr) {
          const scalar_t* eh = ep + k * hc + h * channels;
          for (int64_t f = lane; f < channels; f += kWarp) acc += ah[f] * fused::leaky(xsh[f] + xdh[f] + eh[f], slope);
        } else {
          for (int64_t f = lane; f < channels; f += kWarp) acc += ah[f] * fused::leaky(xsh[f] + xdh[f], slope);
        }
        const scalar_t score = warp_sum(acc);
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
      for (int64_t k = lo; k < hi; ++k) acc += alp[k * heads + h] * xsp[col[k] * hc + f];
      o[f] = acc;
    }
  }
}

// Row pass of the backward: dS (into dsp, [E, H]), grad_x_dst, grad_edge and this warp's partial
// sum of grad_att (pp + global_warp() * H * C, zero-initialized, written by this warp only).
template <typename scalar_t>
__global__ void gatv2_attention_row_grad_kernel(
    const int64_t* __restrict__ rp, const int64_t* __restrict__ col, const scalar_t* __restrict__ xsp,
    const scalar_t* __restrict__ xdp, const scalar_t* __restrict__ ap, const scalar_t* __restrict__ ep,
    const scalar_t* __restrict__ outp, const scalar_t* __restrict__ alp, const scalar_t* __restrict__ gp,
    const scalar_t* __restrict__ gap, scalar_t* __restrict__ dsp, scalar_t* __restrict__ gxdp,
    scalar_t* __restrict__ gep, scalar_t* __restrict__ pp, int64_t m, int64_t heads, int64_t channels,
    scalar_t slope) {
  const int64_t hc = heads * channels;
  const int lane = lane_id();
  scalar_t* partial = pp + global_warp() * hc;
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {  // warp-uniform loop
    const int64_t lo = rp[i], hi = rp[i + 1];
    if (lo == hi) continue;  // grad_x_dst stays 0; the row has no entries
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
        const scalar_t* xsh = xsp + col[k] * hc + h * channels;
        scalar_t acc = 0;
        for (int64_t f = lane; f < channels; f += kWarp) acc += gh[f] * xsh[f];
        scalar_t dalpha = warp_sum(acc);
        if (gap != nullptr) dalpha += gap[k * heads + h];
        if (lane == 0) dsp[k * heads + h] = alp[k * heads + h] * (dalpha - base);
      }
    }
    __syncwarp();  // lane 0's writes of dS are read by every lane below
    const scalar_t* xd = xdp + i * hc;
    for (int64_t f = lane; f < hc; f += kWarp) {
      const int64_t h = f / channels;
      const scalar_t a = ap[f];  // att[h, f - h * channels]: att is [H, C]
      scalar_t acc_dst = 0, acc_att = 0;
      for (int64_t k = lo; k < hi; ++k) {
        const scalar_t ds = dsp[k * heads + h];
        const scalar_t z = ep != nullptr ? xsp[col[k] * hc + f] + xd[f] + ep[k * hc + f] : xsp[col[k] * hc + f] + xd[f];
        const scalar_t dz = ds * a * fused::leaky_grad(z, slope);
        acc_dst += dz;
        if (gep != nullptr) gep[k * hc + f] = dz;
        acc_att += ds * fused::leaky(z, slope);
      }
      gxdp[i * hc + f] = acc_dst;
      partial[f] += acc_att;
    }
  }
}

// Column pass: one warp per sender j over the transposed pattern (t_col: receivers, t_perm: CSR
// positions), lanes over the features, z recomputed: grad_x_src[j] = sum alpha[k] g_i + dz[k].
template <typename scalar_t>
__global__ void gatv2_attention_sender_grad_kernel(
    const int64_t* __restrict__ trp, const int64_t* __restrict__ tc, const int64_t* __restrict__ tp,
    const scalar_t* __restrict__ xsp, const scalar_t* __restrict__ xdp, const scalar_t* __restrict__ ap,
    const scalar_t* __restrict__ ep, const scalar_t* __restrict__ gp, const scalar_t* __restrict__ alp,
    const scalar_t* __restrict__ dsp, scalar_t* __restrict__ gxsp, int64_t n, int64_t heads, int64_t channels,
    scalar_t slope) {
  const int64_t hc = heads * channels;
  const int lane = lane_id();
  for (int64_t j = global_warp(); j < n; j += warp_stride()) {  // warp-uniform loop
    const int64_t lo = trp[j], hi = trp[j + 1];
    for (int64_t f = lane; f < hc; f += kWarp) {
      const int64_t h = f / channels;
      const scalar_t a = ap[f];
      const scalar_t xs = xsp[j * hc + f];
      scalar_t acc = 0;
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t k = tp[p], i = tc[p];
        const scalar_t z = ep != nullptr ? xs + xdp[i * hc + f] + ep[k * hc + f] : xs + xdp[i * hc + f];
        acc += alp[k * heads + h] * gp[i * hc + f] + dsp[k * heads + h] * a * fused::leaky_grad(z, slope);
      }
      gxsp[j * hc + f] = acc;
    }
  }
}

}  // namespace

// t_rowptr/t_col/t_perm: the transposed pattern, only carried for the backward formula.
std::tuple<Tensor, Tensor> gatv2_attention_forward(Tensor rowptr, Tensor col, Tensor x_src, Tensor x_dst, Tensor att,
                                                   std::optional<Tensor> edge, double negative_slope,
                                                   std::optional<Tensor> /*t_rowptr*/,
                                                   std::optional<Tensor> /*t_col*/,
                                                   std::optional<Tensor> /*t_perm*/) {
  check_cuda_tensor(x_src, "x_src");
  CudaContext ctx(x_src);
  const Gatv2Shapes s = check_gatv2_inputs(rowptr, col, x_src, x_dst, att, edge, ctx);
  const int64_t heads = s.heads, channels = s.channels;
  Tensor out = torch::stable::new_zeros(x_src, {s.m, heads, channels});
  Tensor alpha = torch::stable::new_empty(x_src, {s.e, heads});
  if (s.m == 0 || s.e == 0 || heads == 0) return std::make_tuple(out, alpha);
  dispatch_float(x_src.scalar_type(), kOp, [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    gatv2_attention_forward_kernel<scalar_t><<<grid_warps(s.m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), x_src.const_data_ptr<scalar_t>(),
        x_dst.const_data_ptr<scalar_t>(), att.const_data_ptr<scalar_t>(), ep, out.mutable_data_ptr<scalar_t>(),
        alpha.mutable_data_ptr<scalar_t>(), s.m, heads, channels, scalar_t(negative_slope));
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(out, alpha);
}

// Returns (grad_x_src [N, H, C], grad_x_dst [M, H, C], grad_att [H, C], grad_edge [E, H, C] or
// [0, H, C] without edge), as on the CPU. alpha [E, H] and out [M, H, C] are the forward's
// outputs; grad_alpha (optional, [E, H], CSR order) is the gradient reaching alpha directly.
std::tuple<Tensor, Tensor, Tensor, Tensor> gatv2_attention_backward(
    Tensor rowptr, Tensor col, Tensor x_src, Tensor x_dst, Tensor att, std::optional<Tensor> edge,
    double negative_slope, Tensor out, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha,
    std::optional<Tensor> t_rowptr, std::optional<Tensor> t_col, std::optional<Tensor> t_perm) {
  check_cuda_tensor(x_src, "x_src");
  CudaContext ctx(x_src);
  const Gatv2Shapes s = check_gatv2_inputs(rowptr, col, x_src, x_dst, att, edge, ctx);
  const int64_t heads = s.heads, channels = s.channels, hc = heads * channels;
  const ScalarType dtype = x_src.scalar_type();
  fused::check_hc(out, kOp, "out", s.m, heads, channels, dtype, ctx);
  fused::check_hc(grad_out, kOp, "grad_out", s.m, heads, channels, dtype, ctx);
  fused::check_eh(alpha, kOp, "alpha", s.e, heads, dtype, ctx);
  if (grad_alpha.has_value()) fused::check_eh(*grad_alpha, kOp, "grad_alpha", s.e, heads, dtype, ctx);
  fused::check_transposed(t_rowptr, t_col, t_perm, kOp, s.m, s.n, s.e, ctx);

  Tensor grad_x_src = torch::stable::new_zeros(x_src, {s.n, heads, channels});
  Tensor grad_x_dst = torch::stable::new_zeros(x_src, {s.m, heads, channels});
  Tensor grad_att = torch::stable::new_zeros(x_src, {heads, channels});
  // every entry lies in exactly one row, so the row pass writes all of grad_edge
  Tensor grad_edge = torch::stable::new_empty(x_src, {edge.has_value() ? s.e : 0, heads, channels});
  if (s.m == 0 || s.e == 0 || hc == 0) return std::make_tuple(grad_x_src, grad_x_dst, grad_att, grad_edge);
  Tensor score_grad = torch::stable::new_empty(x_src, {s.e, heads});  // dS, written by the row pass
  const unsigned row_blocks = fused::grid_warps_with_partials(s.m, hc);
  const int64_t row_warps = static_cast<int64_t>(row_blocks) * kWarpsPerBlock;
  Tensor partial = torch::stable::new_zeros(x_src, {row_warps, hc});  // per-warp grad_att sums
  dispatch_float(dtype, "gatv2_attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gep = edge.has_value() ? grad_edge.mutable_data_ptr<scalar_t>() : nullptr;
    const scalar_t slope = scalar_t(negative_slope);
    gatv2_attention_row_grad_kernel<scalar_t><<<row_blocks, kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), x_src.const_data_ptr<scalar_t>(),
        x_dst.const_data_ptr<scalar_t>(), att.const_data_ptr<scalar_t>(), ep, out.const_data_ptr<scalar_t>(),
        alpha.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(), gap,
        score_grad.mutable_data_ptr<scalar_t>(), grad_x_dst.mutable_data_ptr<scalar_t>(), gep,
        partial.mutable_data_ptr<scalar_t>(), s.m, heads, channels, slope);
    GNN_CUDA_LAUNCH_CHECK();
    gatv2_attention_sender_grad_kernel<scalar_t><<<grid_warps(s.n), kThreads, 0, ctx.stream()>>>(
        t_rowptr->const_data_ptr<int64_t>(), t_col->const_data_ptr<int64_t>(), t_perm->const_data_ptr<int64_t>(),
        x_src.const_data_ptr<scalar_t>(), x_dst.const_data_ptr<scalar_t>(), att.const_data_ptr<scalar_t>(), ep,
        grad_out.const_data_ptr<scalar_t>(), alpha.const_data_ptr<scalar_t>(),
        score_grad.const_data_ptr<scalar_t>(), grad_x_src.mutable_data_ptr<scalar_t>(), s.n, heads, channels,
        slope);
    GNN_CUDA_LAUNCH_CHECK();
    fused::column_sum(partial.const_data_ptr<scalar_t>(), grad_att.mutable_data_ptr<scalar_t>(), row_warps, hc,
                      ctx.stream());
  });
  return std::make_tuple(grad_x_src, grad_x_dst, grad_att, grad_edge);
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("gatv2_attention_forward", TORCH_BOX(&gnn_kernels::gpu::gatv2_attention_forward));
  m.impl("gatv2_attention_backward", TORCH_BOX(&gnn_kernels::gpu::gatv2_attention_backward));
}
