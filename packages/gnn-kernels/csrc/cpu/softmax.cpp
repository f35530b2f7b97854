// Segment (group) softmax over the rows of src [E, F], groups given by index [E]:
//
//   softmax_forward:  out[k, f] = exp(src[k, f] - m[g, f]) / (sum_{l in g} exp(src[l, f] - m[g, f]) + 1e-16)
//                     with g = index[k] and m[g, f] the group maximum (0 for a group whose
//                     entries are all -inf, as gnn.core's reference computes it)
//   softmax_backward: grad_src[k, f] = out[k, f] * (grad[k, f] - sum_{l in g} grad[l, f] * out[l, f])
//
// Three passes (max, exp and sum, divide) over the rows instead of the eight
// tensor operations of the reference, with one output allocation; the
// backward takes two. No atomics: the work is split so that every group
// statistic (m, the sums) is owned by one thread:
//   * a sorted index (e.g. edges in CSR order, a batch vector): threads split
//     the groups, and each group's contiguous rows are visited pass after
//     pass while they are in cache;
//   * an unsorted index with at least one block of 8 features per thread:
//     threads split the feature columns;
//   * otherwise (few features, e.g. one score per edge and head): up to 8
//     threads split the groups, and each one scans all rows, skipping other
//     groups'.
// The order of additions within a group is the row order in every case, so
// the result does not depend on the thread count.
#include "common.h"

#include <algorithm>
#include <limits>

namespace gnn_kernels {

namespace {

constexpr double kSoftmaxEps = 1e-16;  // the reference's guard against an all-zero group sum
constexpr int64_t kFeatureBlock = 8;
constexpr int64_t kMaxGroupParts = 8;

// The rows [k0, k1) whose group lies in [g0, g1), features [f0, f1).
struct Part {
  int64_t k0, k1, g0, g1, f0, f1;
};

// Run `body(part)` over parts that together cover every (row, feature) once, in
// parallel, with each (group, feature) statistic in exactly one part.
template <class Body>
void for_each_part(const int64_t* ip, int64_t e, int64_t groups, int64_t feats, bool sorted, const Body& body) {
  if (sorted) {  // one part per group: its rows are contiguous
    parallel_rows(groups, 64, [&](int64_t g0, int64_t g1) {
      int64_t k = std::lower_bound(ip, ip + e, g0) - ip;
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t start = k;
        while (k < e && ip[k] == g) ++k;
        if (k > start) body(Part{start, k, g, g + 1, 0, feats});
      }
    });
    return;
  }
  const int64_t threads = std::max<int64_t>(1, torch::stable::get_num_threads());
  const int64_t blocks = (feats + kFeatureBlock - 1) / kFeatureBlock;
  if (blocks >= threads) {
    parallel_rows(blocks, 1, [&](int64_t b0, int64_t b1) {
      body(Part{0, e, 0, groups, b0 * kFeatureBlock, std::min(feats, b1 * kFeatureBlock)});
    });
    return;
  }
  // every part reads all of `index` (three times): a few parts keep that traffic bounded on
  // machines with many cores, at the price of using at most kMaxGroupParts of them here
  const int64_t parts = std::min({threads, groups, kMaxGroupParts});
  parallel_rows(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) body(Part{0, e, groups * p / parts, groups * (p + 1) / parts, 0, feats});
  });
}

template <typename scalar_t>
void softmax_part(const Part& part, const scalar_t* sp, const int64_t* ip, int64_t feats, scalar_t* op,
                  scalar_t* gmax, scalar_t* gsum) {
  const int64_t f0 = part.f0, f1 = part.f1;
  const scalar_t lowest = -std::numeric_limits<scalar_t>::infinity();
  for (int64_t g = part.g0; g < part.g1; ++g)
    for (int64_t f = f0; f < f1; ++f) {
      gmax[g * feats + f] = lowest;
      gsum[g * feats + f] = scalar_t(0);
    }
  auto owned = [&](int64_t g) { return g >= part.g0 && g < part.g1; };
  for (int64_t k = part.k0; k < part.k1; ++k) {
    const int64_t g = ip[k];
    if (!owned(g)) continue;
    const scalar_t* __restrict__ s = sp + k * feats;
    scalar_t* __restrict__ m = gmax + g * feats;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) m[f] = s[f] > m[f] ? s[f] : m[f];
  }
  for (int64_t g = part.g0; g < part.g1; ++g)  // an all -inf group: maximum 0, as in the reference
    for (int64_t f = f0; f < f1; ++f)
      if (gmax[g * feats + f] == lowest) gmax[g * feats + f] = scalar_t(0);
  for (int64_t k = part.k0; k < part.k1; ++k) {
    const int64_t g = ip[k];
    if (!owned(g)) continue;
    const scalar_t* __restrict__ s = sp + k * feats;
    const scalar_t* __restrict__ m = gmax + g * feats;
    scalar_t* __restrict__ o = op + k * feats;
    scalar_t* __restrict__ sum = gsum + g * feats;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) {
      o[f] = exp_nonpositive(s[f] - m[f]);
      sum[f] += o[f];
    }
  }
  for (int64_t g = part.g0; g < part.g1; ++g)
    for (int64_t f = f0; f < f1; ++f) gsum[g * feats + f] += static_cast<scalar_t>(kSoftmaxEps);
  for (int64_t k = part.k0; k < part.k1; ++k) {
    const int64_t g = ip[k];
    if (!owned(g)) continue;
    const scalar_t* __restrict__ sum = gsum + g * feats;
    scalar_t* __restrict__ o = op + k * feats;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) o[f] /= sum[f];
  }
}

template <typename scalar_t>
void softmax_backward_part(const Part& part, const scalar_t* outp, const scalar_t* gp, const int64_t* ip,
                           int64_t feats, scalar_t* rp, scalar_t* gdot) {
  const int64_t f0 = part.f0, f1 = part.f1;
  for (int64_t g = part.g0; g < part.g1; ++g)
    for (int64_t f = f0; f < f1; ++f) gdot[g * feats + f] = scalar_t(0);
  auto owned = [&](int64_t g) { return g >= part.g0 && g < part.g1; };
  for (int64_t k = part.k0; k < part.k1; ++k) {
    const int64_t g = ip[k];
    if (!owned(g)) continue;
    const scalar_t* __restrict__ o = outp + k * feats;
    const scalar_t* __restrict__ gr = gp + k * feats;
    scalar_t* __restrict__ d = gdot + g * feats;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) d[f] += gr[f] * o[f];
  }
  for (int64_t k = part.k0; k < part.k1; ++k) {
    const int64_t g = ip[k];
    if (!owned(g)) continue;
    const scalar_t* __restrict__ o = outp + k * feats;
    const scalar_t* __restrict__ gr = gp + k * feats;
    const scalar_t* __restrict__ d = gdot + g * feats;
    scalar_t* __restrict__ r = rp + k * feats;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) r[f] = o[f] * (gr[f] - d[f]);
  }
}

void check_softmax_inputs(const Tensor& src, const Tensor& index, int64_t dim_size, const char* name) {
  check_cpu_contiguous(src, name);
  STD_TORCH_CHECK(src.dim() == 2, "gnn_kernels::softmax: '", name, "' must be [E, F]");
  STD_TORCH_CHECK(index.numel() == src.size(0), "gnn_kernels::softmax: 'index' must have E entries");
  STD_TORCH_CHECK(dim_size >= 0, "gnn_kernels::softmax: 'dim_size' must be non-negative");
}

}  // namespace

// src: [E, F]; index: [E] in [0, dim_size). Returns out [E, F].
Tensor softmax_forward(Tensor src, Tensor index, int64_t dim_size) {
  check_softmax_inputs(src, index, dim_size, "src");
  const bool sorted = check_index_sorted(index, dim_size);
  const int64_t e = src.size(0), feats = src.size(1);
  Tensor out = torch::stable::new_empty(src, {e, feats});
  if (e == 0 || feats == 0) return out;
  Tensor stats = torch::stable::new_empty(src, {2, dim_size, feats});
  const int64_t* ip = index.const_data_ptr<int64_t>();
  dispatch_float(src.scalar_type(), "softmax_forward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* sp = src.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    scalar_t* gmax = stats.mutable_data_ptr<scalar_t>();
    scalar_t* gsum = gmax + dim_size * feats;
    for_each_part(ip, e, dim_size, feats, sorted,
                  [&](const Part& part) { softmax_part(part, sp, ip, feats, op, gmax, gsum); });
  });
  return out;
}

// out: the forward's [E, F] result; grad: [E, F]. Returns grad_src [E, F].
Tensor softmax_backward(Tensor out, Tensor grad, Tensor index, int64_t dim_size) {
  check_softmax_inputs(out, index, dim_size, "out");
  check_cpu_contiguous(grad, "grad");
  STD_TORCH_CHECK(grad.dim() == 2 && grad.size(0) == out.size(0) && grad.size(1) == out.size(1),
                  "gnn_kernels::softmax_backward: 'grad' must have the shape of 'out'");
  STD_TORCH_CHECK(grad.scalar_type() == out.scalar_type(), "gnn_kernels::softmax_backward: dtypes must match");
  const bool sorted = check_index_sorted(index, dim_size);
  const int64_t e = out.size(0), feats = out.size(1);
  Tensor result = torch::stable::new_empty(out, {e, feats});
  if (e == 0 || feats == 0) return result;
  Tensor gdot = torch::stable::new_empty(out, {dim_size, feats});
  const int64_t* ip = index.const_data_ptr<int64_t>();
  dispatch_float(out.scalar_type(), "softmax_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* outp = out.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    scalar_t* rp = result.mutable_data_ptr<scalar_t>();
    scalar_t* dp = gdot.mutable_data_ptr<scalar_t>();
    for_each_part(ip, e, dim_size, feats, sorted,
                  [&](const Part& part) { softmax_backward_part(part, outp, gp, ip, feats, rp, dp); });
  });
  return result;
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("softmax_forward(Tensor src, Tensor index, int dim_size) -> Tensor");
  m.def("softmax_backward(Tensor out, Tensor grad, Tensor index, int dim_size) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("softmax_forward", TORCH_BOX(&gnn_kernels::softmax_forward));
  m.impl("softmax_backward", TORCH_BOX(&gnn_kernels::softmax_backward));
}
