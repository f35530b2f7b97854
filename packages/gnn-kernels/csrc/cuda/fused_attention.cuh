// Helpers shared by the CUDA per-edge-feature attention kernels
// (dot_attention.cu, gatv2_attention.cu): the CUDA counterparts of the input
// checks of csrc/cpu/fused_attention.h (same messages), GATv2's leaky ReLU,
// the per-head row softmax over stored scores, and a deterministic column sum
// that replaces atomics for reductions over all edges.
#pragma once

#include "common.cuh"

namespace gnn_kernels {
namespace gpu {
namespace fused {

inline bool is_float_type(ScalarType t) { return t == ScalarType::Float || t == ScalarType::Double; }

// t: [rows, heads, channels], on the inputs' CUDA device, contiguous, of the given dtype.
inline void check_hc(const Tensor& t, const char* op, const char* name, int64_t rows, int64_t heads,
                     int64_t channels, ScalarType dtype, const CudaContext& ctx) {
  check_cuda_contiguous(t, name, ctx.device());
  STD_TORCH_CHECK(t.dim() == 3 && t.size(0) == rows && t.size(1) == heads && t.size(2) == channels,
                  "gnn_kernels::", op, ": '", name, "' must be [", rows, ", ", heads, ", ", channels, "]");
  STD_TORCH_CHECK(t.scalar_type() == dtype, "gnn_kernels::", op, ": '", name, "' dtype must match");
}

// t: [rows, heads], on the inputs' CUDA device, contiguous, of the given dtype.
inline void check_eh(const Tensor& t, const char* op, const char* name, int64_t rows, int64_t heads,
                     ScalarType dtype, const CudaContext& ctx) {
  check_cuda_contiguous(t, name, ctx.device());
  STD_TORCH_CHECK(t.dim() == 2 && t.size(0) == rows && t.size(1) == heads, "gnn_kernels::", op, ": '", name,
                  "' must be [", rows, ", ", heads, "]");
  STD_TORCH_CHECK(t.scalar_type() == dtype, "gnn_kernels::", op, ": '", name, "' dtype must match");
}

// The transposed pattern of an [m x n] CSR with e entries: t_rowptr [n + 1],
// t_col [e] in [0, m), t_perm [e] in [0, e) (CSR position of each entry).
inline void check_transposed(const std::optional<Tensor>& t_rowptr, const std::optional<Tensor>& t_col,
                             const std::optional<Tensor>& t_perm, const char* op, int64_t m, int64_t n,
                             int64_t e, const CudaContext& ctx) {
  STD_TORCH_CHECK(t_rowptr.has_value() && t_col.has_value() && t_perm.has_value(), "gnn_kernels::", op,
                  ": the backward pass needs the transposed pattern (t_rowptr, t_col, t_perm)");
  STD_TORCH_CHECK(t_rowptr->numel() == n + 1, "gnn_kernels::", op, ": 't_rowptr' must have ", n + 1,
                  " entries");
  STD_TORCH_CHECK(t_col->numel() == e && t_perm->numel() == e, "gnn_kernels::", op,
                  ": 't_col' and 't_perm' must have ", e, " entries");
  check_csr(*t_rowptr, *t_col, m, ctx);
  check_index(*t_perm, e, "t_perm", ctx);
}

// The CPU kernels' branch-free leaky ReLU and its derivative, with the same
// comparisons (std::max / std::min), so that 0 and NaN behave alike.
template <typename scalar_t>
__device__ __forceinline__ scalar_t leaky(scalar_t z, scalar_t slope) {
  return (z < scalar_t(0) ? scalar_t(0) : z) + slope * (scalar_t(0) < z ? scalar_t(0) : z);
}

template <typename scalar_t>
__device__ __forceinline__ scalar_t leaky_grad(scalar_t z, scalar_t slope) {
  return slope + (scalar_t(1) - slope) * scalar_t(z > scalar_t(0));
}

// Softmax of head h over the entries [lo, hi) of one row, in place: the raw
// scores alp[k * heads + h] (stored by lane 0 of the calling warp) become
// exp(s - mx) / (sum + 1e-16), as in the CPU OnlineSoftmax::finish. mx is the
// row's maximum score of head h. Called by all 32 lanes of a warp (the lanes
// split the entries); the caller must __syncwarp() before other lanes read
// the weights.
template <typename scalar_t>
__device__ __forceinline__ void softmax_row_head(scalar_t* alp, int64_t lo, int64_t hi, int64_t heads, int64_t h,
                                                 scalar_t mx) {
  __syncwarp();  // lane 0's score stores are read by every lane below
  const int lane = lane_id();
  scalar_t sum = 0;
  for (int64_t k = lo + lane; k < hi; k += kWarp) {
    const scalar_t v = device_exp(alp[k * heads + h] - mx);
    alp[k * heads + h] = v;
    sum += v;
  }
  sum = warp_sum(sum);
  const scalar_t inv = scalar_t(1) / (sum + scalar_t(1e-16));
  for (int64_t k = lo + lane; k < hi; k += kWarp) alp[k * heads + h] *= inv;
}

// out[c] = sum_r in[r * cols + c] for c < cols: each block takes 32 columns (one per lane, so that
// the loads are coalesced), its 8 warps split the rows; the 8 partials are added in warp order.
// A fixed summation order for given (rows, cols): deterministic, unlike atomics.
template <typename scalar_t>
__global__ void column_sum_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, int64_t rows,
                                  int64_t cols) {
  __shared__ scalar_t part[kWarpsPerBlock][kWarp];
  const int lane = lane_id();
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  // block-uniform loop: every thread reaches both __syncthreads()
  for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * kWarp; c0 < cols;
       c0 += static_cast<int64_t>(gridDim.x) * kWarp) {
    const int64_t c = c0 + lane;
    scalar_t acc = 0;
    if (c < cols)
      for (int64_t r = warp; r < rows; r += kWarpsPerBlock) acc += in[r * cols + c];
    part[warp][lane] = acc;
    __syncthreads();
    if (warp == 0 && c < cols) {
      scalar_t total = 0;
      for (int w = 0; w < kWarpsPerBlock; ++w) total += part[w][lane];
      out[c] = total;
    }
    __syncthreads();  // part is overwritten by the next column block
  }
}

template <typename scalar_t>
inline void column_sum(const scalar_t* in, scalar_t* out, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  column_sum_kernel<scalar_t><<<grid_for(cols, kWarp), kThreads, 0, stream>>>(in, out, rows, cols);
  GNN_CUDA_LAUNCH_CHECK();
}

// Blocks of a "one warp per row" kernel that keeps one [hc] partial sum per warp: enough warps
// to fill an A100/H100 (about 2 waves), and at most 2^22 partial elements in all.
inline unsigned grid_warps_with_partials(int64_t rows, int64_t hc) {
  const int64_t max_warps = std::max<int64_t>(kWarpsPerBlock, std::min<int64_t>(16384, (int64_t(1) << 22) /
                                                                                     std::max<int64_t>(hc, 1)));
  return std::min<unsigned>(grid_warps(rows), static_cast<unsigned>(max_warps / kWarpsPerBlock));
}

}  // namespace fused
}  // namespace gpu
}  // namespace gnn_kernels
