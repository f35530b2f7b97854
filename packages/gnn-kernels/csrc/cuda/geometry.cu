// CUDA versions of csrc/cpu/geometry.cpp: the same five ops, checks, error
// messages and outputs (element for element, ordering included).
//
//   knn          one thread per query scans the points of its example in index
//                order and keeps its k best (distance, index) pairs sorted in a
//                global scratch row (insertion, like the CPU's sorted KBest); exact,
//                so equal to the CPU's kd-tree / tiled answers (a strict total order
//                on (distance, index) has one k-smallest set).
//   radius       count pass (at most max_num_neighbors per query, in index order)
//                -> prefix sums -> fill pass (the same points again): sorted by query
//                then point, the smallest indices when capped, as on the CPU.
//   fps          one block per example; each step updates the distances of the
//                block's points and takes a block-wide argmax with the CPU's tie rule
//                (largest distance, then lowest index).
//   graclus      the CPU's greedy matching is sequential in `perm` order (each
//                choice depends on every earlier one), so it runs as ONE device
//                thread: the CPU's loop verbatim, correct but serial.
//   grid_cluster one thread per point.
//
// Distances are sums of squares added in order of the dimensions with the
// round-to-nearest intrinsics (__fadd_rn, __fmul_rn, ...), which nvcc never
// contracts into fused multiply-adds: bit for bit the CPU's rounded operations,
// so neighbours and ties agree with the CPU ops.
//
// Argument checks: the small arrays (ptr_x/ptr_y/ptr [B + 1], num_samples,
// start [B], size/start/end [D]) are copied to the host and checked there with
// the CPU's code and messages; coordinates (finite) and perm (a permutation)
// are checked by device kernels setting an error flag, before any kernel
// relies on them. Nothing raises on the device.
#include "common.cuh"
#include "../geometry_checks.h"
#include "../graclus_match.h"

#include <cmath>
#include <vector>

namespace gnn_kernels {
namespace gpu {

namespace {

// -- rounded arithmetic (never fused) ------------------------------------------------------------
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }

// sum_d (a[d] - b[d])^2, added in order of d (the CPU's sq_dist)
template <typename scalar_t>
__device__ __forceinline__ scalar_t sq_dist(const scalar_t* a, const scalar_t* b, int64_t dim) {
  scalar_t acc = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const scalar_t t = sub_rn(a[d], b[d]);
    acc = add_rn(acc, mul_rn(t, t));
  }
  return acc;
}

// sum_d a[d] * b[d], added in order of d (the CPU's dot)
template <typename scalar_t>
__device__ __forceinline__ scalar_t dot(const scalar_t* a, const scalar_t* b, int64_t dim) {
  scalar_t acc = 0;
  for (int64_t d = 0; d < dim; ++d) acc = add_rn(acc, mul_rn(a[d], b[d]));
  return acc;
}

// The CPU's cosine_key: -(dot / sq) * |dot| orders the points of one query like 1 - cos.
template <typename scalar_t>
__device__ __forceinline__ scalar_t cosine_key(scalar_t dot_value, scalar_t sq) {
  return sq > 0 ? mul_rn(-div_rn(dot_value, sq), fabs(dot_value)) : scalar_t(0);
}

// (d, i) < (e, j) lexicographically: the CPU's KBest::less
template <typename scalar_t>
__device__ __forceinline__ bool pair_less(scalar_t d, int64_t i, scalar_t e, int64_t j) {
  return d < e || (d == e && i < j);
}

// The example holding row q of a sorted set with offsets ptr[0..num_examples]
// (the last b with ptr[b] <= q; requires ptr[0] <= q < ptr[num_examples]).
__device__ __forceinline__ int64_t example_of(const int64_t* ptr, int64_t num_examples, int64_t q) {
  int64_t lo = 0, hi = num_examples + 1;  // first position with ptr[pos] > q
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (ptr[mid] <= q)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1;
}

// -- checks --------------------------------------------------------------------------------------
template <typename scalar_t>
__global__ void non_finite_kernel(const scalar_t* __restrict__ p, int64_t n, int* flag) {
  for (int64_t k = global_thread(); k < n; k += thread_stride())
    if (!isfinite(p[k])) atomicOr(flag, 1);
}

// True when every one of the n values is finite (synchronises the stream).
template <typename scalar_t>
bool all_finite(const Tensor& like, const scalar_t* p, int64_t n, cudaStream_t stream) {
  if (n <= 0) return true;
  ErrorFlag flag(like, stream);
  non_finite_kernel<scalar_t><<<grid_threads(n), kThreads, 0, stream>>>(p, n, flag.ptr());
  GNN_CUDA_LAUNCH_CHECK();
  return flag.fetch() == 0;
}

// A copy of a small contiguous device tensor on the host (synchronises the stream).
template <typename T>
std::vector<T> to_host(const Tensor& t, cudaStream_t stream) {
  std::vector<T> host(static_cast<size_t>(t.numel()));
  if (!host.empty()) {
    STD_CUDA_CHECK(cudaMemcpyAsync(host.data(), t.const_data_ptr<T>(), host.size() * sizeof(T),
                                   cudaMemcpyDeviceToHost, stream));
    STD_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return host;
}

// A device int64 tensor [values.size()] on the device of `like` holding `values`.
Tensor to_device(const Tensor& like, const std::vector<int64_t>& values, cudaStream_t stream) {
  Tensor out = torch::stable::new_empty(like, {static_cast<int64_t>(values.size())}, ScalarType::Long);
  if (!values.empty()) {
    STD_CUDA_CHECK(cudaMemcpyAsync(out.mutable_data_ptr<int64_t>(), values.data(), values.size() * sizeof(int64_t),
                                   cudaMemcpyHostToDevice, stream));
    STD_CUDA_CHECK(cudaStreamSynchronize(stream));  // `values` may go away after the return
  }
  return out;
}

void check_points(const Tensor& t, const char* op, const char* name, int32_t device) {
  STD_TORCH_CHECK(t.is_cuda(), "gnn_kernels::", op, ": '", name, "' must be a CUDA tensor");
  STD_TORCH_CHECK(t.get_device_index() == device, "gnn_kernels::", op, ": '", name, "' must be on cuda:", device,
                  " like the other inputs, got cuda:", t.get_device_index());
  STD_TORCH_CHECK(t.is_contiguous(), "gnn_kernels::", op, ": '", name, "' must be contiguous");
  STD_TORCH_CHECK(t.dim() == 2, "gnn_kernels::", op, ": '", name, "' must be 2-D [num_points, D], got ",
                  t.dim(), " dimensions");
  STD_TORCH_CHECK(t.scalar_type() == ScalarType::Float || t.scalar_type() == ScalarType::Double,
                  "gnn_kernels::", op, ": '", name, "' must be float32 or float64");
  STD_TORCH_CHECK(t.size(1) >= 1, "gnn_kernels::", op, ": '", name,
                  "' must have at least one dimension per point");
}

// ptr: int64 [B + 1], monotonically non-decreasing from 0 to n. Returns its host copy.
std::vector<int64_t> check_offsets(const Tensor& ptr, int64_t n, const char* op, const char* name,
                                   const CudaContext& ctx) {
  check_long(ptr, name, ctx.device());
  const int64_t b = ptr.numel() - 1;
  STD_TORCH_CHECK(b >= 0, "gnn_kernels::", op, ": '", name, "' must not be empty");
  std::vector<int64_t> p = to_host<int64_t>(ptr, ctx.stream());
  geometry::check_offset_values(p.data(), b, n, op, name);
  return p;
}

void check_pair(const Tensor& x, const Tensor& y, const Tensor& ptr_x, const Tensor& ptr_y, const char* op,
                const CudaContext& ctx) {
  check_points(x, op, "x", ctx.device());
  check_points(y, op, "y", ctx.device());
  STD_TORCH_CHECK(x.scalar_type() == y.scalar_type(), "gnn_kernels::", op,
                  ": 'x' and 'y' must have the same dtype");
  STD_TORCH_CHECK(x.size(1) == y.size(1), "gnn_kernels::", op, ": 'x' has ", x.size(1),
                  " dimensions per point but 'y' has ", y.size(1));
  check_offsets(ptr_x, x.size(0), op, "ptr_x", ctx);
  check_offsets(ptr_y, y.size(0), op, "ptr_y", ctx);
  STD_TORCH_CHECK(ptr_x.numel() == ptr_y.numel(), "gnn_kernels::", op,
                  ": 'ptr_x' and 'ptr_y' must describe the same number of examples, got ", ptr_x.numel() - 1,
                  " and ", ptr_y.numel() - 1);
}

// -- knn -----------------------------------------------------------------------------------------
template <typename scalar_t>
__global__ void squared_norms_kernel(const scalar_t* __restrict__ xp, int64_t n, int64_t dim,
                                     scalar_t* __restrict__ out) {
  for (int64_t i = global_thread(); i < n; i += thread_stride()) out[i] = dot(xp + i * dim, xp + i * dim, dim);
}

// One thread per query q: its example's points in index order offered to a
// sorted list of (key, index) of capacity k, kept in best_d[q * k ...] and
// col[q * k ...] (the output row itself); the CPU's KBest::offer in sorted mode.
template <typename scalar_t>
__global__ void knn_kernel(const scalar_t* __restrict__ xp, const scalar_t* __restrict__ yp,
                           const scalar_t* __restrict__ x_sq, const int64_t* __restrict__ px,
                           const int64_t* __restrict__ py, int64_t num_examples, int64_t m, int64_t dim,
                           int64_t k, scalar_t* __restrict__ best_d, int64_t* __restrict__ row,
                           int64_t* __restrict__ col) {
  for (int64_t q = global_thread(); q < m; q += thread_stride()) {
    const int64_t b = example_of(py, num_examples, q);
    const scalar_t* yq = yp + q * dim;
    scalar_t* bd = best_d + q * k;
    int64_t* bi = col + q * k;
    int64_t found = 0;
    scalar_t worst_d = 0;  // the last pair of the list, once it holds k
    int64_t worst_i = -1;
    for (int64_t j = px[b]; j < px[b + 1]; ++j) {
      const scalar_t* xj = xp + j * dim;
      const scalar_t key = x_sq != nullptr ? cosine_key(dot(xj, yq, dim), x_sq[j]) : sq_dist(xj, yq, dim);
      if (found == k && !pair_less(key, j, worst_d, worst_i)) continue;
      int64_t t = found < k ? found++ : k - 1;  // a full list drops its last pair
      for (; t > 0 && pair_less(key, j, bd[t - 1], bi[t - 1]); --t) {
        bd[t] = bd[t - 1];
        bi[t] = bi[t - 1];
      }
      bd[t] = key;
      bi[t] = j;
      if (found == k) {
        worst_d = bd[k - 1];
        worst_i = bi[k - 1];
      }
    }
    for (int64_t t = found; t < k; ++t) bi[t] = -1;
    for (int64_t t = 0; t < k; ++t) row[q * k + t] = q;
  }
}

// -- radius --------------------------------------------------------------------------------------
// counts[q] = the number of points of q's example with squared distance < r2, at most cap.
template <typename scalar_t>
__global__ void radius_count_kernel(const scalar_t* __restrict__ xp, const scalar_t* __restrict__ yp,
                                    const int64_t* __restrict__ px, const int64_t* __restrict__ py,
                                    int64_t num_examples, int64_t m, int64_t dim, scalar_t r2, int64_t cap,
                                    int64_t* __restrict__ counts) {
  for (int64_t q = global_thread(); q < m; q += thread_stride()) {
    const int64_t b = example_of(py, num_examples, q);
    const scalar_t* yq = yp + q * dim;
    int64_t count = 0;
    for (int64_t j = px[b]; j < px[b + 1] && count < cap; ++j)
      if (sq_dist(xp + j * dim, yq, dim) < r2) ++count;
    counts[q] = count;
  }
}

// The same scan again, writing the first offsets[q + 1] - offsets[q] points found.
template <typename scalar_t>
__global__ void radius_fill_kernel(const scalar_t* __restrict__ xp, const scalar_t* __restrict__ yp,
                                   const int64_t* __restrict__ px, const int64_t* __restrict__ py,
                                   int64_t num_examples, int64_t m, int64_t dim, scalar_t r2,
                                   const int64_t* __restrict__ offsets, int64_t* __restrict__ row,
                                   int64_t* __restrict__ col) {
  for (int64_t q = global_thread(); q < m; q += thread_stride()) {
    const int64_t o = offsets[q], count = offsets[q + 1] - o;
    if (count == 0) continue;
    const int64_t b = example_of(py, num_examples, q);
    const scalar_t* yq = yp + q * dim;
    int64_t c = 0;
    for (int64_t j = px[b]; j < px[b + 1] && c < count; ++j)
      if (sq_dist(xp + j * dim, yq, dim) < r2) {
        row[o + c] = q;
        col[o + c] = j;
        ++c;
      }
  }
}

constexpr int kScanThreads = 1024;

// offsets[0] = 0, offsets[i + 1] = counts[0] + ... + counts[i] for i < m. One
// block of kScanThreads walks the array in chunks: warp scans (shuffles), a scan
// of the warp totals, and a running carry between chunks.
__global__ void prefix_sum_kernel(const int64_t* __restrict__ counts, int64_t m, int64_t* __restrict__ offsets) {
  constexpr int kScanWarps = kScanThreads / kWarp;
  __shared__ int64_t warp_total[kScanWarps];
  __shared__ int64_t carry_s;
  const int lane = lane_id(), warp = static_cast<int>(threadIdx.x) / kWarp;
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    carry_s = 0;
  }
  __syncthreads();
  for (int64_t base = 0; base < m; base += kScanThreads) {  // uniform across the block
    const int64_t i = base + threadIdx.x;
    int64_t v = i < m ? counts[i] : 0;
    for (int offset = 1; offset < kWarp; offset <<= 1) {
      const int64_t other = __shfl_up_sync(kFullMask, v, offset);
      if (lane >= offset) v += other;
    }
    if (lane == kWarp - 1) warp_total[warp] = v;
    __syncthreads();
    if (warp == 0) {
      int64_t w = lane < kScanWarps ? warp_total[lane] : 0;
      for (int offset = 1; offset < kWarp; offset <<= 1) {
        const int64_t other = __shfl_up_sync(kFullMask, w, offset);
        if (lane >= offset) w += other;
      }
      if (lane < kScanWarps) warp_total[lane] = w;  // inclusive over the warps
    }
    __syncthreads();
    const int64_t carry = carry_s;
    if (i < m) offsets[i + 1] = carry + (warp > 0 ? warp_total[warp - 1] : 0) + v;
    __syncthreads();  // every thread has read carry_s and warp_total
    if (threadIdx.x == 0) carry_s = carry + warp_total[kScanWarps - 1];
    __syncthreads();
  }
}

// -- fps -----------------------------------------------------------------------------------------
// (value, index) pairs: the larger value wins, a tie goes to the lower index.
template <typename scalar_t>
__device__ __forceinline__ void argmax_merge(scalar_t& v, int64_t& i, scalar_t ov, int64_t oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

// One block per example (blocks stride over the examples). dist[j] is the
// squared distance of point j to the picks so far, -1 once j is picked; each
// thread owns the points j = tid, tid + blockDim.x, ... of the example.
template <typename scalar_t>
__global__ void fps_kernel(const scalar_t* __restrict__ xp, int64_t dim, const int64_t* __restrict__ ptr,
                           const int64_t* __restrict__ out_ptr, const int64_t* __restrict__ start,
                           int64_t num_examples, scalar_t* __restrict__ dist, int64_t* __restrict__ out) {
  __shared__ scalar_t warp_best[kWarpsPerBlock];
  __shared__ int64_t warp_arg[kWarpsPerBlock];
  __shared__ int64_t pick_s;
  const int lane = lane_id(), warp = static_cast<int>(threadIdx.x) / kWarp;
  for (int64_t b = blockIdx.x; b < num_examples; b += gridDim.x) {  // uniform across the block
    const int64_t o0 = out_ptr[b], count = out_ptr[b + 1] - o0;
    if (count == 0) continue;
    const int64_t base = ptr[b], size = ptr[b + 1] - base;
    const scalar_t* pts = xp + base * dim;
    scalar_t* dd = dist + base;
    int64_t pick = start[b];
    for (int64_t j = threadIdx.x; j < size; j += blockDim.x)
      dd[j] = j == pick ? scalar_t(-1) : std::numeric_limits<scalar_t>::infinity();
    if (threadIdx.x == 0) out[o0] = base + pick;
    for (int64_t i = 1; i < count; ++i) {
      const scalar_t* last = pts + pick * dim;
      scalar_t best = -2;
      int64_t arg = -1;
      for (int64_t j = threadIdx.x; j < size; j += blockDim.x) {  // ascending j: strict > keeps the first
        scalar_t dj = dd[j];
        if (dj >= 0) {
          const scalar_t d = sq_dist(pts + j * dim, last, dim);
          if (d < dj) dd[j] = dj = d;
        }
        if (dj > best) {
          best = dj;
          arg = j;
        }
      }
      for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
        const scalar_t ov = __shfl_xor_sync(kFullMask, best, offset);
        const int64_t oi = __shfl_xor_sync(kFullMask, arg, offset);
        argmax_merge(best, arg, ov, oi);
      }
      if (lane == 0) {
        warp_best[warp] = best;
        warp_arg[warp] = arg;
      }
      __syncthreads();
      if (warp == 0) {
        best = lane < kWarpsPerBlock ? warp_best[lane] : scalar_t(-2);
        arg = lane < kWarpsPerBlock ? warp_arg[lane] : int64_t(-1);
        for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
          const scalar_t ov = __shfl_xor_sync(kFullMask, best, offset);
          const int64_t oi = __shfl_xor_sync(kFullMask, arg, offset);
          argmax_merge(best, arg, ov, oi);
        }
        if (lane == 0) {
          // an unpicked point (distance >= 0) always exists: count <= size
          pick_s = arg;
          out[o0 + i] = base + arg;
          dd[arg] = -1;
        }
      }
      __syncthreads();  // pick_s and dd[pick] visible to the block
      pick = pick_s;
    }
    __syncthreads();  // pick_s is read by all before the next example writes it
  }
}

// -- graclus -------------------------------------------------------------------------------------
// seen[v] counts the occurrences of v in perm; a repeat sets the flag.
__global__ void permutation_kernel(const int64_t* __restrict__ order, int64_t n, int* __restrict__ seen,
                                   int* flag) {
  for (int64_t i = global_thread(); i < n; i += thread_stride())
    if (atomicAdd(seen + order[i], 1) != 0) atomicOr(flag, 1);
}

// The matching the CPU runs (csrc/graclus_match.h), on a single thread: it is sequential.
template <typename scalar_t>
__global__ void graclus_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ cp,
                               const scalar_t* __restrict__ wp, const int64_t* __restrict__ order,
                               int64_t num_nodes, int64_t* __restrict__ cluster) {
  if (global_thread() == 0) graclus_match(rp, cp, wp, order, num_nodes, cluster);
}

// -- grid_cluster --------------------------------------------------------------------------------
using geometry::kGridLimit;

template <typename scalar_t>
__global__ void grid_cluster_kernel(const scalar_t* __restrict__ pp, const scalar_t* __restrict__ zp,
                                    const scalar_t* __restrict__ sp, const int64_t* __restrict__ stride,
                                    int64_t n, int64_t dim, int64_t* __restrict__ out) {
  for (int64_t i = global_thread(); i < n; i += thread_stride()) {
    uint64_t id = 0;  // unsigned: wraps instead of overflowing for points far outside [start, end]
    for (int64_t d = 0; d < dim; ++d) {
      const scalar_t cell = div_rn(sub_rn(pp[i * dim + d], sp[d]), zp[d]);
      const int64_t c = fabs(cell) < kGridLimit ? static_cast<int64_t>(cell) : std::numeric_limits<int64_t>::min();
      id += static_cast<uint64_t>(c) * static_cast<uint64_t>(stride[d]);
    }
    out[i] = static_cast<int64_t>(id);
  }
}

}  // namespace

// x [N, D], y [M, D], ptr_x/ptr_y [B + 1] -> [2, M * k]: row 0 the query
// (index into y), row 1 its neighbours (index into x) sorted by (distance,
// index), -1 where the query's example holds fewer than k points.
Tensor knn(Tensor x, Tensor y, Tensor ptr_x, Tensor ptr_y, int64_t k, bool cosine) {
  CudaContext ctx(x.is_cuda() ? x : y.is_cuda() ? y : ptr_x.is_cuda() ? ptr_x : ptr_y);
  check_pair(x, y, ptr_x, ptr_y, "knn", ctx);
  STD_TORCH_CHECK(k >= 1, "gnn_kernels::knn: 'k' must be positive, got ", k);
  const int64_t n = x.size(0), m = y.size(0), dim = y.size(1), num_examples = ptr_x.numel() - 1;
  STD_TORCH_CHECK(m == 0 || k <= std::numeric_limits<int64_t>::max() / m, "gnn_kernels::knn: 'k' is too large");
  Tensor out = torch::stable::new_empty(ptr_y, {2, m * k});
  int64_t* row = out.mutable_data_ptr<int64_t>();
  int64_t* col = row + m * k;
  dispatch_float(x.scalar_type(), "knn", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(x, xp, n * dim, ctx.stream()),
                    "gnn_kernels::knn: 'x' holds NaN or infinite coordinates");
    STD_TORCH_CHECK(all_finite(y, yp, m * dim, ctx.stream()),
                    "gnn_kernels::knn: 'y' holds NaN or infinite coordinates");
    if (m == 0) return;
    std::optional<Tensor> x_sq;
    if (cosine && n > 0) {
      x_sq = torch::stable::new_empty(x, {n});
      squared_norms_kernel<scalar_t><<<grid_threads(n), kThreads, 0, ctx.stream()>>>(
          xp, n, dim, x_sq->mutable_data_ptr<scalar_t>());
      GNN_CUDA_LAUNCH_CHECK();
    }
    Tensor best_d = torch::stable::new_empty(x, {m * k});
    knn_kernel<scalar_t><<<grid_threads(m), kThreads, 0, ctx.stream()>>>(
        xp, yp, x_sq.has_value() ? x_sq->const_data_ptr<scalar_t>() : nullptr,
        ptr_x.const_data_ptr<int64_t>(), ptr_y.const_data_ptr<int64_t>(), num_examples, m, dim, k,
        best_d.mutable_data_ptr<scalar_t>(), row, col);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

// x [N, D], y [M, D] -> [2, E]: pairs (query in y, point in x) with squared
// distance < r * r, sorted by query then point, at most max_num_neighbors per
// query (those with the smallest indices).
Tensor radius(Tensor x, Tensor y, Tensor ptr_x, Tensor ptr_y, double r, int64_t max_num_neighbors) {
  CudaContext ctx(x.is_cuda() ? x : y.is_cuda() ? y : ptr_x.is_cuda() ? ptr_x : ptr_y);
  check_pair(x, y, ptr_x, ptr_y, "radius", ctx);
  STD_TORCH_CHECK(std::isfinite(r) && r >= 0, "gnn_kernels::radius: 'r' must be finite and non-negative, got ", r);
  STD_TORCH_CHECK(max_num_neighbors >= 0, "gnn_kernels::radius: 'max_num_neighbors' must be non-negative, got ",
                  max_num_neighbors);
  const int64_t m = y.size(0), n = x.size(0), dim = y.size(1), num_examples = ptr_x.numel() - 1;
  std::optional<Tensor> out;
  dispatch_float(x.scalar_type(), "radius", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(x, xp, n * dim, ctx.stream()),
                    "gnn_kernels::radius: 'x' holds NaN or infinite coordinates");
    STD_TORCH_CHECK(all_finite(y, yp, m * dim, ctx.stream()),
                    "gnn_kernels::radius: 'y' holds NaN or infinite coordinates");
    if (m == 0 || n == 0 || max_num_neighbors == 0) {
      out = torch::stable::new_empty(ptr_y, {2, 0});
      return;
    }
    const scalar_t r2 = static_cast<scalar_t>(r * r);  // as on the CPU: squared in double, then rounded
    const int64_t* px = ptr_x.const_data_ptr<int64_t>();
    const int64_t* py = ptr_y.const_data_ptr<int64_t>();
    Tensor counts = torch::stable::new_empty(ptr_y, {m});
    Tensor offsets = torch::stable::new_empty(ptr_y, {m + 1});
    radius_count_kernel<scalar_t><<<grid_threads(m), kThreads, 0, ctx.stream()>>>(
        xp, yp, px, py, num_examples, m, dim, r2, max_num_neighbors, counts.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
    prefix_sum_kernel<<<1, kScanThreads, 0, ctx.stream()>>>(counts.const_data_ptr<int64_t>(), m,
                                                             offsets.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
    const int64_t* op = offsets.const_data_ptr<int64_t>();
    const int64_t total = fetch_long(op + m, ctx.stream());
    out = torch::stable::new_empty(ptr_y, {2, total});
    if (total == 0) return;
    int64_t* row = out->mutable_data_ptr<int64_t>();
    radius_fill_kernel<scalar_t><<<grid_threads(m), kThreads, 0, ctx.stream()>>>(
        xp, yp, px, py, num_examples, m, dim, r2, op, row, row + total);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return *out;
}

// src [N, D], ptr [B + 1], num_samples [B], start [B] (offset of the first pick
// inside each example) -> [sum(num_samples)] global indices, per example in
// pick order. Each next pick is the first point of largest squared distance to
// the picks so far; picked points are never picked again.
Tensor fps(Tensor src, Tensor ptr, Tensor num_samples, Tensor start) {
  CudaContext ctx(src.is_cuda() ? src : ptr.is_cuda() ? ptr : num_samples.is_cuda() ? num_samples : start);
  check_points(src, "fps", "src", ctx.device());
  const int64_t n = src.size(0), dim = src.size(1);
  const std::vector<int64_t> pp = check_offsets(ptr, n, "fps", "ptr", ctx);
  const int64_t num_examples = ptr.numel() - 1;
  check_long(num_samples, "num_samples", ctx.device());
  check_long(start, "start", ctx.device());
  STD_TORCH_CHECK(num_samples.numel() == num_examples && start.numel() == num_examples,
                  "gnn_kernels::fps: 'num_samples' and 'start' must have one entry per example (", num_examples,
                  ")");
  const std::vector<int64_t> np = to_host<int64_t>(num_samples, ctx.stream());
  const std::vector<int64_t> sp = to_host<int64_t>(start, ctx.stream());
  const std::vector<int64_t> out_ptr = geometry::fps_output_offsets(pp.data(), np.data(), sp.data(), num_examples);
  Tensor out = torch::stable::new_empty(ptr, {out_ptr[num_examples]});
  dispatch_float(src.scalar_type(), "fps", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = src.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(src, xp, n * dim, ctx.stream()),
                    "gnn_kernels::fps: 'src' holds NaN or infinite coordinates");
    if (out_ptr[num_examples] == 0) return;
    const Tensor out_ptr_d = to_device(ptr, out_ptr, ctx.stream());
    Tensor dist = torch::stable::new_empty(src, {n});
    fps_kernel<scalar_t><<<grid_for(num_examples, 1), kThreads, 0, ctx.stream()>>>(
        xp, dim, ptr.const_data_ptr<int64_t>(), out_ptr_d.const_data_ptr<int64_t>(),
        start.const_data_ptr<int64_t>(), num_examples, dist.mutable_data_ptr<scalar_t>(),
        out.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

// rowptr [N + 1], col [E] (CSR of the directed edges u -> v), weight [E] >= 0
// to be eligible, perm [N] the visiting order -> cluster [N]: a matched pair
// (u, v) gets min(u, v), an unmatched node its own index. Ties in weight go to
// the first eligible edge of u; self-loops are ignored.
Tensor graclus(Tensor rowptr, Tensor col, Tensor weight, Tensor perm) {
  CudaContext ctx(rowptr.is_cuda() ? rowptr : col.is_cuda() ? col : weight.is_cuda() ? weight : perm);
  check_long(rowptr, "rowptr", ctx.device());
  const int64_t num_nodes = rowptr.numel() - 1;
  STD_TORCH_CHECK(num_nodes >= 0, "gnn_kernels::graclus: 'rowptr' must not be empty");
  check_csr(rowptr, col, num_nodes, ctx);
  check_cuda_contiguous(weight, "weight", ctx.device());
  STD_TORCH_CHECK(weight.dim() == 1 && weight.numel() == col.numel(), "gnn_kernels::graclus: 'weight' must have ",
                  col.numel(), " entries (one per edge)");
  check_index(perm, num_nodes, "perm", ctx);
  STD_TORCH_CHECK(perm.numel() == num_nodes, "gnn_kernels::graclus: 'perm' must have ", num_nodes, " entries");
  const int64_t* order = perm.const_data_ptr<int64_t>();
  if (num_nodes > 0) {
    Tensor seen = torch::stable::new_zeros(perm, {num_nodes}, ScalarType::Int);
    ErrorFlag flag(perm, ctx.stream());
    permutation_kernel<<<grid_threads(num_nodes), kThreads, 0, ctx.stream()>>>(
        order, num_nodes, seen.mutable_data_ptr<int>(), flag.ptr());
    GNN_CUDA_LAUNCH_CHECK();
    if (flag.fetch() != 0) {  // name the first repeat, as the CPU does
      const std::vector<int64_t> host = to_host<int64_t>(perm, ctx.stream());
      std::vector<char> seen_host(num_nodes, 0);
      for (int64_t i = 0; i < num_nodes; ++i) {
        STD_TORCH_CHECK(!seen_host[host[i]], "gnn_kernels::graclus: 'perm' must be a permutation of the nodes, ",
                        host[i], " occurs twice");
        seen_host[host[i]] = 1;
      }
    }
  }
  Tensor out = torch::stable::new_empty(rowptr, {num_nodes});
  torch::stable::fill_(out, -1.0);
  dispatch_float(weight.scalar_type(), "graclus", [&](auto tag) {
    using scalar_t = decltype(tag);
    if (num_nodes == 0) return;
    graclus_kernel<scalar_t><<<1, 1, 0, ctx.stream()>>>(rowptr.const_data_ptr<int64_t>(),
                                                        col.const_data_ptr<int64_t>(),
                                                        weight.const_data_ptr<scalar_t>(), order, num_nodes,
                                                        out.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

// pos [N, D], size/start/end [D] -> cluster [N]:
//   sum_d trunc((pos[i, d] - start[d]) / size[d]) * prod_{d' < d} (trunc((end[d'] - start[d']) / size[d']) + 1)
Tensor grid_cluster(Tensor pos, Tensor size, Tensor start, Tensor end) {
  CudaContext ctx(pos.is_cuda() ? pos : size.is_cuda() ? size : start.is_cuda() ? start : end);
  check_points(pos, "grid_cluster", "pos", ctx.device());
  const int64_t n = pos.size(0), dim = pos.size(1);
  const Tensor* vecs[3] = {&size, &start, &end};
  const char* names[3] = {"size", "start", "end"};
  for (int i = 0; i < 3; ++i) {
    check_cuda_contiguous(*vecs[i], names[i], ctx.device());
    STD_TORCH_CHECK(vecs[i]->dim() == 1 && vecs[i]->numel() == dim, "gnn_kernels::grid_cluster: '", names[i],
                    "' must have shape [", dim, "]");
    STD_TORCH_CHECK(vecs[i]->scalar_type() == pos.scalar_type(), "gnn_kernels::grid_cluster: '", names[i],
                    "' must have the dtype of 'pos'");
  }
  Tensor out = torch::stable::new_empty(pos, {n}, ScalarType::Long);
  dispatch_float(pos.scalar_type(), "grid_cluster", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* pp = pos.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(pos, pp, n * dim, ctx.stream()),
                    "gnn_kernels::grid_cluster: 'pos' holds NaN or infinite coordinates");
    const std::vector<scalar_t> zp = to_host<scalar_t>(size, ctx.stream());
    const std::vector<scalar_t> sp = to_host<scalar_t>(start, ctx.stream());
    const std::vector<scalar_t> ep = to_host<scalar_t>(end, ctx.stream());
    const std::vector<int64_t> stride = geometry::grid_strides(zp.data(), sp.data(), ep.data(), dim);
    if (n == 0) return;
    const Tensor stride_d = to_device(pos, stride, ctx.stream());
    grid_cluster_kernel<scalar_t><<<grid_threads(n), kThreads, 0, ctx.stream()>>>(
        pp, size.const_data_ptr<scalar_t>(), start.const_data_ptr<scalar_t>(), stride_d.const_data_ptr<int64_t>(),
        n, dim, out.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("knn", TORCH_BOX(&gnn_kernels::gpu::knn));
  m.impl("radius", TORCH_BOX(&gnn_kernels::gpu::radius));
  m.impl("fps", TORCH_BOX(&gnn_kernels::gpu::fps));
  m.impl("graclus", TORCH_BOX(&gnn_kernels::gpu::graclus));
  m.impl("grid_cluster", TORCH_BOX(&gnn_kernels::gpu::grid_cluster));
}
