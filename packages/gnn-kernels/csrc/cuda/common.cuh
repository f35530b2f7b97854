// Shared helpers of gnn-kernels' CUDA ops (torch stable ABI only).
//
// The CUDA kernels are transliterations of the CPU loops in csrc/cpu: the
// same ops, schemas, checks and error messages. Every kernel runs on the
// current CUDA stream of the input's device (obtained through the stable C
// shim), under a stable-ABI device guard.
//
// Index validation: a small kernel checks the indices on the device and sets
// bits of an int32 error flag with atomicOr; the flag is copied back to the
// host (one stream synchronisation per op) and STD_TORCH_CHECK raises there,
// before any kernel dereferences the indices. No device-side assert or trap
// is ever used, so a bad index gives a Python exception, never a dead context.
#pragma once

// The CUDA parts of the stable C shim (current stream, CUDA error messages)
// are declared only under USE_CUDA.
#ifndef USE_CUDA
#define USE_CUDA
#endif

#include <cuda_runtime.h>

#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/c/shim.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <limits>
#include <cstdint>
#include <optional>
#include <tuple>

namespace gnn_kernels {
namespace gpu {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

constexpr int kWarp = 32;
constexpr int kThreads = 256;  // threads per block for every kernel
constexpr int kWarpsPerBlock = kThreads / kWarp;
constexpr unsigned kFullMask = 0xffffffffu;

// -- launch geometry ---------------------------------------------------------------------------
// Every kernel uses grid-stride loops, so the grid is capped and any size works.
inline unsigned grid_for(int64_t items, int64_t items_per_block) {
  const int64_t blocks = (items + items_per_block - 1) / items_per_block;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(1) << 20)));
}

// Grid for "one thread per item".
inline unsigned grid_threads(int64_t items) { return grid_for(items, kThreads); }

// Grid for "one warp per row".
inline unsigned grid_warps(int64_t rows) { return grid_for(rows, kWarpsPerBlock); }

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__device__ __forceinline__ int64_t global_warp() { return global_thread() / kWarp; }

__device__ __forceinline__ int64_t warp_stride() { return thread_stride() / kWarp; }

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x) & (kWarp - 1); }

// -- warp reductions (xor butterfly: every lane ends with the bitwise same value) ---------------
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Maximum that, like the CPU loops' `s > m ? s : m`, never picks up a NaN.
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
    const T other = __shfl_xor_sync(kFullMask, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

__device__ __forceinline__ float device_exp(float v) { return expf(v); }
__device__ __forceinline__ double device_exp(double v) { return exp(v); }

// -- floating-point atomic max/min (compare-and-swap loops) --------------------------------------
// The stored value changes only when `val` is strictly greater (max) or
// smaller (min) than it, so NaN is never stored: the same rule as the CPU
// loops' `s > o` / `s < o`.
__device__ __forceinline__ void atomic_max_min(float* address, float val, bool is_max) {
  int* bits = reinterpret_cast<int*>(address);
  int old = *bits;
  while (is_max ? val > __int_as_float(old) : val < __int_as_float(old)) {
    const int assumed = old;
    old = atomicCAS(bits, assumed, __float_as_int(val));
    if (old == assumed) break;
  }
}

__device__ __forceinline__ void atomic_max_min(double* address, double val, bool is_max) {
  unsigned long long* bits = reinterpret_cast<unsigned long long*>(address);
  unsigned long long old = *bits;
  while (is_max ? val > __longlong_as_double(static_cast<long long>(old))
                : val < __longlong_as_double(static_cast<long long>(old))) {
    const unsigned long long assumed = old;
    old = atomicCAS(bits, assumed, static_cast<unsigned long long>(__double_as_longlong(val)));
    if (old == assumed) break;
  }
}

// Atomic `*address *= val` (a compare-and-swap loop: CUDA has no atomic multiply).
// Like atomicAdd, the order of the factors, hence the last bits, may vary from run to run.
__device__ __forceinline__ void atomic_mul(float* address, float val) {
  int* bits = reinterpret_cast<int*>(address);
  int old = *bits, assumed;
  do {
    assumed = old;
    old = atomicCAS(bits, assumed, __float_as_int(__int_as_float(assumed) * val));
  } while (old != assumed);
}

__device__ __forceinline__ void atomic_mul(double* address, double val) {
  unsigned long long* bits = reinterpret_cast<unsigned long long*>(address);
  unsigned long long old = *bits, assumed;
  do {
    assumed = old;
    const double product = __longlong_as_double(static_cast<long long>(assumed)) * val;
    old = atomicCAS(bits, assumed, static_cast<unsigned long long>(__double_as_longlong(product)));
  } while (old != assumed);
}

// -- device, stream ------------------------------------------------------------------------------
// Sets the current device to the input's and fetches that device's current stream.
class CudaContext {
 public:
  explicit CudaContext(const Tensor& t) : device_(t.get_device_index()), guard_(device_) {
    void* handle = nullptr;
    STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device_, &handle));
    stream_ = static_cast<cudaStream_t>(handle);
  }
  int32_t device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

 private:
  int32_t device_;
  torch::stable::accelerator::DeviceGuard guard_;
  cudaStream_t stream_ = nullptr;
};

// -- host-side checks (the CUDA counterparts of csrc/cpu/common.h) -------------------------------
inline void check_cuda_tensor(const Tensor& t, const char* name) {
  STD_TORCH_CHECK(t.is_cuda(), "gnn_kernels: '", name, "' must be a CUDA tensor");
}

inline void check_cuda_contiguous(const Tensor& t, const char* name, int32_t device) {
  check_cuda_tensor(t, name);
  STD_TORCH_CHECK(t.get_device_index() == device, "gnn_kernels: '", name, "' must be on cuda:", device,
                  " like the other inputs, got cuda:", t.get_device_index());
  STD_TORCH_CHECK(t.is_contiguous(), "gnn_kernels: '", name, "' must be contiguous");
}

inline void check_long(const Tensor& t, const char* name, int32_t device) {
  check_cuda_contiguous(t, name, device);
  STD_TORCH_CHECK(t.scalar_type() == ScalarType::Long, "gnn_kernels: '", name, "' must be int64");
  STD_TORCH_CHECK(t.dim() == 1, "gnn_kernels: '", name, "' must be 1-D");
}

// Call `body(scalar_t{})` for float32/float64 tensors; inside a generic lambda
// `using scalar_t = decltype(tag);` recovers the type.
template <class F>
inline void dispatch_float(ScalarType type, const char* name, const F& body) {
  if (type == ScalarType::Float) {
    body(float{});
  } else if (type == ScalarType::Double) {
    body(double{});
  } else {
    STD_TORCH_CHECK(false, "gnn_kernels::", name, ": only float32/float64 are supported");
  }
}

// Raise the error of the last kernel launch, if any.
#define GNN_CUDA_LAUNCH_CHECK() STD_CUDA_KERNEL_LAUNCH_CHECK()

// -- device-side index validation ----------------------------------------------------------------
enum CheckBits : int {
  kBadPtrEnds = 1,   // ptr[0] != 0 or ptr[m] != number of entries
  kBadPtrOrder = 2,  // ptr decreases somewhere
  kBadIndex = 4,     // an index outside [0, size)
};

// An int32 flag on the device, zeroed on the current stream; kernels set bits
// with atomicOr, fetch() copies it back (synchronising the stream).
class ErrorFlag {
 public:
  ErrorFlag(const Tensor& like, cudaStream_t stream)
      : flag_(torch::stable::new_zeros(like, {1}, ScalarType::Int)), stream_(stream) {}
  int* ptr() const { return flag_.mutable_data_ptr<int>(); }
  int fetch() const {
    int host = 0;
    STD_CUDA_CHECK(
        cudaMemcpyAsync(&host, flag_.const_data_ptr<int>(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    STD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host;
  }

 private:
  Tensor flag_;
  cudaStream_t stream_;
};

// Checks ptr [m + 1] (ends 0 and `entries`, non-decreasing) and, if `index`
// is given, index [n] in [0, size). One thread per position.
static __global__ void check_ptr_index_kernel(const int64_t* __restrict__ ptr, int64_t m, int64_t entries,
                                       const int64_t* __restrict__ index, int64_t n, int64_t size,
                                       int* flag) {
  const int64_t total = (ptr != nullptr && m + 1 > n) ? m + 1 : n;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    int bits = 0;
    if (ptr != nullptr) {
      if (t == 0 && (ptr[0] != 0 || ptr[m] != entries)) bits |= kBadPtrEnds;
      if (t < m && ptr[t + 1] < ptr[t]) bits |= kBadPtrOrder;
    }
    if (index != nullptr && t < n && (index[t] < 0 || index[t] >= size)) bits |= kBadIndex;
    if (bits != 0) atomicOr(flag, bits);
  }
}

// Runs the check kernel and returns the flag bits (synchronises the stream).
inline int run_index_checks(const Tensor& like, cudaStream_t stream, const int64_t* ptr, int64_t m,
                            int64_t entries, const int64_t* index, int64_t n, int64_t size) {
  const int64_t total = (ptr != nullptr && m + 1 > n) ? m + 1 : n;
  if (total <= 0) return 0;
  ErrorFlag flag(like, stream);
  check_ptr_index_kernel<<<grid_threads(total), kThreads, 0, stream>>>(ptr, m, entries, index, n, size,
                                                                        flag.ptr());
  GNN_CUDA_LAUNCH_CHECK();
  return flag.fetch();
}

inline int64_t fetch_long(const int64_t* device_ptr, cudaStream_t stream) {
  int64_t host = 0;
  STD_CUDA_CHECK(cudaMemcpyAsync(&host, device_ptr, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
  STD_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

// Validate a CSR pattern: rowptr [M+1] monotone from 0 to E, col in [0, N).
// Same checks and messages as the CPU check_csr.
inline void check_csr(const Tensor& rowptr, const Tensor& col, int64_t num_cols, const CudaContext& ctx) {
  check_long(rowptr, "rowptr", ctx.device());
  check_long(col, "col", ctx.device());
  const int64_t m = rowptr.numel() - 1;
  const int64_t e = col.numel();
  STD_TORCH_CHECK(m >= 0, "gnn_kernels: 'rowptr' must not be empty");
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int bits =
      run_index_checks(rowptr, ctx.stream(), rp, m, e, col.const_data_ptr<int64_t>(), e, num_cols);
  if (bits & kBadPtrEnds) {
    const int64_t first = fetch_long(rp, ctx.stream()), last = fetch_long(rp + m, ctx.stream());
    STD_TORCH_CHECK(false, "gnn_kernels: 'rowptr' must start at 0 and end at ", e,
                    " (the number of entries), got ", first, " and ", last);
  }
  STD_TORCH_CHECK(!(bits & kBadPtrOrder), "gnn_kernels: 'rowptr' must be monotonically non-decreasing");
  STD_TORCH_CHECK(!(bits & kBadIndex), "gnn_kernels: 'col' holds an index out of range for ", num_cols,
                  " source nodes");
}

inline void check_index(const Tensor& index, int64_t size, const char* name, const CudaContext& ctx) {
  check_long(index, name, ctx.device());
  const int bits = run_index_checks(index, ctx.stream(), nullptr, 0, 0, index.const_data_ptr<int64_t>(),
                                    index.numel(), size);
  STD_TORCH_CHECK(!(bits & kBadIndex), "gnn_kernels: '", name, "' holds an index out of range [0, ", size,
                  ")");
}

}  // namespace gpu
}  // namespace gnn_kernels
