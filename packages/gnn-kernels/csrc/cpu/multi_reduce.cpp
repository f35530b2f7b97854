// One-pass multi-reductions over the groups (rows) of a CSR pattern:
//
//   multi_reduce:          out[g, r, f] = reduce_r { x[col[k], f] : rowptr[g] <= k < rowptr[g + 1] }
//                          for every reduction r of `codes` (csrc/multi_reduce.h): sum, mean, max,
//                          min, var, std and softmax-weighted sums (inverse temperatures
//                          temps[s, f] for the s-th softmax). col = None reads x[k] (the elements
//                          are sorted by group). aux [G, rows, F] keeps each softmax's shift m (the
//                          group maximum of t x) and denominator sum exp(t x - m) + 1e-16, and with
//                          `stats` what the backward needs besides: the group mean (var/std) and
//                          the number of elements tied with each max/min (MultiPlan::aux_rows).
//   multi_reduce_backward: the gradients of x and of temps from grad_out [G, R, F]; it never
//                          reads x by group: each group's coefficients come from out, aux and
//                          grad_out alone.
//
// The forward reads every group once: its rows are visited while they are in cache (the
// softmax and the tie count revisit the rows of the group they just read), and the results
// of all reductions are written together. Empty groups give 0.
//
// Two modes, chosen by the caller:
//   * elements (t_rowptr = None): every row of x belongs to exactly one group (col is None
//     or a permutation of [0, E), checked in the backward); the backward writes each
//     element's gradient once, from its group's coefficients (sorted elements: group by
//     group; permuted ones: in their own order, from the stored coefficients of their group,
//     since writing them in group order would scatter writes over all of grad_x).
//   * gather (t_rowptr, t_col given: the transposed pattern, rows = the nodes of x, t_col =
//     the group of each entry): x[j] may feed several groups (MessagePassing's x_j); the
//     backward stores each group's coefficients, then sums them per node of x over its
//     entries in transposed order.
//
// Backward formulas per group of n elements and feature (go = grad_out[g, r]):
//   sum: go; mean: go / n; var: go (2 x - 2 mean) / n (semi_grad: -2 go mean / n);
//   std: as var with go / (2 std) (0 where std was set to 0); max/min: go split evenly
//   among the elements equal to the result (ties share, as torch's amax); softmax with
//   p = exp(t x - m) / Z: go p (1 + t (x - out)) (semi_grad: go p), and
//   d out / d t = sum_k p_k x_k (x_k - out), accumulated while the gradients are written.
//
// Parallelism: tiles of (group block, feature block), and blocks of rows of x, run on
// torch's thread pool. Both depend only on the sizes (never on the thread count), and the
// gradient of temps is summed per tile or block, then over them in order: results are
// deterministic.
//
// No floating-point contraction in this file: var = mean(x^2) - mean^2 must round like the
// reference (an fma would give a single element a variance of the rounding error of x^2).
#pragma GCC optimize("fp-contract=off")
#include "common.h"
#include "../multi_reduce.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace gnn_kernels {

namespace {

// How many rows ahead a gather (x[col[k]]) prefetches: far enough to cover a random access
// (rows of 64 floats take a few ns each to reduce).
constexpr int64_t kGatherAhead = 16;

template <typename T>
inline void prefetch_for_write(T* row, int64_t count) {
  char* p = reinterpret_cast<char*>(row);
  const int64_t bytes = count * static_cast<int64_t>(sizeof(T));
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 1, 1);
}

// dst[0:n) = src[0:n) with non-temporal stores where the row is 32-byte aligned: the results
// are written once and not read again here, so they need not displace x from the cache nor be
// read for ownership first. The caller fences (store_fence) before the results are used.
template <typename scalar_t>
inline void store_stream(scalar_t* dst, const scalar_t* src, int64_t n) {
#if defined(__AVX__)
  constexpr int64_t lanes = 32 / static_cast<int64_t>(sizeof(scalar_t));
  if (reinterpret_cast<uintptr_t>(dst) % 32 == 0 && n % lanes == 0) {
    for (int64_t i = 0; i < n; i += lanes) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
      } else {
        _mm256_stream_pd(dst + i, _mm256_loadu_pd(src + i));
      }
    }
    return;
  }
#endif
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(scalar_t));
}

inline void store_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

// (group block) x (feature block) tiles; features are split only when there are too few
// groups to keep the threads busy (e.g. a handful of graphs in a batch).
struct Tiles {
  int64_t groups = 0, feats = 0, group_block = 1, feat_block = 1, num_gb = 0, num_fb = 0;
  int64_t tasks() const { return num_gb * num_fb; }
};

inline Tiles make_tiles(int64_t groups, int64_t feats, int64_t entries) {
  Tiles t;
  t.groups = groups;
  t.feats = feats;
  t.feat_block = (groups < 256 && feats > 16) ? 16 : std::max<int64_t>(feats, 1);
  t.num_fb = feats > 0 ? (feats + t.feat_block - 1) / t.feat_block : 0;
  const int64_t per_group = std::max<int64_t>(1, entries / std::max<int64_t>(groups, 1)) * t.feat_block;
  t.group_block = std::clamp<int64_t>((int64_t(1) << 16) / per_group, 1, 1024);
  t.num_gb = (groups + t.group_block - 1) / t.group_block;
  return t;
}

template <class F>
inline void for_each_tile(const Tiles& t, const F& body) {
  parallel_rows(t.tasks(), 1, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t gb = task / t.num_fb, fb = task % t.num_fb;
      const int64_t g0 = gb * t.group_block, g1 = std::min(t.groups, g0 + t.group_block);
      const int64_t f0 = fb * t.feat_block, f1 = std::min(t.feats, f0 + t.feat_block);
      body(gb, g0, g1, f0, f1);
    }
  });
}

template <typename scalar_t>
struct Rows {  // row k of the groups: x[col[k]] (or x[k] without col)
  const scalar_t* x;
  const int64_t* col;
  int64_t feats;
  const scalar_t* operator()(int64_t k) const { return x + (col ? col[k] : k) * feats; }
};

// Where each coefficient of a group's backward lives in its [K, F] block.
struct Layout {
  int64_t k = 0, a = -1, b = -1;
  bool c_any = false, w_any = false;  // some max/min, some softmax
  std::vector<int64_t> c;  // per reduction: its max/min tie-split coefficient, or -1
  std::vector<int64_t> w;  // per reduction: its softmax coefficient go / Z, or -1
};

inline Layout make_layout(const MultiPlan& p) {
  Layout l;
  if (p.affine) l.a = l.k++;
  if (p.linear) l.b = l.k++;
  for (int64_t r = 0; r < p.num; ++r) {
    const bool mm = p.kind[r] == kMultiMax || p.kind[r] == kMultiMin;
    l.c.push_back(mm ? l.k++ : -1);
    l.w.push_back(p.kind[r] == kMultiSoftmax ? l.k++ : -1);
    l.c_any |= mm;
    l.w_any |= p.kind[r] == kMultiSoftmax;
  }
  return l;
}

template <typename scalar_t>
void forward_tile(const MultiPlan& p, const int64_t* rp, const Rows<scalar_t>& rows, const scalar_t* tp, int64_t g0,
                  int64_t g1, int64_t f0, int64_t f1, scalar_t* op, scalar_t* ap, bool stats, scalar_t* scratch) {
  const int64_t F = rows.feats, R = p.num, S = p.softmaxes, A = p.aux_rows(stats);
  scalar_t* __restrict__ sum = scratch;
  scalar_t* __restrict__ sq = sum + F;
  scalar_t* __restrict__ mx = sq + F;
  scalar_t* __restrict__ mn = mx + F;
  scalar_t* __restrict__ sm = mn + F;
  scalar_t* __restrict__ sz = sm + F;
  scalar_t* __restrict__ sw = sz + F;
  scalar_t* __restrict__ res = sw + F;  // [R, F]: the group's results, streamed to out at the end
  const scalar_t inf = std::numeric_limits<scalar_t>::infinity();
  const scalar_t std_eps = static_cast<scalar_t>(kMultiStdEps);
  const scalar_t std_floor = static_cast<scalar_t>(std::sqrt(kMultiStdEps));
  const scalar_t soft_eps = static_cast<scalar_t>(kMultiSoftmaxEps);
  const int64_t k_end = rp[g1];  // prefetching runs ahead into the tile's next groups
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t k0 = rp[g], k1 = rp[g + 1], n = k1 - k0;
    scalar_t* o = op + g * R * F;
    scalar_t* a = A > 0 ? ap + g * A * F : nullptr;
    if (n == 0) {
      for (int64_t r = 0; r < R; ++r)
        for (int64_t f = f0; f < f1; ++f) o[r * F + f] = scalar_t(0);
      for (int64_t q = 0; q < A; ++q)  // shifts, statistics 0; denominators eps
        for (int64_t f = f0; f < f1; ++f) a[q * F + f] = q < 2 * S && q % 2 == 1 ? soft_eps : scalar_t(0);
      continue;
    }
    for (int64_t f = f0; f < f1; ++f) {
      sum[f] = scalar_t(0);
      sq[f] = scalar_t(0);
      mx[f] = -inf;
      mn[f] = inf;
    }
    for (int64_t k = k0; k < k1; ++k) {
      if (rows.col != nullptr && k + kGatherAhead < k_end) prefetch_row(rows(k + kGatherAhead) + f0, f1 - f0);
      const scalar_t* __restrict__ v = rows(k);
      if (p.sum_sq) {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) {
          sum[f] += v[f];
          sq[f] += v[f] * v[f];
        }
      } else if (p.sum) {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) sum[f] += v[f];
      }
      if (p.max) {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) mx[f] = v[f] > mx[f] ? v[f] : mx[f];
      }
      if (p.min) {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) mn[f] = v[f] < mn[f] ? v[f] : mn[f];
      }
    }
    const scalar_t count = static_cast<scalar_t>(n);
    for (int64_t r = 0; r < R; ++r) {
      scalar_t* __restrict__ out = res + r * F;
      switch (p.kind[r]) {
        case kMultiSum:
          for (int64_t f = f0; f < f1; ++f) out[f] = sum[f];
          break;
        case kMultiMean:
          for (int64_t f = f0; f < f1; ++f) out[f] = sum[f] / count;
          break;
        case kMultiMax:
          for (int64_t f = f0; f < f1; ++f) out[f] = mx[f];
          break;
        case kMultiMin:
          for (int64_t f = f0; f < f1; ++f) out[f] = mn[f];
          break;
        case kMultiVar:
        case kMultiStd:
          for (int64_t f = f0; f < f1; ++f) {
            const scalar_t mean = sum[f] / count;
            const scalar_t var = sq[f] / count - mean * mean;
            if (p.kind[r] == kMultiVar) {
              out[f] = var;
            } else {
              const scalar_t s = std::sqrt(var > std_eps ? var : std_eps);
              out[f] = s <= std_floor ? scalar_t(0) : s;
            }
          }
          break;
        default: {  // softmax: the maximum of t x first, then the weighted sums
          const int64_t s = p.slot[r];
          const scalar_t* __restrict__ t = tp + s * F;
          for (int64_t f = f0; f < f1; ++f) sm[f] = -inf;
          for (int64_t k = k0; k < k1; ++k) {
            const scalar_t* __restrict__ v = rows(k);
#pragma omp simd
            for (int64_t f = f0; f < f1; ++f) {
              const scalar_t score = t[f] * v[f];
              sm[f] = score > sm[f] ? score : sm[f];
            }
          }
          for (int64_t f = f0; f < f1; ++f) {
            if (sm[f] == -inf) sm[f] = scalar_t(0);  // all scores -inf: shift 0, as the reference
            sz[f] = scalar_t(0);
            sw[f] = scalar_t(0);
          }
          for (int64_t k = k0; k < k1; ++k) {
            const scalar_t* __restrict__ v = rows(k);
#pragma omp simd
            for (int64_t f = f0; f < f1; ++f) {
              const scalar_t e = exp_nonpositive(t[f] * v[f] - sm[f]);
              sz[f] += e;
              sw[f] += e * v[f];
            }
          }
          for (int64_t f = f0; f < f1; ++f) {
            const scalar_t z = sz[f] + soft_eps;
            out[f] = sw[f] / z;
            a[2 * s * F + f] = sm[f];
            a[(2 * s + 1) * F + f] = z;
          }
        }
      }
    }
    for (int64_t r = 0; r < R; ++r) store_stream(o + r * F + f0, res + r * F + f0, f1 - f0);
    if (!stats) continue;
    if (p.mean_row >= 0)
      for (int64_t f = f0; f < f1; ++f) a[p.mean_row * F + f] = sum[f] / count;
    for (int64_t r = 0; r < R; ++r) {  // the elements tied with each max/min (the group's rows are in cache)
      if (p.tie_row[r] < 0) continue;
      const scalar_t* __restrict__ m = res + r * F;
      scalar_t* __restrict__ tie = a + p.tie_row[r] * F;
      for (int64_t f = f0; f < f1; ++f) tie[f] = scalar_t(0);
      for (int64_t k = k0; k < k1; ++k) {
        const scalar_t* __restrict__ v = rows(k);
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) tie[f] += v[f] == m[f] ? scalar_t(1) : scalar_t(0);
      }
    }
  }
}

// gx[f0:f1) += the gradient that one element v of group (o, a, c) receives; with dt, also
// dt[s, f0:f1) += the element's part of d out / d t of every non-semi softmax (same exp).
template <typename scalar_t>
inline void add_grad(const MultiPlan& p, const Layout& l, const scalar_t* __restrict__ c,
                     const scalar_t* __restrict__ o, const scalar_t* __restrict__ a, const scalar_t* __restrict__ tp,
                     const scalar_t* __restrict__ v, int64_t F, int64_t f0, int64_t f1, scalar_t* __restrict__ gx,
                     scalar_t* __restrict__ dt) {
  if (gx != nullptr && l.a >= 0) {
    const scalar_t* __restrict__ ca = c + l.a * F;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) gx[f] += ca[f];
  }
  if (gx != nullptr && l.b >= 0) {
    const scalar_t* __restrict__ cb = c + l.b * F;
#pragma omp simd
    for (int64_t f = f0; f < f1; ++f) gx[f] += cb[f] * v[f];
  }
  for (int64_t r = 0; r < p.num; ++r) {
    if (gx != nullptr && l.c[r] >= 0) {
      const scalar_t* __restrict__ m = o + r * F;
      const scalar_t* __restrict__ cc = c + l.c[r] * F;
#pragma omp simd
      for (int64_t f = f0; f < f1; ++f) gx[f] += v[f] == m[f] ? cc[f] : scalar_t(0);
    } else if (l.w[r] >= 0) {
      const int64_t s = p.slot[r];
      const scalar_t* __restrict__ t = tp + s * F;
      const scalar_t* __restrict__ shift = a + 2 * s * F;
      const scalar_t* __restrict__ out = o + r * F;
      const scalar_t* __restrict__ cw = c + l.w[r] * F;
      scalar_t* __restrict__ d = dt != nullptr && !p.semi[r] ? dt + s * F : nullptr;
      if (gx == nullptr) {
        if (d == nullptr) continue;
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f)
          d[f] += cw[f] * exp_nonpositive(t[f] * v[f] - shift[f]) * v[f] * (v[f] - out[f]);
      } else if (p.semi[r]) {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) gx[f] += cw[f] * exp_nonpositive(t[f] * v[f] - shift[f]);
      } else if (d == nullptr) {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) {
          const scalar_t e = exp_nonpositive(t[f] * v[f] - shift[f]);
          gx[f] += cw[f] * e * (scalar_t(1) + t[f] * (v[f] - out[f]));
        }
      } else {
#pragma omp simd
        for (int64_t f = f0; f < f1; ++f) {
          const scalar_t we = cw[f] * exp_nonpositive(t[f] * v[f] - shift[f]);
          const scalar_t dev = v[f] - out[f];
          gx[f] += we * (scalar_t(1) + t[f] * dev);
          d[f] += we * v[f] * dev;
        }
      }
    }
  }
}

// The backward of the groups [g0, g1), features [f0, f1): each group's coefficients (from
// out, aux and grad_out), into `coef` when given (a second pass writes the gradients), else
// into scratch, and then, for sorted elements, each element's gradient (written to gxp) and
// the temperatures' gradient (into dt, if given).
template <typename scalar_t>
void backward_tile(const MultiPlan& p, const Layout& l, const int64_t* rp, const Rows<scalar_t>& rows,
                   const scalar_t* tp, const scalar_t* op, const scalar_t* ap, const scalar_t* gop, int64_t g0,
                   int64_t g1, int64_t f0, int64_t f1, scalar_t* coef, scalar_t* gxp, scalar_t* dt,
                   scalar_t* scratch) {
  const int64_t F = rows.feats, R = p.num, A = p.aux_rows(true);
  scalar_t* __restrict__ local = scratch;       // [K, F]: coefficients (not stored)
  scalar_t* __restrict__ gx = local + l.k * F;  // [F]
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t k0 = rp[g], k1 = rp[g + 1], n = k1 - k0;
    const scalar_t* o = op + g * R * F;
    const scalar_t* a = ap + g * A * F;
    const scalar_t* go = gop + g * R * F;
    scalar_t* c = coef != nullptr ? coef + g * l.k * F : local;
    for (int64_t q = 0; q < l.k; ++q)
      for (int64_t f = f0; f < f1; ++f) c[q * F + f] = scalar_t(0);
    if (n == 0) continue;
    const scalar_t count = static_cast<scalar_t>(n);
    for (int64_t r = 0; r < R; ++r) {
      const scalar_t* __restrict__ g_r = go + r * F;
      const scalar_t* __restrict__ o_r = o + r * F;
      switch (p.kind[r]) {
        case kMultiSum:
          for (int64_t f = f0; f < f1; ++f) c[l.a * F + f] += g_r[f];
          break;
        case kMultiMean:
          for (int64_t f = f0; f < f1; ++f) c[l.a * F + f] += g_r[f] / count;
          break;
        case kMultiVar:
        case kMultiStd: {
          const scalar_t* __restrict__ mean = a + p.mean_row * F;
          for (int64_t f = f0; f < f1; ++f) {
            scalar_t gv = g_r[f];
            if (p.kind[r] == kMultiStd) gv = o_r[f] > scalar_t(0) ? g_r[f] / (scalar_t(2) * o_r[f]) : scalar_t(0);
            c[l.a * F + f] -= scalar_t(2) * gv * mean[f] / count;
            if (!p.semi[r]) c[l.b * F + f] += scalar_t(2) * gv / count;
          }
          break;
        }
        case kMultiMax:
        case kMultiMin: {
          const scalar_t* __restrict__ ties = a + p.tie_row[r] * F;
          for (int64_t f = f0; f < f1; ++f) c[l.c[r] * F + f] = ties[f] > scalar_t(0) ? g_r[f] / ties[f] : scalar_t(0);
          break;
        }
        default: {
          const scalar_t* __restrict__ z = a + (2 * p.slot[r] + 1) * F;
          for (int64_t f = f0; f < f1; ++f) c[l.w[r] * F + f] = g_r[f] / z[f];
        }
      }
    }
    if (coef != nullptr) continue;  // a second pass writes the gradients
    for (int64_t k = k0; k < k1; ++k) {  // sorted elements: each element's gradient, in order
      const scalar_t* __restrict__ v = rows(k);
      if (gxp != nullptr) {
        for (int64_t f = f0; f < f1; ++f) gx[f] = scalar_t(0);
        add_grad(p, l, c, o, a, tp, v, F, f0, f1, gx, dt);
        scalar_t* __restrict__ dst = gxp + k * F;
        for (int64_t f = f0; f < f1; ++f) dst[f] = gx[f];
      } else {
        add_grad(p, l, c, o, a, tp, v, F, f0, f1, static_cast<scalar_t*>(nullptr), dt);
      }
    }
  }
}

void check_plan(const MultiPlan& p, const char* op) {
  STD_TORCH_CHECK(p.num > 0, "gnn_kernels::", op, ": 'codes' must hold at least one reduction");
  STD_TORCH_CHECK(p.ok, "gnn_kernels::", op, ": 'codes' holds an unknown reduction code");
}

// `name` [G + 1] from 0 to `entries`, non-decreasing (checked in parallel, raised outside).
void check_rowptr(const Tensor& rowptr, int64_t entries, const char* name = "rowptr") {
  check_long(rowptr, name);
  const int64_t m = rowptr.numel() - 1;
  STD_TORCH_CHECK(m >= 0, "gnn_kernels: '", name, "' must not be empty");
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  STD_TORCH_CHECK(rp[0] == 0 && rp[m] == entries, "gnn_kernels: '", name, "' must start at 0 and end at ", entries,
                  " (the number of entries), got ", rp[0], " and ", rp[m]);
  std::atomic<bool> bad{false};
  parallel_rows(m, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      if (rp[i + 1] < rp[i]) bad.store(true, std::memory_order_relaxed);
  });
  STD_TORCH_CHECK(!bad.load(), "gnn_kernels: '", name, "' must be monotonically non-decreasing");
}

// The common checks of both ops; returns the plan.
MultiPlan check_inputs(const Tensor& rowptr, const std::optional<Tensor>& col, const Tensor& x,
                       const std::vector<int64_t>& codes, const std::optional<Tensor>& temps, const char* op) {
  check_cpu_contiguous(x, "x");
  STD_TORCH_CHECK(x.dim() == 2, "gnn_kernels::", op, ": 'x' must be [N, F]");
  STD_TORCH_CHECK(is_float_type(x.scalar_type()), "gnn_kernels::", op, ": only float32/float64 are supported");
  MultiPlan p = make_multi_plan(codes);
  check_plan(p, op);
  if (col.has_value()) {
    check_csr(rowptr, *col, x.size(0));
  } else {
    check_rowptr(rowptr, x.size(0));
  }
  if (p.softmaxes > 0) {
    STD_TORCH_CHECK(temps.has_value(), "gnn_kernels::", op, ": a softmax needs 'temps'");
    check_cpu_contiguous(*temps, "temps");
    STD_TORCH_CHECK(temps->scalar_type() == x.scalar_type(), "gnn_kernels::", op,
                    ": 'temps' must have the dtype of 'x'");
    STD_TORCH_CHECK(temps->dim() == 2 && temps->size(0) == p.softmaxes && temps->size(1) == x.size(1),
                    "gnn_kernels::", op, ": 'temps' must be [", p.softmaxes, ", ", x.size(1), "]");
  }
  return p;
}

void check_group_tensor(const Tensor& t, const char* name, int64_t g, int64_t rows, int64_t f, ScalarType type) {
  check_cpu_contiguous(t, name);
  STD_TORCH_CHECK(t.scalar_type() == type, "gnn_kernels::multi_reduce_backward: '", name, "' must have the dtype of 'x'");
  STD_TORCH_CHECK(t.dim() == 3 && t.size(0) == g && t.size(1) == rows && t.size(2) == f,
                  "gnn_kernels::multi_reduce_backward: '", name, "' must be [", g, ", ", rows, ", ", f, "]");
}

}  // namespace

std::tuple<Tensor, Tensor> multi_reduce(Tensor rowptr, std::optional<Tensor> col, Tensor x, std::vector<int64_t> codes,
                                        std::optional<Tensor> temps, std::optional<Tensor> t_rowptr,
                                        std::optional<Tensor> t_col, bool stats) {
  (void)t_rowptr;  // the transposed pattern is for the backward (saved by the autograd formula)
  (void)t_col;
  const MultiPlan p = check_inputs(rowptr, col, x, codes, temps, "multi_reduce");
  const int64_t g = rowptr.numel() - 1, feats = x.size(1), entries = col.has_value() ? col->numel() : x.size(0);
  const int64_t aux_rows = p.aux_rows(stats);
  Tensor out = torch::stable::new_empty(x, {g, p.num, feats});
  Tensor aux = torch::stable::new_empty(x, {g, aux_rows, feats});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* cp = col.has_value() ? col->const_data_ptr<int64_t>() : nullptr;
  const Tiles tiles = make_tiles(g, feats, entries);
  dispatch_float(x.scalar_type(), "multi_reduce", [&](auto tag) {
    using scalar_t = decltype(tag);
    const Rows<scalar_t> rows{x.const_data_ptr<scalar_t>(), cp, feats};
    const scalar_t* tp = p.softmaxes > 0 ? temps->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    scalar_t* ap = aux_rows > 0 ? aux.mutable_data_ptr<scalar_t>() : nullptr;
    for_each_tile(tiles, [&](int64_t, int64_t g0, int64_t g1, int64_t f0, int64_t f1) {
      std::vector<scalar_t> scratch((7 + p.num) * feats);
      forward_tile(p, rp, rows, tp, g0, g1, f0, f1, op, ap, stats, scratch.data());
      store_fence();
    });
  });
  return std::make_tuple(out, aux);
}

// Rows of x per block of the second backward pass: fixed, so that the temperatures' partial
// gradients (one per block, summed in block order) do not depend on the thread count.
constexpr int64_t kRowBlock = 2048;

std::tuple<Tensor, Tensor> multi_reduce_backward(Tensor rowptr, std::optional<Tensor> col, Tensor x,
                                                 std::vector<int64_t> codes, std::optional<Tensor> temps, Tensor out,
                                                 Tensor aux, Tensor grad_out, std::optional<Tensor> t_rowptr,
                                                 std::optional<Tensor> t_col, bool need_x, bool need_temps) {
  const MultiPlan p = check_inputs(rowptr, col, x, codes, temps, "multi_reduce_backward");
  const int64_t g = rowptr.numel() - 1, feats = x.size(1), n = x.size(0);
  const int64_t entries = col.has_value() ? col->numel() : n;
  const int64_t aux_rows = p.aux_rows(true);
  check_group_tensor(out, "out", g, p.num, feats, x.scalar_type());
  check_group_tensor(aux, "aux (of a forward with stats=True)", g, aux_rows, feats, x.scalar_type());
  check_group_tensor(grad_out, "grad_out", g, p.num, feats, x.scalar_type());
  const bool gather = t_rowptr.has_value();
  if (gather) {
    STD_TORCH_CHECK(t_col.has_value(), "gnn_kernels::multi_reduce_backward: 't_col' must come with 't_rowptr'");
    STD_TORCH_CHECK(t_rowptr->numel() == n + 1 && t_col->numel() == entries,
                    "gnn_kernels::multi_reduce_backward: the transposed pattern (t_rowptr, t_col) must have ", n,
                    " rows and ", entries, " entries");
    check_rowptr(*t_rowptr, entries, "t_rowptr");
    check_index(*t_col, g, "t_col");
  } else {
    STD_TORCH_CHECK(entries == n, "gnn_kernels::multi_reduce_backward: without the transposed pattern every row of "
                    "'x' must belong to one group ('col' a permutation of [0, ", n, "))");
  }
  bool temps_grad = false;
  for (int64_t r = 0; r < p.num; ++r) temps_grad |= p.kind[r] == kMultiSoftmax && !p.semi[r];
  temps_grad = temps_grad && need_temps;
  Tensor grad_x = torch::stable::new_empty(x, {need_x ? n : 0, feats});
  Tensor grad_temps = torch::stable::new_zeros(x, {temps_grad ? p.softmaxes : 0, feats});
  if (!need_x && !temps_grad) return std::make_tuple(grad_x, grad_temps);
  const Layout l = make_layout(p);
  const Tiles tiles = make_tiles(g, feats, entries);
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* cp = col.has_value() ? col->const_data_ptr<int64_t>() : nullptr;
  // Sorted elements get their gradients group by group. Otherwise the coefficients of every
  // group are stored and a second pass runs over the rows of x in their own order (written
  // sequentially): permuted elements read their group's, gathered nodes sum those of the
  // groups they feed, over the transposed pattern.
  const bool stored = gather || cp != nullptr;
  std::vector<int64_t> group_of;
  if (stored && !gather) {  // the group of each row; a permutation (bounds were checked) leaves none unset
    group_of.assign(n, -1);
    int64_t* go = group_of.data();
    parallel_rows(g, 256, [&](int64_t g0, int64_t g1) {
      for (int64_t grp = g0; grp < g1; ++grp)
        for (int64_t k = rp[grp]; k < rp[grp + 1]; ++k) go[cp[k]] = grp;
    });
    std::atomic<bool> unset{false};
    parallel_rows(n, 1 << 16, [&](int64_t b, int64_t e) {
      bool local = false;
      for (int64_t j = b; j < e; ++j) local |= go[j] < 0;
      if (local) unset.store(true, std::memory_order_relaxed);
    });
    STD_TORCH_CHECK(!unset.load(), "gnn_kernels::multi_reduce_backward: 'col' must be a permutation without the "
                    "transposed pattern (it repeats a row)");
  }
  dispatch_float(x.scalar_type(), "multi_reduce_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const Rows<scalar_t> rows{x.const_data_ptr<scalar_t>(), cp, feats};
    const scalar_t* tp = p.softmaxes > 0 ? temps->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* op = out.const_data_ptr<scalar_t>();
    const scalar_t* ap = aux_rows > 0 ? aux.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gop = grad_out.const_data_ptr<scalar_t>();
    scalar_t* gxp = need_x ? grad_x.mutable_data_ptr<scalar_t>() : nullptr;
    const int64_t sf = p.softmaxes * feats;
    const int64_t row_blocks = (n + kRowBlock - 1) / kRowBlock;
    std::vector<scalar_t> partial(temps_grad ? (stored ? row_blocks : tiles.num_gb) * sf : 0, scalar_t(0));
    // the coefficients of every group (second pass): written for every group before they are read
    Tensor coef_t = torch::stable::new_empty(x, {stored ? g * l.k * feats : 0});
    scalar_t* coef = stored ? coef_t.mutable_data_ptr<scalar_t>() : nullptr;
    for_each_tile(tiles, [&](int64_t gb, int64_t g0, int64_t g1, int64_t f0, int64_t f1) {
      std::vector<scalar_t> scratch((l.k + 1) * feats);
      scalar_t* dt = temps_grad && !stored ? partial.data() + gb * sf : nullptr;
      backward_tile(p, l, rp, rows, tp, op, ap, gop, g0, g1, f0, f1, coef, gxp, dt, scratch.data());
    });
    if (stored) {  // each row of x: the coefficients of its group, or of the groups it feeds (transposed order)
      const int64_t* trp = gather ? t_rowptr->const_data_ptr<int64_t>() : nullptr;
      const int64_t* tcp = gather ? t_col->const_data_ptr<int64_t>() : group_of.data();
      const scalar_t* xp = x.const_data_ptr<scalar_t>();
      const scalar_t* cf = coef;
      const int64_t cstride = l.k * feats, ostride = p.num * feats, astride = aux_rows * feats;
      parallel_rows(row_blocks, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t j0 = b * kRowBlock, j1 = std::min(n, j0 + kRowBlock);
          const int64_t q_end = trp ? trp[j1] : j1;  // prefetching runs ahead into the next rows' entries
          scalar_t* dt = temps_grad ? partial.data() + b * sf : nullptr;
          for (int64_t j = j0; j < j1; ++j) {
            scalar_t* acc = need_x ? gxp + j * feats : nullptr;  // the row's gradient (or only dt)
            const scalar_t* __restrict__ v = xp + j * feats;
            if (acc != nullptr)
              for (int64_t f = 0; f < feats; ++f) acc[f] = scalar_t(0);
            const int64_t q0 = trp ? trp[j] : j, q1 = trp ? trp[j + 1] : j + 1;
            for (int64_t q = q0; q < q1; ++q) {
              if (q + kGatherAhead < q_end) {
                const int64_t ahead = tcp[q + kGatherAhead];
                prefetch_row(cf + ahead * cstride, cstride);
                if (l.c_any || l.w_any) prefetch_row(op + ahead * ostride, ostride);
                if (l.w_any) prefetch_row(ap + ahead * astride, 2 * sf);
              }
              const int64_t grp = tcp[q];
              add_grad(p, l, cf + grp * cstride, op + grp * ostride, ap != nullptr ? ap + grp * astride : nullptr,
                       tp, v, feats, 0, feats, acc, dt);
            }
          }
        }
      });
    }
    if (temps_grad) {  // the tiles' or blocks' partial sums, in order
      scalar_t* gt = grad_temps.mutable_data_ptr<scalar_t>();
      const int64_t parts = stored ? row_blocks : tiles.num_gb;
      for (int64_t b = 0; b < parts; ++b)
        for (int64_t q = 0; q < sf; ++q) gt[q] += partial[b * sf + q];
    }
  });
  return std::make_tuple(grad_x, grad_temps);
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def(
      "multi_reduce(Tensor rowptr, Tensor? col, Tensor x, int[] codes, Tensor? temps, Tensor? t_rowptr, "
      "Tensor? t_col, bool stats=False) -> (Tensor, Tensor)");
  m.def(
      "multi_reduce_backward(Tensor rowptr, Tensor? col, Tensor x, int[] codes, Tensor? temps, Tensor out, "
      "Tensor aux, Tensor grad_out, Tensor? t_rowptr, Tensor? t_col, bool need_x, bool need_temps) "
      "-> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("multi_reduce", TORCH_BOX(&gnn_kernels::multi_reduce));
  m.impl("multi_reduce_backward", TORCH_BOX(&gnn_kernels::multi_reduce_backward));
}
