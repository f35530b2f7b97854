// Shared helpers of gnn-kernels' CPU ops (torch stable ABI only).
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <optional>
#include <vector>

namespace gnn_kernels {

using torch::stable::Tensor;
using torch::headeronly::ScalarType;

// Run `body(begin, end)` over [0, n) on torch's intra-op thread pool.
template <class F>
inline void parallel_rows(int64_t n, int64_t grain, const F& body) {
  if (n <= 0) return;
  torch::stable::parallel_for(0, n, grain, body);
}

inline void check_cpu_contiguous(const Tensor& t, const char* name) {
  STD_TORCH_CHECK(t.is_cpu(), "gnn_kernels: '", name, "' must be a CPU tensor");
  STD_TORCH_CHECK(t.is_contiguous(), "gnn_kernels: '", name, "' must be contiguous");
}

inline void check_long(const Tensor& t, const char* name) {
  check_cpu_contiguous(t, name);
  STD_TORCH_CHECK(t.scalar_type() == ScalarType::Long, "gnn_kernels: '", name, "' must be int64");
  STD_TORCH_CHECK(t.dim() == 1, "gnn_kernels: '", name, "' must be 1-D");
}

// Validate a CSR pattern: rowptr [M+1] monotone from 0 to E, col in [0, N).
// The bounds pass runs in parallel; the error is raised outside the parallel
// region so that no exception ever crosses the thread pool.
inline void check_csr(const Tensor& rowptr, const Tensor& col, int64_t num_cols) {
  check_long(rowptr, "rowptr");
  check_long(col, "col");
  const int64_t m = rowptr.numel() - 1;
  const int64_t e = col.numel();
  STD_TORCH_CHECK(m >= 0, "gnn_kernels: 'rowptr' must not be empty");
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  STD_TORCH_CHECK(rp[0] == 0 && rp[m] == e, "gnn_kernels: 'rowptr' must start at 0 and end at ", e,
                  " (the number of entries), got ", rp[0], " and ", rp[m]);
  std::atomic<bool> bad_ptr{false}, bad_col{false};
  parallel_rows(m, 4096, [&](int64_t b, int64_t en) {
    for (int64_t i = b; i < en; ++i)
      if (rp[i + 1] < rp[i]) bad_ptr.store(true, std::memory_order_relaxed);
  });
  STD_TORCH_CHECK(!bad_ptr.load(), "gnn_kernels: 'rowptr' must be monotonically non-decreasing");
  parallel_rows(e, 1 << 16, [&](int64_t b, int64_t en) {
    bool local = false;
    for (int64_t k = b; k < en; ++k) local |= (c[k] < 0) | (c[k] >= num_cols);
    if (local) bad_col.store(true, std::memory_order_relaxed);
  });
  STD_TORCH_CHECK(!bad_col.load(), "gnn_kernels: 'col' holds an index out of range for ", num_cols,
                  " source nodes");
}

inline void check_index(const Tensor& index, int64_t size, const char* name) {
  check_long(index, name);
  const int64_t* p = index.const_data_ptr<int64_t>();
  std::atomic<bool> bad{false};
  parallel_rows(index.numel(), 1 << 16, [&](int64_t b, int64_t en) {
    bool local = false;
    for (int64_t k = b; k < en; ++k) local |= (p[k] < 0) | (p[k] >= size);
    if (local) bad.store(true, std::memory_order_relaxed);
  });
  STD_TORCH_CHECK(!bad.load(), "gnn_kernels: '", name, "' holds an index out of range [0, ", size, ")");
}

// Bounds check of `index` against [0, size) and, in the same pass, whether it is
// sorted (non-decreasing). Errors are raised outside the parallel region.
inline bool check_index_sorted(const Tensor& index, int64_t size) {
  check_long(index, "index");
  const int64_t* p = index.const_data_ptr<int64_t>();
  const int64_t n = index.numel();
  std::atomic<bool> bad{false}, unsorted{false};
  parallel_rows(n, 1 << 16, [&](int64_t b, int64_t en) {
    bool out_of_range = false, down = b > 0 && p[b - 1] > p[b];
    for (int64_t k = b; k < en; ++k) out_of_range |= (p[k] < 0) | (p[k] >= size);
    for (int64_t k = b + 1; k < en; ++k) down |= p[k - 1] > p[k];
    if (out_of_range) bad.store(true, std::memory_order_relaxed);
    if (down) unsorted.store(true, std::memory_order_relaxed);
  });
  STD_TORCH_CHECK(!bad.load(), "gnn_kernels: 'index' holds an index out of range [0, ", size, ")");
  return !unsorted.load();
}

// Prefetch distance (in edges) for gathered feature rows.
constexpr int64_t kPrefetch = 4;

template <typename T>
inline void prefetch_row(const T* row, int64_t count) {
  const char* p = reinterpret_cast<const char*>(row);
  const int64_t bytes = count * static_cast<int64_t>(sizeof(T));
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 1);
}

// exp(v) for v <= 0 (a score minus its row maximum; every softmax kernel needs only these), branch-free so that it
// vectorizes under `omp simd`: 2^n * exp(r) with n = round(v / ln2) (read from
// the low mantissa bits of v / ln2 + 1.5 * 2^23, no float -> int conversion),
// r = v - n ln2 in [-ln2/2, ln2/2] and a degree-6 polynomial for exp(r)
// (about 1 ulp). Exactly 0 below -87 (and for -inf); NaN stays NaN.
inline float exp_nonpositive(float v) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  constexpr uint32_t kShiftBits = 0x4B400000u;
  const float vc = v < -87.0f ? -87.0f : v;
  const float t = vc * 1.44269504088896341f + kShift;
  const float n = t - kShift;
  uint32_t t_bits;
  std::memcpy(&t_bits, &t, sizeof(t_bits));
  float r = vc - n * 0.693359375f;  // ln2 split in two for an exact first product
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const uint32_t scale_bits = (t_bits - kShiftBits + 127u) << 23;  // 2^n, n in [-126, 0]
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof(scale));
  const float out = y * scale;
  return v < -87.0f ? 0.0f : out;
}

inline double exp_nonpositive(double v) { return std::exp(v); }

inline bool is_float_type(ScalarType t) { return t == ScalarType::Float || t == ScalarType::Double; }

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

}  // namespace gnn_kernels
