// Fused attention aggregation for GAT-style layers, forward and backward.
//
// For each receiving node i (a CSR row) and head h:
//   s[e, h]     = leaky_relu(a_src[col[e], h] + a_dst[i, h] + a_edge[e, h])   (-inf where mask[e])
//   alpha[e, h] = softmax over the entries e of row i of s[., h]                 (0 where mask[e])
//   out[i, h,:] = sum_e alpha[e, h] * x[col[e], h, :]
// Only [E, H] scores are stored, never an [E, H, C] tensor. alpha is returned
// in CSR order; a row whose entries are all masked gets alpha 0 and out 0.
//
// Backward, with G[e, h] = dloss/dalpha[e, h] = <grad_out[i, h], x[col[e], h]> (+ grad_alpha):
//   pass A (transposed, one sender j at a time): G, and
//          grad_x[j] = sum_{e: j -> i} alpha[e] * grad_out[i]
//          (both need grad_out[i]: one gather of the [H, C] row serves both);
//   pass B (CSR rows): grad_score[e] = alpha[e] * (G[e] - sum_row alpha * G) * leaky_relu'(raw[e]),
//          grad_a_dst[i] = sum_row grad_score;
//   pass C (transposed): grad_a_src[j] = sum_{e: j -> i} grad_score[e].
// grad_score is also the gradient of a_edge (in CSR order).
#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace gnn_kernels {

namespace {

// Prefetch distances (in entries) of the random accesses: feature rows (several cache
// lines each) and [., H] score rows (one line each).
constexpr int64_t kRowAhead = 4;
constexpr int64_t kScoreAhead = 16;

inline void prefetch_line(const void* p) { __builtin_prefetch(p, 0, 1); }
inline void prefetch_line_for_write(const void* p) { __builtin_prefetch(p, 1, 1); }

// a[h] = leaky_relu(s[h] + d[h] (+ ek[h])) and mx[h] = max(mx[h], a[h]) over the heads,
// branch-free in the loop (vectorized over heads).
template <typename scalar_t>
inline void leaky_scores(const scalar_t* __restrict__ s, const scalar_t* __restrict__ d,
                         const scalar_t* __restrict__ ek, int64_t heads, scalar_t slope, scalar_t* __restrict__ a,
                         scalar_t* __restrict__ mx) {
  if (ek != nullptr) {
#pragma omp simd
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t v = s[h] + d[h] + ek[h];
      const scalar_t w = v * (v > 0 ? scalar_t(1) : slope);
      a[h] = w;
      mx[h] = mx[h] > w ? mx[h] : w;
    }
  } else {
#pragma omp simd
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t v = s[h] + d[h];
      const scalar_t w = v * (v > 0 ? scalar_t(1) : slope);
      a[h] = w;
      mx[h] = mx[h] > w ? mx[h] : w;
    }
  }
}

// Run body(begin, end) over [0, m) rows, split so that every thread gets about
// the same number of rows + entries (rowptr rp, E = rp[m]): skewed degree
// distributions do not leave a thread idle.
template <class F>
void parallel_balanced(const int64_t* rp, int64_t m, const F& body) {
  if (m <= 0) return;
  const int64_t threads = static_cast<int64_t>(torch::stable::get_num_threads());
  const int64_t work = m + rp[m];
  if (threads <= 1 || work < 16384) {
    body(0, m);
    return;
  }
  // first row r with r + rp[r] >= w (monotone in r)
  auto row_at = [&](int64_t w) {
    int64_t lo = 0, hi = m;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (mid + rp[mid] < w) lo = mid + 1; else hi = mid;
    }
    return lo;
  };
  torch::stable::parallel_for(0, threads, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t t = cb; t < ce; ++t) {
      const int64_t begin = row_at(work * t / threads), end = t + 1 == threads ? m : row_at(work * (t + 1) / threads);
      if (begin < end) body(begin, end);
    }
  });
}

void check_same_type(const Tensor& t, const Tensor& x, const char* name) {
  STD_TORCH_CHECK(t.scalar_type() == x.scalar_type(), "gnn_kernels::attention: '", name,
                  "' dtype must match 'x'");
}

// Stride between the rows of `t` ([R, ...]), whose rows must each be contiguous; any row
// stride >= 0 (0: one broadcast row) is read-safe, since torch keeps every view in bounds.
int64_t row_stride(const Tensor& t, const char* name) {
  STD_TORCH_CHECK(t.is_cpu(), "gnn_kernels: '", name, "' must be a CPU tensor");
  int64_t expected = 1;
  for (int64_t d = t.dim() - 1; d >= 1; --d) {
    STD_TORCH_CHECK(t.size(d) == 1 || t.stride(d) == expected, "gnn_kernels::attention: the rows of '", name,
                    "' must be contiguous");
    expected *= t.size(d);
  }
  return t.size(0) <= 1 ? expected : t.stride(0);
}

void check_attention_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& a_src, const Tensor& a_dst,
                            const std::optional<Tensor>& a_edge, const Tensor& x) {
  row_stride(a_src, "a_src");
  row_stride(a_dst, "a_dst");
  check_cpu_contiguous(x, "x");
  STD_TORCH_CHECK(x.dim() == 3, "gnn_kernels::attention: 'x' must be [N, H, C]");
  const int64_t heads = x.size(1);
  STD_TORCH_CHECK(a_src.dim() == 2 && a_src.size(0) == x.size(0) && a_src.size(1) == heads,
                  "gnn_kernels::attention: 'a_src' must be [N, H]");
  STD_TORCH_CHECK(a_dst.dim() == 2 && a_dst.size(0) == rowptr.numel() - 1 && a_dst.size(1) == heads,
                  "gnn_kernels::attention: 'a_dst' must be [M, H]");
  check_same_type(a_src, x, "a_src");
  check_same_type(a_dst, x, "a_dst");
  if (a_edge.has_value()) {
    check_cpu_contiguous(*a_edge, "a_edge");
    STD_TORCH_CHECK(a_edge->dim() == 2 && a_edge->size(0) == col.numel() && a_edge->size(1) == heads,
                    "gnn_kernels::attention: 'a_edge' must be [E, H]");
    check_same_type(*a_edge, x, "a_edge");
  }
  check_csr(rowptr, col, x.size(0));
}

// [E, H] tensor in CSR order (alpha, grad_alpha).
void check_edge_heads(const Tensor& t, int64_t e, int64_t heads, const Tensor& x, const char* name) {
  check_cpu_contiguous(t, name);
  STD_TORCH_CHECK(t.dim() == 2 && t.size(0) == e && t.size(1) == heads, "gnn_kernels::attention: '", name,
                  "' must be [E, H]");
  check_same_type(t, x, name);
}

}  // namespace

// mask: optional bool [E] in CSR order, true for entries that get zero attention.
// a_src and a_dst may have any row stride (rows contiguous: e.g. column blocks of one [N, 2H]).
// t_rowptr/t_col/t_perm: the transposed pattern, used only by the backward formula.
std::tuple<Tensor, Tensor> attention_forward(Tensor rowptr, Tensor col, Tensor a_src, Tensor a_dst,
                                             std::optional<Tensor> a_edge, std::optional<Tensor> mask, Tensor x,
                                             double negative_slope, std::optional<Tensor> /*t_rowptr*/,
                                             std::optional<Tensor> /*t_col*/, std::optional<Tensor> /*t_perm*/) {
  check_attention_inputs(rowptr, col, a_src, a_dst, a_edge, x);
  const int64_t m = rowptr.numel() - 1, heads = x.size(1), channels = x.size(2), e = col.numel();
  if (mask.has_value()) {
    check_cpu_contiguous(*mask, "mask");
    STD_TORCH_CHECK(mask->scalar_type() == ScalarType::Bool && mask->dim() == 1 && mask->numel() == e,
                    "gnn_kernels::attention: 'mask' must be a bool [E] tensor");
  }
  Tensor out = torch::stable::new_empty(x, {m, heads, channels});
  Tensor alpha = torch::stable::new_empty(x, {e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  const bool* mk = mask.has_value() ? static_cast<const bool*>(mask->const_data_ptr()) : nullptr;
  const int64_t row_size = heads * channels;
  dispatch_float(x.scalar_type(), "attention_forward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* __restrict__ xp = x.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ sp = a_src.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ dp = a_dst.const_data_ptr<scalar_t>();
    const int64_t ss = row_stride(a_src, "a_src"), ds = row_stride(a_dst, "a_dst");
    const scalar_t* __restrict__ ep = a_edge.has_value() ? a_edge->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* __restrict__ op = out.mutable_data_ptr<scalar_t>();
    scalar_t* __restrict__ alp = alpha.mutable_data_ptr<scalar_t>();
    const scalar_t slope = scalar_t(negative_slope);
    constexpr scalar_t kNegInf = -std::numeric_limits<scalar_t>::infinity();
    parallel_balanced(rp, m, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> mx_buf(heads), inv_buf(heads), acc_buf(row_size);
      scalar_t* __restrict__ mx = mx_buf.data();
      scalar_t* __restrict__ inv = inv_buf.data();
      scalar_t* __restrict__ acc = acc_buf.data();
      const int64_t last = rp[end];
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        scalar_t* __restrict__ o = op + i * row_size;
        if (lo == hi) {
          std::fill(o, o + row_size, scalar_t(0));
          continue;
        }
        // scores (leaky-relu applied) into alpha, and their maximum per head
        const scalar_t* __restrict__ d = dp + i * ds;
        for (int64_t h = 0; h < heads; ++h) mx[h] = kNegInf;
        for (int64_t k = lo; k < hi; ++k) {
          if (k + kScoreAhead < last) prefetch_line(sp + c[k + kScoreAhead] * ss);
          scalar_t* __restrict__ a = alp + k * heads;
          if (mk && mk[k]) {
            std::fill(a, a + heads, kNegInf);
            continue;
          }
          leaky_scores(sp + c[k] * ss, d, ep ? ep + k * heads : nullptr, heads, slope, a, mx);
        }
        // exponentials and their sum; a row whose entries are all masked keeps alpha = 0
        for (int64_t h = 0; h < heads; ++h) {
          mx[h] = mx[h] == kNegInf ? scalar_t(0) : mx[h];
          inv[h] = 0;
        }
        for (int64_t k = lo; k < hi; ++k) {
          scalar_t* __restrict__ a = alp + k * heads;
#pragma omp simd
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t v = exp_nonpositive(a[h] - mx[h]);
            a[h] = v;
            inv[h] += v;
          }
        }
        for (int64_t h = 0; h < heads; ++h) inv[h] = scalar_t(1) / (inv[h] + scalar_t(1e-16));
        // normalize and aggregate: the only pass that gathers feature rows
        std::fill(acc, acc + row_size, scalar_t(0));
        for (int64_t k = lo; k < hi; ++k) {
          // feature rows are random accesses: fetch a few entries ahead, across rows
          if (k + kRowAhead < last) prefetch_row(xp + c[k + kRowAhead] * row_size, row_size);
          const scalar_t* __restrict__ xr = xp + c[k] * row_size;
          scalar_t* __restrict__ a = alp + k * heads;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t w = a[h] * inv[h];
            a[h] = w;
            scalar_t* __restrict__ acc_h = acc + h * channels;
            const scalar_t* __restrict__ xh = xr + h * channels;
#pragma omp simd
            for (int64_t f = 0; f < channels; ++f) acc_h[f] += w * xh[f];
          }
        }
        std::copy(acc, acc + row_size, o);
      }
    });
  });
  return std::make_tuple(out, alpha);
}

// Gradients of the fused op: (grad_x [N, H, C], grad_a_src [N, H], grad_a_dst [M, H],
// grad_score [E, H] in CSR order = the gradient of a_edge). alpha is the forward's
// (CSR order, 0 on masked entries, so they get zero gradient without the mask);
// grad_alpha (optional, [E, H], CSR order) is the gradient reaching alpha directly.
// a_src, a_dst and grad_out may have any row stride (rows contiguous).
std::tuple<Tensor, Tensor, Tensor, Tensor> attention_backward(
    Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor t_perm, Tensor a_src, Tensor a_dst,
    std::optional<Tensor> a_edge, Tensor x, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha,
    double negative_slope) {
  check_attention_inputs(rowptr, col, a_src, a_dst, a_edge, x);
  const int64_t m = rowptr.numel() - 1, n = x.size(0), heads = x.size(1), channels = x.size(2), e = col.numel();
  STD_TORCH_CHECK(t_rowptr.numel() == n + 1 && t_col.numel() == e && t_perm.numel() == e,
                  "gnn_kernels::attention_backward: the transposed pattern must have N + 1 offsets and E entries");
  check_csr(t_rowptr, t_col, m);
  check_index(t_perm, e, "t_perm");
  check_edge_heads(alpha, e, heads, x, "alpha");
  const int64_t go_stride = row_stride(grad_out, "grad_out");  // 0 for a broadcast gradient (a sum's)
  check_same_type(grad_out, x, "grad_out");
  STD_TORCH_CHECK(grad_out.dim() == 3 && grad_out.size(0) == m && grad_out.size(1) == heads &&
                      grad_out.size(2) == channels,
                  "gnn_kernels::attention_backward: 'grad_out' must be [M, H, C]");
  if (grad_alpha.has_value()) check_edge_heads(*grad_alpha, e, heads, x, "grad_alpha");
  Tensor grad_x = torch::stable::new_empty(x, {n, heads, channels});
  Tensor grad_src = torch::stable::new_empty(x, {n, heads});
  Tensor grad_dst = torch::stable::new_empty(x, {m, heads});
  Tensor grad_score = torch::stable::new_empty(x, {e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  const int64_t* trp = t_rowptr.const_data_ptr<int64_t>();
  const int64_t* tc = t_col.const_data_ptr<int64_t>();
  const int64_t* tp = t_perm.const_data_ptr<int64_t>();
  const int64_t row_size = heads * channels;
  dispatch_float(x.scalar_type(), "attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* __restrict__ xp = x.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ sp = a_src.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ dp = a_dst.const_data_ptr<scalar_t>();
    const int64_t ss = row_stride(a_src, "a_src"), ds = row_stride(a_dst, "a_dst");
    const scalar_t* __restrict__ ep = a_edge.has_value() ? a_edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* __restrict__ alp = alpha.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ gp = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* __restrict__ gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* __restrict__ gx = grad_x.mutable_data_ptr<scalar_t>();
    scalar_t* __restrict__ gs = grad_src.mutable_data_ptr<scalar_t>();
    scalar_t* __restrict__ gd = grad_dst.mutable_data_ptr<scalar_t>();
    scalar_t* __restrict__ gsc = grad_score.mutable_data_ptr<scalar_t>();
    const scalar_t slope = scalar_t(negative_slope);

    // pass A: G (into grad_score) and grad_x, one sender j at a time
    parallel_balanced(trp, n, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> acc_buf(row_size), prod_buf(row_size);
      scalar_t* __restrict__ acc = acc_buf.data();
      scalar_t* __restrict__ prod = prod_buf.data();
      const int64_t last = trp[end];
      for (int64_t j = begin; j < end; ++j) {
        const scalar_t* __restrict__ xr = xp + j * row_size;
        std::fill(acc, acc + row_size, scalar_t(0));
        for (int64_t k = trp[j]; k < trp[j + 1]; ++k) {
          if (k + kRowAhead < last) {
            prefetch_row(gp + tc[k + kRowAhead] * go_stride, row_size);
            prefetch_line(alp + tp[k + kRowAhead] * heads);
            prefetch_line_for_write(gsc + tp[k + kRowAhead] * heads);
          }
          const scalar_t* __restrict__ g = gp + tc[k] * go_stride;
          const int64_t ek = tp[k];
          const scalar_t* __restrict__ a = alp + ek * heads;
#pragma omp simd
          for (int64_t f = 0; f < row_size; ++f) prod[f] = g[f] * xr[f];
          for (int64_t h = 0; h < heads; ++h) {
            scalar_t dot = gap ? gap[ek * heads + h] : scalar_t(0);
            const scalar_t w = a[h];
            const scalar_t* __restrict__ gh = g + h * channels;
            const scalar_t* __restrict__ ph = prod + h * channels;
            scalar_t* __restrict__ acc_h = acc + h * channels;
#pragma omp simd reduction(+ : dot)
            for (int64_t f = 0; f < channels; ++f) {
              dot += ph[f];
              acc_h[f] += w * gh[f];
            }
            gsc[ek * heads + h] = dot;
          }
        }
        std::copy(acc, acc + row_size, gx + j * row_size);
      }
    });

    // pass B: softmax and leaky-relu backward per row, grad_a_dst
    parallel_balanced(rp, m, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> dot_buf(heads), sum_buf(heads), zeros_buf(heads, scalar_t(0));
      scalar_t* __restrict__ dot = dot_buf.data();
      scalar_t* __restrict__ sum = sum_buf.data();
      const scalar_t* __restrict__ zeros = zeros_buf.data();
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        const scalar_t* __restrict__ d = dp + i * ds;
        for (int64_t h = 0; h < heads; ++h) dot[h] = sum[h] = 0;
        for (int64_t k = lo; k < hi; ++k) {
#pragma omp simd
          for (int64_t h = 0; h < heads; ++h) dot[h] += alp[k * heads + h] * gsc[k * heads + h];
        }
        for (int64_t k = lo; k < hi; ++k) {
          if (k + kScoreAhead < e) prefetch_line(sp + c[k + kScoreAhead] * ss);
          const scalar_t* __restrict__ s = sp + c[k] * ss;
          const scalar_t* __restrict__ ek = ep ? ep + k * heads : zeros;
          scalar_t* __restrict__ gk = gsc + k * heads;
          const scalar_t* __restrict__ a = alp + k * heads;
#pragma omp simd
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t raw = s[h] + d[h] + ek[h];
            const scalar_t v = a[h] * (gk[h] - dot[h]) * (raw > 0 ? scalar_t(1) : slope);
            gk[h] = v;
            sum[h] += v;
          }
        }
        for (int64_t h = 0; h < heads; ++h) gd[i * heads + h] = sum[h];
      }
    });

    // pass C: grad_a_src, summing each sender's entries of grad_score
    parallel_balanced(trp, n, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> sum_buf(heads);
      scalar_t* __restrict__ sum = sum_buf.data();
      for (int64_t j = begin; j < end; ++j) {
        for (int64_t h = 0; h < heads; ++h) sum[h] = 0;
        for (int64_t k = trp[j]; k < trp[j + 1]; ++k) {
          if (k + kScoreAhead < e) prefetch_line(gsc + tp[k + kScoreAhead] * heads);
          const scalar_t* __restrict__ gk = gsc + tp[k] * heads;
#pragma omp simd
          for (int64_t h = 0; h < heads; ++h) sum[h] += gk[h];
        }
        for (int64_t h = 0; h < heads; ++h) gs[j * heads + h] = sum[h];
      }
    });
  });
  return std::make_tuple(grad_x, grad_src, grad_dst, grad_score);
}

}  // namespace gnn_kernels
