// Gather-multiply-sum with a per-element projection (DimeNet++'s triplet interaction and its
// derivatives), never forming an [elements, C] tensor:
//
//   gather_mul_sum:     out[i, c] = sum_{q = ptr[i]}^{ptr[i+1]-1} a[index[q], c] * p[t(q), c],
//                       p[t, c] = sum_b s[t, b] weight[c, b],  t(q) = order[q] (or q)
//   gather_mul_project: h[t, c] = g[g_index[t], c] * a[a_index[t], c];
//                       first[t, b] = sum_c h[t, c] weight[c, b];
//                       second[c, b] = sum_t h[t, c] s[t, b]   (when s is given)
//
// Shapes: a [Na, C], s [T, B], weight [C, B] (a Linear's weight: C outputs, B inputs), ptr
// [M + 1], index/order [Q], g [M, C]. Neither op is differentiable by itself: gnn-core's
// memory-lean autograd (gnn.core.ops.projected) composes them into every derivative.
//
// Parallelism: rows of the output (gather_mul_sum) and fixed blocks of elements
// (gather_mul_project, whose `second` is summed per block, then over the blocks in order):
// results do not depend on the number of threads.
#include "common.h"

#include <algorithm>
#include <vector>

namespace gnn_kernels {
namespace {

constexpr int64_t kProjectBlock = 2048;

void check_2d_float(const Tensor& t, const char* name) {
  check_cpu_contiguous(t, name);
  STD_TORCH_CHECK(t.dim() == 2, "gnn_kernels: '", name, "' must be 2-D");
  STD_TORCH_CHECK(is_float_type(t.scalar_type()), "gnn_kernels: '", name, "' must be float32/float64");
}

// weight [C, B] -> its transpose [B, C] (so that the inner loops run over C, contiguously)
template <typename scalar_t>
std::vector<scalar_t> transposed(const scalar_t* w, int64_t c_dim, int64_t b_dim) {
  std::vector<scalar_t> wt(static_cast<size_t>(c_dim * b_dim));
  for (int64_t c = 0; c < c_dim; ++c)
    for (int64_t b = 0; b < b_dim; ++b) wt[b * c_dim + c] = w[c * b_dim + b];
  return wt;
}

}  // namespace

Tensor gather_mul_sum(Tensor a, Tensor index, Tensor s, Tensor weight, Tensor ptr, std::optional<Tensor> order) {
  check_2d_float(a, "a");
  check_2d_float(s, "s");
  check_2d_float(weight, "weight");
  check_long(index, "index");
  check_long(ptr, "ptr");
  STD_TORCH_CHECK(s.scalar_type() == a.scalar_type() && weight.scalar_type() == a.scalar_type(),
                  "gnn_kernels::gather_mul_sum: 'a', 's' and 'weight' must share a dtype");
  const int64_t C = a.size(1), B = s.size(1), Q = index.numel(), M = ptr.numel() - 1;
  STD_TORCH_CHECK(weight.size(0) == C && weight.size(1) == B, "gnn_kernels::gather_mul_sum: 'weight' must be [",
                  C, ", ", B, "]");
  STD_TORCH_CHECK(M >= 0, "gnn_kernels::gather_mul_sum: 'ptr' must not be empty");
  if (order.has_value()) {
    check_long(*order, "order");
    STD_TORCH_CHECK(order->numel() == Q, "gnn_kernels::gather_mul_sum: 'order' must have one entry per index");
  } else {
    STD_TORCH_CHECK(s.size(0) == Q, "gnn_kernels::gather_mul_sum: 's' must have one row per index");
  }
  const int64_t* pp = ptr.const_data_ptr<int64_t>();
  STD_TORCH_CHECK(pp[0] == 0 && pp[M] == Q, "gnn_kernels::gather_mul_sum: 'ptr' must run from 0 to ", Q);
  Tensor out = torch::stable::new_empty(a, {M, C});
  dispatch_float(a.scalar_type(), "gather_mul_sum", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    const int64_t* ip = index.const_data_ptr<int64_t>();
    const int64_t* op = order.has_value() ? order->const_data_ptr<int64_t>() : nullptr;
    scalar_t* outp = out.mutable_data_ptr<scalar_t>();
    const std::vector<scalar_t> wt = transposed(weight.const_data_ptr<scalar_t>(), C, B);
    parallel_rows(M, 16, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> acc(static_cast<size_t>(C)), proj(static_cast<size_t>(C));
      for (int64_t i = begin; i < end; ++i) {
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        for (int64_t q = pp[i]; q < pp[i + 1]; ++q) {
          if (q + kPrefetch < pp[i + 1]) prefetch_row(ap + ip[q + kPrefetch] * C, C);
          const int64_t t = op ? op[q] : q;
          const scalar_t* srow = sp + t * B;
          std::fill(proj.begin(), proj.end(), scalar_t(0));
          for (int64_t b = 0; b < B; ++b) {
            const scalar_t sb = srow[b];
            const scalar_t* wrow = wt.data() + b * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) proj[c] += sb * wrow[c];
          }
          const scalar_t* arow = ap + ip[q] * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) acc[c] += arow[c] * proj[c];
        }
        std::copy(acc.begin(), acc.end(), outp + i * C);
      }
    });
  });
  return out;
}

std::tuple<Tensor, Tensor> gather_mul_project(Tensor g, Tensor g_index, Tensor a, Tensor a_index, Tensor weight,
                                              std::optional<Tensor> s) {
  check_2d_float(g, "g");
  check_2d_float(a, "a");
  check_2d_float(weight, "weight");
  check_long(g_index, "g_index");
  check_long(a_index, "a_index");
  const int64_t C = a.size(1), B = weight.size(1), T = g_index.numel();
  STD_TORCH_CHECK(g.size(1) == C && weight.size(0) == C, "gnn_kernels::gather_mul_project: 'g', 'a' and 'weight' "
                  "must share the channel count");
  STD_TORCH_CHECK(a_index.numel() == T, "gnn_kernels::gather_mul_project: 'g_index' and 'a_index' differ in length");
  STD_TORCH_CHECK(g.scalar_type() == a.scalar_type() && weight.scalar_type() == a.scalar_type(),
                  "gnn_kernels::gather_mul_project: 'g', 'a' and 'weight' must share a dtype");
  if (s.has_value()) {
    check_2d_float(*s, "s");
    STD_TORCH_CHECK(s->size(0) == T && s->size(1) == B && s->scalar_type() == a.scalar_type(),
                    "gnn_kernels::gather_mul_project: 's' must be [", T, ", ", B, "] of the dtype of 'a'");
  }
  Tensor first = torch::stable::new_empty(a, {T, B});
  Tensor second = torch::stable::new_zeros(a, {s.has_value() ? C : 0, B});
  dispatch_float(a.scalar_type(), "gather_mul_project", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const int64_t* gi = g_index.const_data_ptr<int64_t>();
    const int64_t* ai = a_index.const_data_ptr<int64_t>();
    const scalar_t* sp = s.has_value() ? s->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* fp = first.mutable_data_ptr<scalar_t>();
    const scalar_t* wp = weight.const_data_ptr<scalar_t>();
    const int64_t blocks = (T + kProjectBlock - 1) / kProjectBlock;
    // per block: sum_t s[t, b] h[t, c] as [B, C]
    std::vector<scalar_t> partial(sp ? static_cast<size_t>(blocks * B * C) : 0, scalar_t(0));
    parallel_rows(blocks, 1, [&](int64_t bb, int64_t be) {
      std::vector<scalar_t> h(static_cast<size_t>(C));
      for (int64_t blk = bb; blk < be; ++blk) {
        scalar_t* part = sp ? partial.data() + blk * B * C : nullptr;
        const int64_t t_end = std::min(T, (blk + 1) * kProjectBlock);
        for (int64_t t = blk * kProjectBlock; t < t_end; ++t) {
          if (t + kPrefetch < t_end) {
            prefetch_row(gp + gi[t + kPrefetch] * C, C);
            prefetch_row(ap + ai[t + kPrefetch] * C, C);
          }
          const scalar_t* grow = gp + gi[t] * C;
          const scalar_t* arow = ap + ai[t] * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) h[c] = grow[c] * arow[c];
          // first[t] = h @ weight, accumulated over c in B-wide rows (no horizontal sums)
          scalar_t* frow = fp + t * B;
          std::fill(frow, frow + B, scalar_t(0));
          for (int64_t c = 0; c < C; ++c) {
            const scalar_t hc = h[c];
            const scalar_t* wrow = wp + c * B;
#pragma omp simd
            for (int64_t b = 0; b < B; ++b) frow[b] += hc * wrow[b];
          }
          if (part) {
            for (int64_t b = 0; b < B; ++b) {
              const scalar_t sb = sp[t * B + b];
              scalar_t* prow = part + b * C;
#pragma omp simd
              for (int64_t c = 0; c < C; ++c) prow[c] += sb * h[c];
            }
          }
        }
      }
    });
    if (sp) {
      scalar_t* outp = second.mutable_data_ptr<scalar_t>();
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const scalar_t* part = partial.data() + blk * B * C;
        for (int64_t b = 0; b < B; ++b)
          for (int64_t c = 0; c < C; ++c) outp[c * B + b] += part[b * C + c];
      }
    }
  });
  return {first, second};
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("gather_mul_sum(Tensor a, Tensor index, Tensor s, Tensor weight, Tensor ptr, Tensor? order) -> Tensor");
  m.def(
      "gather_mul_project(Tensor g, Tensor g_index, Tensor a, Tensor a_index, Tensor weight, Tensor? s) "
      "-> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("gather_mul_sum", TORCH_BOX(&gnn_kernels::gather_mul_sum));
  m.impl("gather_mul_project", TORCH_BOX(&gnn_kernels::gather_mul_project));
}
