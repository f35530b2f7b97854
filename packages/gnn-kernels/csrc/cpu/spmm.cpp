// Fused gather-weight-reduce over a CSR graph (rows receive, columns send).
//
//   spmm_sum:    out[i, h, :] = sum_{e in row i} w[e, h] * x[col[e], h, :]   (optionally / deg)
//                              (+ s * x_self[i, h, :], an optional fused self term)
//   spmm_minmax: out[i, f]    = max/min_{e in row i} w[e] * x[col[e], f], with the arg edge
//   sddmm:       out[e, h]    = <a[row(e), h, :], b[col[e], h, :]>          (edge-weight gradient)
//
// Rows are independent, so rows are split across threads with no atomics;
// no [E, F] message tensor is ever formed.
#include "common.h"

#include <algorithm>
#include <limits>

namespace gnn_kernels {

namespace {

// Features accumulated in registers at a time: 256 bytes (8 AVX2 / 4 AVX-512
// registers), so the whole block stays in registers across a row's entries.
template <typename scalar_t>
constexpr int64_t kBlock = 256 / sizeof(scalar_t);

// acc[0:width) = sum_{k in [lo, hi)} w_k * x[c[k], f0:f0+width); `weight(k)` gives w_k.
// With a compile-time width (a full block) the accumulator lives in registers.
template <typename scalar_t, int64_t W, class Weight>
inline void gather_block(scalar_t* __restrict__ acc, const int64_t* c, int64_t lo, int64_t hi,
                         const scalar_t* xp, int64_t row_size, int64_t f0, int64_t width, int64_t e,
                         const Weight& weight) {
  const int64_t n = W > 0 ? W : width;
  scalar_t local[W > 0 ? W : 1];
  scalar_t* a = W > 0 ? local : acc;
  for (int64_t f = 0; f < n; ++f) a[f] = scalar_t(0);
  for (int64_t k = lo; k < hi; ++k) {
    // the gathered rows are random accesses: fetch a few entries ahead
    if (f0 == 0 && k + kPrefetch < e) prefetch_row(xp + c[k + kPrefetch] * row_size, row_size);
    const scalar_t* __restrict__ xr = xp + c[k] * row_size + f0;
    const scalar_t w = weight(k);
#pragma omp simd
    for (int64_t f = 0; f < n; ++f) a[f] += w * xr[f];
  }
  if (W > 0)
    for (int64_t f = 0; f < n; ++f) acc[f] = local[f];
}

// One output row over feature range [f0, f1): the gathered sum, then the mean
// scaling, then the self term (the order of the unfused formula).
template <typename scalar_t, class Weight>
inline void spmm_row_range(scalar_t* __restrict__ o, const int64_t* c, int64_t lo, int64_t hi,
                           const scalar_t* xp, int64_t row_size, int64_t f0, int64_t f1, int64_t e,
                           bool mean, const scalar_t* self_row, scalar_t self_weight, const Weight& weight) {
  constexpr int64_t B = kBlock<scalar_t>;
  for (int64_t b = f0; b < f1; b += B) {
    const int64_t width = std::min(B, f1 - b);
    scalar_t* ob = o + b;
    if (width == B)
      gather_block<scalar_t, B>(ob, c, lo, hi, xp, row_size, b, width, e, weight);
    else
      gather_block<scalar_t, 0>(ob, c, lo, hi, xp, row_size, b, width, e, weight);
    if (mean && hi - lo > 1) {
      const scalar_t inv = scalar_t(1) / scalar_t(hi - lo);
      for (int64_t f = 0; f < width; ++f) ob[f] *= inv;
    }
    if (self_row != nullptr)
      for (int64_t f = 0; f < width; ++f) ob[f] += self_weight * self_row[b + f];
  }
}

}  // namespace

// x: [N, H, C]; value: none, [E] (shared by heads) or [E, H].
// t_rowptr/t_col/t_perm: the transposed pattern, used only by the backward formula.
// x_self: optional [M, H, C]; adds self_weight * x_self[i] to row i (after the mean).
Tensor spmm_sum(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x, bool mean,
                std::optional<Tensor> /*t_rowptr*/, std::optional<Tensor> /*t_col*/,
                std::optional<Tensor> /*t_perm*/, std::optional<Tensor> x_self, double self_weight) {
  check_cpu_contiguous(x, "x");
  STD_TORCH_CHECK(x.dim() == 3, "gnn_kernels::spmm_sum: 'x' must be [N, H, C]");
  const int64_t n = x.size(0), heads = x.size(1), channels = x.size(2);
  check_csr(rowptr, col, n);
  const int64_t m = rowptr.numel() - 1, e = col.numel();
  int64_t value_heads = 0;
  if (value.has_value()) {
    check_cpu_contiguous(*value, "value");
    STD_TORCH_CHECK(value->scalar_type() == x.scalar_type(), "gnn_kernels::spmm_sum: 'value' dtype must match 'x'");
    STD_TORCH_CHECK(value->size(0) == e, "gnn_kernels::spmm_sum: 'value' must have one row per entry");
    value_heads = value->dim() == 1 ? 1 : value->size(1);
    STD_TORCH_CHECK(value_heads == 1 || value_heads == heads, "gnn_kernels::spmm_sum: 'value' heads must be 1 or H");
  }
  if (x_self.has_value()) {
    check_cpu_contiguous(*x_self, "x_self");
    STD_TORCH_CHECK(x_self->scalar_type() == x.scalar_type(), "gnn_kernels::spmm_sum: 'x_self' dtype must match 'x'");
    STD_TORCH_CHECK(x_self->dim() == 3 && x_self->size(0) == m && x_self->size(1) == heads &&
                        x_self->size(2) == channels,
                    "gnn_kernels::spmm_sum: 'x_self' must be [M, H, C] (one row per CSR row)");
  }
  // every element is written exactly once, so no zero fill is needed
  Tensor out = torch::stable::new_empty(x, {m, heads, channels});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(x.scalar_type(), "spmm_sum", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* vp = value.has_value() ? value->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* sp = x_self.has_value() ? x_self->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t sw = static_cast<scalar_t>(self_weight);
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const int64_t row_size = heads * channels;
    parallel_rows(m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t* o = op + i * row_size;
        const scalar_t* self_row = sp == nullptr ? nullptr : sp + i * row_size;
        const int64_t lo = rp[i], hi = rp[i + 1];
        if (vp == nullptr) {
          spmm_row_range(o, c, lo, hi, xp, row_size, 0, row_size, e, mean, self_row, sw,
                         [](int64_t) { return scalar_t(1); });
        } else if (value_heads == 1) {
          spmm_row_range(o, c, lo, hi, xp, row_size, 0, row_size, e, mean, self_row, sw,
                         [vp](int64_t k) { return vp[k]; });
        } else {
          for (int64_t h = 0; h < heads; ++h)
            spmm_row_range(o, c, lo, hi, xp, row_size, h * channels, (h + 1) * channels, e, mean, self_row, sw,
                           [vp, h, value_heads](int64_t k) { return vp[k * value_heads + h]; });
        }
      }
    });
  });
  return out;
}

// x: [N, F]; value: none or [E]. Returns (out [M, F], arg [M, F]) with arg the
// CSR position of the winning entry, -1 for empty rows (whose output is 0).
std::tuple<Tensor, Tensor> spmm_minmax(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x,
                                       bool is_max) {
  check_cpu_contiguous(x, "x");
  STD_TORCH_CHECK(x.dim() == 2, "gnn_kernels::spmm_minmax: 'x' must be [N, F]");
  const int64_t n = x.size(0), feats = x.size(1);
  check_csr(rowptr, col, n);
  const int64_t m = rowptr.numel() - 1;
  if (value.has_value()) {
    check_cpu_contiguous(*value, "value");
    STD_TORCH_CHECK(value->dim() == 1 && value->size(0) == col.numel(),
                    "gnn_kernels::spmm_minmax: 'value' must be [E]");
    STD_TORCH_CHECK(value->scalar_type() == x.scalar_type(), "gnn_kernels::spmm_minmax: 'value' dtype must match 'x'");
  }
  Tensor out = torch::stable::new_empty(x, {m, feats});
  Tensor arg = torch::stable::new_empty(x, {m, feats}, ScalarType::Long);
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(x.scalar_type(), "spmm_minmax", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* vp = value.has_value() ? value->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    int64_t* ap = arg.mutable_data_ptr<int64_t>();
    const scalar_t init = is_max ? -std::numeric_limits<scalar_t>::infinity() : std::numeric_limits<scalar_t>::infinity();
    parallel_rows(m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t* o = op + i * feats;
        int64_t* a = ap + i * feats;
        for (int64_t f = 0; f < feats; ++f) {
          o[f] = init;
          a[f] = -1;
        }
        for (int64_t k = rp[i]; k < rp[i + 1]; ++k) {
          const scalar_t* xr = xp + c[k] * feats;
          const scalar_t w = vp == nullptr ? scalar_t(1) : vp[k];
          for (int64_t f = 0; f < feats; ++f) {
            const scalar_t v = w * xr[f];
            if (is_max ? v > o[f] : v < o[f]) {
              o[f] = v;
              a[f] = k;
            }
          }
        }
        for (int64_t f = 0; f < feats; ++f)
          if (a[f] < 0) o[f] = 0;
      }
    });
  });
  return std::make_tuple(out, arg);
}

// a: [M, H, C] (per row), b: [N, H, C] (per column). Returns [E, H].
Tensor sddmm(Tensor rowptr, Tensor col, Tensor a, Tensor b) {
  check_cpu_contiguous(a, "a");
  check_cpu_contiguous(b, "b");
  STD_TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(1) == b.size(1) && a.size(2) == b.size(2),
                  "gnn_kernels::sddmm: 'a' and 'b' must be [*, H, C] with equal H, C");
  STD_TORCH_CHECK(rowptr.numel() - 1 == a.size(0), "gnn_kernels::sddmm: 'a' must have one row per CSR row");
  check_csr(rowptr, col, b.size(0));
  const int64_t m = a.size(0), heads = a.size(1), channels = a.size(2), e = col.numel();
  Tensor out = torch::stable::new_empty(a, {e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(a.scalar_type(), "sddmm", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* ap = a.const_data_ptr<scalar_t>();
    const scalar_t* bp = b.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const int64_t row_size = heads * channels;
    parallel_rows(m, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* ar = ap + i * row_size;
        for (int64_t k = rp[i]; k < rp[i + 1]; ++k) {
          const scalar_t* br = bp + c[k] * row_size;
          for (int64_t h = 0; h < heads; ++h) {
            scalar_t acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t f = 0; f < channels; ++f) acc += ar[h * channels + f] * br[h * channels + f];
            op[k * heads + h] = acc;
          }
        }
      }
    });
  });
  return out;
}

}  // namespace gnn_kernels
