// CUDA versions of csrc/cpu/spmm.cpp (rows receive, columns send):
//
//   spmm_sum:    out[i, h, :] = sum_{e in row i} w[e, h] * x[col[e], h, :]   (optionally / deg)
//                              (+ s * x_self[i, h, :], an optional fused self term)
//   spmm_minmax: out[i, f]    = max/min_{e in row i} w[e] * x[col[e], f], with the arg edge
//   sddmm:       out[e, h]    = <a[row(e), h, :], b[col[e], h, :]>          (edge-weight gradient)
//
// One warp per CSR row, lanes over the features; each output element is
// accumulated by one lane over the row's entries in CSR order, exactly like
// the CPU loop, so spmm_sum/spmm_minmax are deterministic and need no atomics.
#include "common.cuh"

namespace gnn_kernels {
namespace gpu {

namespace {

template <typename scalar_t>
__global__ void spmm_sum_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                const scalar_t* __restrict__ vp, int64_t value_heads,
                                const scalar_t* __restrict__ xp, scalar_t* __restrict__ op, int64_t m,
                                int64_t heads, int64_t channels, bool mean,
                                const scalar_t* __restrict__ sp, scalar_t self_weight) {
  const int64_t row_size = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {
    const int64_t lo = rp[i], hi = rp[i + 1];
    scalar_t* o = op + i * row_size;
    for (int64_t f = lane; f < row_size; f += kWarp) {
      const int64_t h = f / channels;
      scalar_t acc = 0;
      for (int64_t k = lo; k < hi; ++k) {
        scalar_t w = scalar_t(1);
        if (vp != nullptr) w = value_heads <= 1 ? vp[k] : vp[k * value_heads + h];
        acc += w * xp[col[k] * row_size + f];
      }
      if (mean && hi - lo > 1) acc *= scalar_t(1) / scalar_t(hi - lo);
      if (sp != nullptr) acc += self_weight * sp[i * row_size + f];
      o[f] = acc;
    }
  }
}

template <typename scalar_t>
__global__ void spmm_minmax_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                   const scalar_t* __restrict__ vp, const scalar_t* __restrict__ xp,
                                   scalar_t* __restrict__ op, int64_t* __restrict__ ap, int64_t m,
                                   int64_t feats, bool is_max, scalar_t init) {
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {
    const int64_t lo = rp[i], hi = rp[i + 1];
    for (int64_t f = lane; f < feats; f += kWarp) {
      scalar_t best = init;
      int64_t arg = -1;
      for (int64_t k = lo; k < hi; ++k) {
        const scalar_t w = vp == nullptr ? scalar_t(1) : vp[k];
        const scalar_t v = w * xp[col[k] * feats + f];
        if (is_max ? v > best : v < best) {  // strict: the first entry of a tie wins, as on the CPU
          best = v;
          arg = k;
        }
      }
      op[i * feats + f] = arg < 0 ? scalar_t(0) : best;
      ap[i * feats + f] = arg;
    }
  }
}

// One warp per row; for each entry and head the lanes split the channels and
// the partial dot products are combined with a warp reduction.
template <typename scalar_t>
__global__ void sddmm_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                             const scalar_t* __restrict__ ap, const scalar_t* __restrict__ bp,
                             scalar_t* __restrict__ op, int64_t m, int64_t heads, int64_t channels) {
  const int64_t row_size = heads * channels;
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < m; i += warp_stride()) {
    const scalar_t* ar = ap + i * row_size;
    for (int64_t k = rp[i]; k < rp[i + 1]; ++k) {
      const scalar_t* br = bp + col[k] * row_size;
      for (int64_t h = 0; h < heads; ++h) {
        scalar_t acc = 0;
        for (int64_t f = lane; f < channels; f += kWarp) acc += ar[h * channels + f] * br[h * channels + f];
        acc = warp_sum(acc);
        if (lane == 0) op[k * heads + h] = acc;
      }
    }
  }
}

}  // namespace

// x: [N, H, C]; value: none, [E] (shared by heads) or [E, H].
// t_rowptr/t_col/t_perm: the transposed pattern, used only by the backward formula.
Tensor spmm_sum(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x, bool mean,
                std::optional<Tensor> /*t_rowptr*/, std::optional<Tensor> /*t_col*/,
                std::optional<Tensor> /*t_perm*/, std::optional<Tensor> x_self, double self_weight) {
  check_cuda_tensor(x, "x");
  CudaContext ctx(x);
  check_cuda_contiguous(x, "x", ctx.device());
  STD_TORCH_CHECK(x.dim() == 3, "gnn_kernels::spmm_sum: 'x' must be [N, H, C]");
  const int64_t n = x.size(0), heads = x.size(1), channels = x.size(2);
  check_csr(rowptr, col, n, ctx);
  const int64_t m = rowptr.numel() - 1, e = col.numel();
  int64_t value_heads = 0;
  if (value.has_value()) {
    check_cuda_contiguous(*value, "value", ctx.device());
    STD_TORCH_CHECK(value->scalar_type() == x.scalar_type(),
                    "gnn_kernels::spmm_sum: 'value' dtype must match 'x'");
    STD_TORCH_CHECK(value->size(0) == e, "gnn_kernels::spmm_sum: 'value' must have one row per entry");
    value_heads = value->dim() == 1 ? 1 : value->size(1);
    STD_TORCH_CHECK(value_heads == 1 || value_heads == heads,
                    "gnn_kernels::spmm_sum: 'value' heads must be 1 or H");
  }
  if (x_self.has_value()) {
    check_cuda_contiguous(*x_self, "x_self", ctx.device());
    STD_TORCH_CHECK(x_self->scalar_type() == x.scalar_type(),
                    "gnn_kernels::spmm_sum: 'x_self' dtype must match 'x'");
    STD_TORCH_CHECK(x_self->dim() == 3 && x_self->size(0) == m && x_self->size(1) == heads &&
                        x_self->size(2) == channels,
                    "gnn_kernels::spmm_sum: 'x_self' must be [M, H, C] (one row per CSR row)");
  }
  Tensor out = torch::stable::new_zeros(x, {m, heads, channels});
  if (m == 0 || heads * channels == 0) return out;
  dispatch_float(x.scalar_type(), "spmm_sum", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* vp = value.has_value() ? value->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* sp = x_self.has_value() ? x_self->const_data_ptr<scalar_t>() : nullptr;
    spmm_sum_kernel<scalar_t><<<grid_warps(m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), vp, value_heads,
        x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), m, heads, channels, mean, sp,
        static_cast<scalar_t>(self_weight));
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

// x: [N, F]; value: none or [E]. Returns (out [M, F], arg [M, F]) with arg the
// CSR position of the winning entry, -1 for empty rows (whose output is 0).
std::tuple<Tensor, Tensor> spmm_minmax(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x,
                                       bool is_max) {
  check_cuda_tensor(x, "x");
  CudaContext ctx(x);
  check_cuda_contiguous(x, "x", ctx.device());
  STD_TORCH_CHECK(x.dim() == 2, "gnn_kernels::spmm_minmax: 'x' must be [N, F]");
  const int64_t n = x.size(0), feats = x.size(1);
  check_csr(rowptr, col, n, ctx);
  const int64_t m = rowptr.numel() - 1;
  if (value.has_value()) {
    check_cuda_contiguous(*value, "value", ctx.device());
    STD_TORCH_CHECK(value->dim() == 1 && value->size(0) == col.numel(),
                    "gnn_kernels::spmm_minmax: 'value' must be [E]");
    STD_TORCH_CHECK(value->scalar_type() == x.scalar_type(),
                    "gnn_kernels::spmm_minmax: 'value' dtype must match 'x'");
  }
  Tensor out = torch::stable::new_empty(x, {m, feats});
  Tensor arg = torch::stable::new_empty(x, {m, feats}, ScalarType::Long);
  if (m == 0 || feats == 0) return std::make_tuple(out, arg);
  dispatch_float(x.scalar_type(), "spmm_minmax", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t init =
        is_max ? -std::numeric_limits<scalar_t>::infinity() : std::numeric_limits<scalar_t>::infinity();
    const scalar_t* vp = value.has_value() ? value->const_data_ptr<scalar_t>() : nullptr;
    spmm_minmax_kernel<scalar_t><<<grid_warps(m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), vp, x.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), arg.mutable_data_ptr<int64_t>(), m, feats, is_max, init);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(out, arg);
}

// a: [M, H, C] (per row), b: [N, H, C] (per column). Returns [E, H].
Tensor sddmm(Tensor rowptr, Tensor col, Tensor a, Tensor b) {
  check_cuda_tensor(a, "a");
  CudaContext ctx(a);
  check_cuda_contiguous(a, "a", ctx.device());
  check_cuda_contiguous(b, "b", ctx.device());
  STD_TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(1) == b.size(1) && a.size(2) == b.size(2),
                  "gnn_kernels::sddmm: 'a' and 'b' must be [*, H, C] with equal H, C");
  STD_TORCH_CHECK(a.scalar_type() == b.scalar_type(), "gnn_kernels::sddmm: 'a' and 'b' dtypes must match");
  STD_TORCH_CHECK(rowptr.numel() - 1 == a.size(0), "gnn_kernels::sddmm: 'a' must have one row per CSR row");
  check_csr(rowptr, col, b.size(0), ctx);
  const int64_t m = a.size(0), heads = a.size(1), channels = a.size(2), e = col.numel();
  Tensor out = torch::stable::new_empty(a, {e, heads});
  if (m == 0 || e == 0 || heads == 0) return out;
  dispatch_float(a.scalar_type(), "sddmm", [&](auto tag) {
    using scalar_t = decltype(tag);
    sddmm_kernel<scalar_t><<<grid_warps(m), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), a.const_data_ptr<scalar_t>(),
        b.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), m, heads, channels);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace gpu
}  // namespace gnn_kernels
