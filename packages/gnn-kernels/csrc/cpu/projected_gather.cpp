// Gather-multiply-sum with a per-element projection (DimeNet++'s triplet interaction and its
// derivatives), never forming an [elements, C] tensor:
//
//   gather_mul_sum:     out[i, c] = sum_{q = ptr[i]}^{ptr[i+1]-1} a[index[q], c] * p[t(q), c],
//                       p[t, c] = sum_b s[t, b] weight[c, b],  t(q) = order[q] (or q)
//   gather_mul_project: h[t, c] = g[g_index[t], c] * a[a_index[t], c];
//                       first[t, b] = sum_c h[t, c] weight[c, b]   (when need_first);
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
constexpr int64_t kSmallB = 16;
constexpr int64_t kTile = 8;

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
    // channels in chunks of one cache line: the chunk's sum and projection stay in registers
    constexpr int64_t W = 64 / static_cast<int64_t>(sizeof(scalar_t));
    parallel_rows(M, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t q0 = pp[i], q1 = pp[i + 1];
        for (int64_t c0 = 0; c0 < C; c0 += W) {
          const int64_t cw = std::min(W, C - c0);
          alignas(64) scalar_t acc[W] = {};
          for (int64_t q = q0; q < q1; ++q) {
            if (c0 == 0 && q + kPrefetch < q1) prefetch_row(ap + ip[q + kPrefetch] * C, C);
            const scalar_t* srow = sp + (op ? op[q] : q) * B;
            const scalar_t* arow = ap + ip[q] * C + c0;
            alignas(64) scalar_t proj[W] = {};
            if (cw == W) {
              for (int64_t b = 0; b < B; ++b) {
                const scalar_t sb = srow[b];
                const scalar_t* wrow = wt.data() + b * C + c0;
#pragma omp simd
                for (int64_t c = 0; c < W; ++c) proj[c] += sb * wrow[c];
              }
#pragma omp simd
              for (int64_t c = 0; c < W; ++c) acc[c] += arow[c] * proj[c];
            } else {
              for (int64_t b = 0; b < B; ++b) {
                const scalar_t sb = srow[b];
                const scalar_t* wrow = wt.data() + b * C + c0;
                for (int64_t c = 0; c < cw; ++c) proj[c] += sb * wrow[c];
              }
              for (int64_t c = 0; c < cw; ++c) acc[c] += arow[c] * proj[c];
            }
          }
          std::copy(acc, acc + cw, outp + i * C + c0);
        }
      }
    });
  });
  return out;
}

std::tuple<Tensor, Tensor> gather_mul_project(Tensor g, Tensor g_index, Tensor a, Tensor a_index, Tensor weight,
                                              std::optional<Tensor> s, bool need_first) {
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
  Tensor first = torch::stable::new_empty(a, {need_first ? T : 0, B});
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
      // kTile elements at a time: their products h [kTile, C] are formed once, then
      // first = h @ weight with kTile independent accumulators (no dependency chain over C)
      // and part += s^T h with the kTile-term sums in registers
      std::vector<scalar_t> h(static_cast<size_t>(kTile * C));
      for (int64_t blk = bb; blk < be; ++blk) {
        scalar_t* part = sp ? partial.data() + blk * B * C : nullptr;
        const int64_t t_end = std::min(T, (blk + 1) * kProjectBlock);
        for (int64_t t0 = blk * kProjectBlock; t0 < t_end; t0 += kTile) {
          const int64_t nt = std::min(kTile, t_end - t0);
          for (int64_t k = 0; k < nt; ++k) {
            const int64_t t = t0 + k;
            if (t + kTile < t_end) prefetch_row(ap + ai[t + kTile] * C, C);
            const scalar_t* grow = gp + gi[t] * C;
            const scalar_t* arow = ap + ai[t] * C;
            scalar_t* hrow = h.data() + k * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) hrow[c] = grow[c] * arow[c];
          }
          if (!need_first) {
            // only `second` is wanted
          } else if (B <= kSmallB) {
            alignas(64) scalar_t acc[kTile][kSmallB] = {};
            for (int64_t c = 0; c < C; ++c) {
              const scalar_t* wrow = wp + c * B;
              for (int64_t k = 0; k < kTile; ++k) {
                const scalar_t hc = k < nt ? h[k * C + c] : scalar_t(0);
#pragma omp simd
                for (int64_t b = 0; b < B; ++b) acc[k][b] += hc * wrow[b];
              }
            }
            for (int64_t k = 0; k < nt; ++k) std::copy(acc[k], acc[k] + B, fp + (t0 + k) * B);
          } else {
            for (int64_t k = 0; k < nt; ++k)
              for (int64_t b = 0; b < B; ++b) {
                scalar_t dot = 0;
                for (int64_t c = 0; c < C; ++c) dot += h[k * C + c] * wp[c * B + b];
                fp[(t0 + k) * B + b] = dot;
              }
          }
          if (part) {
            for (int64_t k = 0; k < nt; ++k) {
              const scalar_t* srow = sp + (t0 + k) * B;
              const scalar_t* hrow = h.data() + k * C;
              for (int64_t b = 0; b < B; ++b) {
                const scalar_t sb = srow[b];
                scalar_t* prow = part + b * C;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) prow[c] += sb * hrow[c];
              }
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
      "gather_mul_project(Tensor g, Tensor g_index, Tensor a, Tensor a_index, Tensor weight, Tensor? s, "
      "bool need_first=True) -> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("gather_mul_sum", TORCH_BOX(&gnn_kernels::gather_mul_sum));
  m.impl("gather_mul_project", TORCH_BOX(&gnn_kernels::gather_mul_project));
}
