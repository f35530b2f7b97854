// Group reductions of rows of src [E, F]:
//   scatter_reduce: groups given by an unsorted index; threads split the
//                   feature columns, so no two threads write one location.
//   segment_reduce: groups given by sorted offsets ptr; threads split groups.
// reduce (csrc/reduce.h): sum, mean, max, min, mul (an empty group gives 1,
// the product of nothing; 0 for the others). segment_reduce returns for
// max/min the winning row (or -1 for an empty group, whose output is 0);
// scatter_reduce keeps its max/min loop branch-free and returns no arg (the
// backward finds the winners by comparison and splits ties, as torch does).
// scatter_reduce detects a sorted index (one pass, fused with the bounds
// check) and then reduces contiguous runs with threads split by group.
#include "common.h"
#include "../reduce.h"

#include <algorithm>
#include <limits>

namespace gnn_kernels {

namespace {

template <typename scalar_t>
inline scalar_t init_value(int64_t reduce) {
  if (reduce == kMax) return -std::numeric_limits<scalar_t>::infinity();
  if (reduce == kMin) return std::numeric_limits<scalar_t>::infinity();
  return reduce == kMul ? scalar_t(1) : scalar_t(0);
}

// o[f0:f1) <- reduce(o, s) elementwise, for every reduction but the mean's final division.
template <typename scalar_t>
inline void combine_row(scalar_t* __restrict__ o, const scalar_t* __restrict__ s, int64_t f0, int64_t f1,
                        int64_t reduce) {
  if (reduce == kSum || reduce == kMean) {
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) o[f] += s[f];
  } else if (reduce == kMul) {
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) o[f] *= s[f];
  } else if (reduce == kMax) {
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) o[f] = s[f] > o[f] ? s[f] : o[f];
  } else {
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) o[f] = s[f] < o[f] ? s[f] : o[f];
  }
}

// scatter_reduce for a sorted index: threads split the groups (each group's
// rows are contiguous), rows are added in the same order as in the general
// loop, so the results are identical; only the memory traffic differs.
template <typename scalar_t>
void scatter_sorted(const scalar_t* sp, const int64_t* ip, int64_t e, int64_t feats, int64_t dim_size,
                    int64_t reduce, scalar_t* op) {
  const scalar_t init = init_value<scalar_t>(reduce);
  parallel_rows(dim_size, 16, [&](int64_t g0, int64_t g1) {
    int64_t k = std::lower_bound(ip, ip + e, g0) - ip;
    for (int64_t g = g0; g < g1; ++g) {
      scalar_t* __restrict__ o = op + g * feats;
      for (int64_t f = 0; f < feats; ++f) o[f] = init;
      const int64_t start = k;
      for (; k < e && ip[k] == g; ++k) combine_row(o, sp + k * feats, 0, feats, reduce);
      const int64_t count = k - start;
      if (reduce == kMean && count > 1) {
        const scalar_t inv = scalar_t(1) / scalar_t(count);
        for (int64_t f = 0; f < feats; ++f) o[f] *= inv;
      }
      if (is_minmax(reduce))  // empty groups give 0
        for (int64_t f = 0; f < feats; ++f)
          if (o[f] == init) o[f] = 0;
    }
  });
}

}  // namespace

std::tuple<Tensor, Tensor> scatter_reduce(Tensor src, Tensor index, int64_t dim_size, int64_t reduce) {
  check_cpu_contiguous(src, "src");
  STD_TORCH_CHECK(src.dim() == 2, "gnn_kernels::scatter_reduce: 'src' must be [E, F]");
  STD_TORCH_CHECK(index.numel() == src.size(0), "gnn_kernels::scatter_reduce: 'index' must have E entries");
  STD_TORCH_CHECK(valid_reduce(reduce), "gnn_kernels::scatter_reduce: unknown reduce ", reduce);
  STD_TORCH_CHECK(dim_size >= 0, "gnn_kernels::scatter_reduce: 'dim_size' must be non-negative");
  const bool sorted = check_index_sorted(index, dim_size);
  const int64_t e = src.size(0), feats = src.size(1);
  Tensor out = torch::stable::new_empty(src, {dim_size, feats});
  Tensor arg = torch::stable::new_empty(src, {0, 0}, ScalarType::Long);
  const int64_t* ip = index.const_data_ptr<int64_t>();
  dispatch_float(src.scalar_type(), "scatter_reduce", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* sp = src.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    if (sorted) {  // e.g. a batch vector: a segment reduction, split by groups
      scatter_sorted(sp, ip, e, feats, dim_size, reduce, op);
      return;
    }
    const scalar_t init = init_value<scalar_t>(reduce);
    // threads split the feature columns (blocks of 8), so no two write one location
    const int64_t block = 8;
    const int64_t num_blocks = (feats + block - 1) / block;
    parallel_rows(num_blocks, 1, [&](int64_t b0, int64_t b1) {
      const int64_t f0 = b0 * block, f1 = std::min(feats, b1 * block);
      for (int64_t g = 0; g < dim_size; ++g)
        for (int64_t f = f0; f < f1; ++f) op[g * feats + f] = init;
      for (int64_t k = 0; k < e; ++k) combine_row(op + ip[k] * feats, sp + k * feats, f0, f1, reduce);
      if (is_minmax(reduce))  // empty groups give 0
        for (int64_t g = 0; g < dim_size; ++g)
          for (int64_t f = f0; f < f1; ++f)
            if (op[g * feats + f] == init) op[g * feats + f] = 0;
    });
    if (reduce == kMean) {
      std::vector<int64_t> count(dim_size, 0);
      for (int64_t k = 0; k < e; ++k) count[ip[k]]++;
      parallel_rows(dim_size, 256, [&](int64_t g0, int64_t g1) {
        for (int64_t g = g0; g < g1; ++g)
          if (count[g] > 1) {
            const scalar_t inv = scalar_t(1) / scalar_t(count[g]);
            for (int64_t f = 0; f < feats; ++f) op[g * feats + f] *= inv;
          }
      });
    }
  });
  return std::make_tuple(out, arg);
}

std::tuple<Tensor, Tensor> segment_reduce(Tensor src, Tensor ptr, int64_t reduce) {
  check_cpu_contiguous(src, "src");
  STD_TORCH_CHECK(src.dim() == 2, "gnn_kernels::segment_reduce: 'src' must be [E, F]");
  STD_TORCH_CHECK(valid_reduce(reduce), "gnn_kernels::segment_reduce: unknown reduce ", reduce);
  check_long(ptr, "ptr");
  const int64_t m = ptr.numel() - 1, e = src.size(0), feats = src.size(1);
  STD_TORCH_CHECK(m >= 0, "gnn_kernels::segment_reduce: 'ptr' must not be empty");
  const int64_t* pp = ptr.const_data_ptr<int64_t>();
  STD_TORCH_CHECK(pp[0] == 0 && pp[m] == e, "gnn_kernels::segment_reduce: 'ptr' must run from 0 to ", e);
  for (int64_t i = 0; i < m; ++i)
    STD_TORCH_CHECK(pp[i + 1] >= pp[i], "gnn_kernels::segment_reduce: 'ptr' must be monotonically non-decreasing");
  const bool arg_needed = is_minmax(reduce);
  Tensor out = torch::stable::new_empty(src, {m, feats});
  Tensor arg = torch::stable::new_empty(src, {arg_needed ? m : 0, arg_needed ? feats : 0}, ScalarType::Long);
  dispatch_float(src.scalar_type(), "segment_reduce", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* sp = src.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    int64_t* ap = arg_needed ? arg.mutable_data_ptr<int64_t>() : nullptr;
    const scalar_t init = init_value<scalar_t>(reduce);
    parallel_rows(m, 16, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        scalar_t* o = op + g * feats;
        int64_t* a = ap ? ap + g * feats : nullptr;
        for (int64_t f = 0; f < feats; ++f) {
          o[f] = init;
          if (a) a[f] = -1;
        }
        for (int64_t k = pp[g]; k < pp[g + 1]; ++k) {
          const scalar_t* s = sp + k * feats;
          if (!arg_needed) {
            combine_row(o, s, 0, feats, reduce);
          } else {
            for (int64_t f = 0; f < feats; ++f)
              if (reduce == kMax ? s[f] > o[f] : s[f] < o[f]) {
                o[f] = s[f];
                a[f] = k;
              }
          }
        }
        if (reduce == kMean && pp[g + 1] - pp[g] > 1) {
          const scalar_t inv = scalar_t(1) / scalar_t(pp[g + 1] - pp[g]);
          for (int64_t f = 0; f < feats; ++f) o[f] *= inv;
        }
        if (a)
          for (int64_t f = 0; f < feats; ++f)
            if (a[f] < 0) o[f] = 0;
      }
    });
  });
  return std::make_tuple(out, arg);
}

}  // namespace gnn_kernels
