// Helpers shared by the fused per-edge-feature attention kernels
// (dot_attention.cpp, gatv2_attention.cpp): input checks and the row chunking
// that lets a reduction over all edges (GATv2's attention-vector gradient) use
// per-chunk partial sums instead of atomics.
#pragma once

#include "common.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

namespace gnn_kernels {
namespace fused {

// t: [rows, heads, channels], CPU, contiguous, of the given dtype.
inline void check_hc(const Tensor& t, const char* op, const char* name, int64_t rows, int64_t heads,
                     int64_t channels, ScalarType dtype) {
  check_cpu_contiguous(t, name);
  STD_TORCH_CHECK(t.dim() == 3 && t.size(0) == rows && t.size(1) == heads && t.size(2) == channels,
                  "gnn_kernels::", op, ": '", name, "' must be [", rows, ", ", heads, ", ", channels, "]");
  STD_TORCH_CHECK(t.scalar_type() == dtype, "gnn_kernels::", op, ": '", name, "' dtype must match");
}

// t: [rows, heads], CPU, contiguous, of the given dtype.
inline void check_eh(const Tensor& t, const char* op, const char* name, int64_t rows, int64_t heads,
                     ScalarType dtype) {
  check_cpu_contiguous(t, name);
  STD_TORCH_CHECK(t.dim() == 2 && t.size(0) == rows && t.size(1) == heads, "gnn_kernels::", op, ": '", name,
                  "' must be [", rows, ", ", heads, "]");
  STD_TORCH_CHECK(t.scalar_type() == dtype, "gnn_kernels::", op, ": '", name, "' dtype must match");
}

// The transposed pattern of an [m x n] CSR with e entries: t_rowptr [n + 1],
// t_col [e] in [0, m), t_perm [e] in [0, e) (CSR position of each entry).
inline void check_transposed(const std::optional<Tensor>& t_rowptr, const std::optional<Tensor>& t_col,
                             const std::optional<Tensor>& t_perm, const char* op, int64_t m, int64_t n,
                             int64_t e) {
  STD_TORCH_CHECK(t_rowptr.has_value() && t_col.has_value() && t_perm.has_value(), "gnn_kernels::", op,
                  ": the backward pass needs the transposed pattern (t_rowptr, t_col, t_perm)");
  STD_TORCH_CHECK(t_rowptr->numel() == n + 1, "gnn_kernels::", op, ": 't_rowptr' must have ", n + 1,
                  " entries");
  STD_TORCH_CHECK(t_col->numel() == e && t_perm->numel() == e, "gnn_kernels::", op,
                  ": 't_col' and 't_perm' must have ", e, " entries");
  check_csr(*t_rowptr, *t_col, m);
  check_index(*t_perm, e, "t_perm");
}

// Split [0, n) into a fixed number of chunks (independent of the thread count,
// so sums over chunks are deterministic) and run body(chunk, begin, end) on the
// thread pool. Returns the number of chunks.
template <class F>
inline int64_t for_chunks(int64_t n, int64_t rows_per_chunk, const F& body) {
  if (n <= 0) return 0;
  const int64_t chunks = std::min<int64_t>((n + rows_per_chunk - 1) / rows_per_chunk, 1024);
  parallel_rows(chunks, 1, [&](int64_t b, int64_t en) {
    for (int64_t t = b; t < en; ++t) body(t, n * t / chunks, n * (t + 1) / chunks);
  });
  return chunks;
}

inline int64_t num_chunks(int64_t n, int64_t rows_per_chunk) {
  return n <= 0 ? 0 : std::min<int64_t>((n + rows_per_chunk - 1) / rows_per_chunk, 1024);
}

// One-pass softmax-weighted sum over the entries of one CSR row, per head
// (flash-attention style). Per row: start(); per entry and head, store the raw
// score in alpha and fold it in with add(), which keeps the running maximum and
// sum (rescaling the head's accumulated output when the maximum grows) and
// returns the weight exp(score - max) by which the caller adds the entry's
// message to that output; finish() divides the output by the sum and turns the
// row's stored scores into softmax weights.
template <typename scalar_t>
class OnlineSoftmax {
 public:
  OnlineSoftmax(int64_t heads, int64_t channels) : heads_(heads), channels_(channels), mx_(heads), sum_(heads) {}

  void start() {
    for (int64_t h = 0; h < heads_; ++h) {
      mx_[h] = -std::numeric_limits<scalar_t>::infinity();
      sum_[h] = 0;
    }
  }

  // oh: the head's running output [channels]
  scalar_t add(int64_t h, scalar_t score, scalar_t* oh) {
    if (score > mx_[h]) {  // new running max: rescale what was summed so far
      const scalar_t corr = exp_nonpositive(mx_[h] - score);
      sum_[h] *= corr;
#pragma omp simd
      for (int64_t f = 0; f < channels_; ++f) oh[f] *= corr;
      mx_[h] = score;
    }
    const scalar_t p = exp_nonpositive(score - mx_[h]);
    sum_[h] += p;
    return p;
  }

  // o: the row's output [heads * channels]; alpha: its `entries` score rows [entries * heads]
  void finish(scalar_t* o, scalar_t* alpha, int64_t entries) {
    for (int64_t h = 0; h < heads_; ++h) {
      sum_[h] = scalar_t(1) / (sum_[h] + scalar_t(1e-16));
      scalar_t* oh = o + h * channels_;
#pragma omp simd
      for (int64_t f = 0; f < channels_; ++f) oh[f] *= sum_[h];
    }
    for (int64_t k = 0; k < entries; ++k)
      for (int64_t h = 0; h < heads_; ++h)
        alpha[k * heads_ + h] = exp_nonpositive(alpha[k * heads_ + h] - mx_[h]) * sum_[h];
  }

 private:
  int64_t heads_, channels_;
  std::vector<scalar_t> mx_, sum_;
};

}  // namespace fused
}  // namespace gnn_kernels
