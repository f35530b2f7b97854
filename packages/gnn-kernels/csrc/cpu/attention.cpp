// Fused attention aggregation for GAT-style layers, forward and backward.
//
// For each receiving node i (a CSR row) and head h:
//   s[e, h]     = leaky_relu(a_src[col[e], h] + a_dst[i, h] + a_edge[e, h])
//   alpha[e, h] = softmax over the entries e of row i of s[., h]
//   out[i, h,:] = sum_e alpha[e, h] * x[col[e], h, :]
// Only [E, H] scores are stored, never an [E, H, C] tensor.
//
// The backward kernel returns the gradient with respect to the raw score
// (before leaky-relu); the gradients of a_src/a_dst/a_edge are reductions of
// it and the gradient of x is a transposed spmm with alpha as weights, both
// done by the Python side with the other kernels.
#include "common.h"

#include <cmath>
#include <limits>

namespace gnn_kernels {

namespace {

void check_attention_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& a_src, const Tensor& a_dst,
                            const std::optional<Tensor>& a_edge, const Tensor& x) {
  check_cpu_contiguous(a_src, "a_src");
  check_cpu_contiguous(a_dst, "a_dst");
  check_cpu_contiguous(x, "x");
  STD_TORCH_CHECK(x.dim() == 3, "gnn_kernels::attention: 'x' must be [N, H, C]");
  const int64_t heads = x.size(1);
  STD_TORCH_CHECK(a_src.dim() == 2 && a_src.size(0) == x.size(0) && a_src.size(1) == heads,
                  "gnn_kernels::attention: 'a_src' must be [N, H]");
  STD_TORCH_CHECK(a_dst.dim() == 2 && a_dst.size(0) == rowptr.numel() - 1 && a_dst.size(1) == heads,
                  "gnn_kernels::attention: 'a_dst' must be [M, H]");
  STD_TORCH_CHECK(a_src.scalar_type() == x.scalar_type() && a_dst.scalar_type() == x.scalar_type(),
                  "gnn_kernels::attention: dtypes must match");
  if (a_edge.has_value()) {
    check_cpu_contiguous(*a_edge, "a_edge");
    STD_TORCH_CHECK(a_edge->dim() == 2 && a_edge->size(0) == col.numel() && a_edge->size(1) == heads,
                    "gnn_kernels::attention: 'a_edge' must be [E, H]");
    STD_TORCH_CHECK(a_edge->scalar_type() == x.scalar_type(), "gnn_kernels::attention: dtypes must match");
  }
  check_csr(rowptr, col, x.size(0));
}

}  // namespace

// t_rowptr/t_col/t_perm: the transposed pattern, used only by the backward formula.
std::tuple<Tensor, Tensor> attention_forward(Tensor rowptr, Tensor col, Tensor a_src, Tensor a_dst,
                                             std::optional<Tensor> a_edge, Tensor x, double negative_slope, std::optional<Tensor> /*t_rowptr*/, std::optional<Tensor> /*t_col*/, std::optional<Tensor> /*t_perm*/) {
  check_attention_inputs(rowptr, col, a_src, a_dst, a_edge, x);
  const int64_t m = rowptr.numel() - 1, heads = x.size(1), channels = x.size(2), e = col.numel();
  Tensor out = torch::stable::new_zeros(x, {m, heads, channels});
  Tensor alpha = torch::stable::new_empty(x, {e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(x.scalar_type(), "attention_forward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* sp = a_src.const_data_ptr<scalar_t>();
    const scalar_t* dp = a_dst.const_data_ptr<scalar_t>();
    const scalar_t* ep = a_edge.has_value() ? a_edge->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    scalar_t* alp = alpha.mutable_data_ptr<scalar_t>();
    const scalar_t slope = scalar_t(negative_slope);
    parallel_rows(m, 16, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> mx(heads), sum(heads);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        if (lo == hi) continue;
        for (int64_t h = 0; h < heads; ++h) mx[h] = -std::numeric_limits<scalar_t>::infinity();
        for (int64_t k = lo; k < hi; ++k) {
          for (int64_t h = 0; h < heads; ++h) {
            scalar_t s = sp[c[k] * heads + h] + dp[i * heads + h] + (ep ? ep[k * heads + h] : scalar_t(0));
            s = s > 0 ? s : s * slope;
            alp[k * heads + h] = s;
            mx[h] = s > mx[h] ? s : mx[h];
          }
        }
        for (int64_t h = 0; h < heads; ++h) sum[h] = 0;
        for (int64_t k = lo; k < hi; ++k) {
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t v = std::exp(alp[k * heads + h] - mx[h]);
            alp[k * heads + h] = v;
            sum[h] += v;
          }
        }
        for (int64_t h = 0; h < heads; ++h) sum[h] = scalar_t(1) / (sum[h] + scalar_t(1e-16));
        scalar_t* o = op + i * heads * channels;
        for (int64_t k = lo; k < hi; ++k) {
          const scalar_t* xr = xp + c[k] * heads * channels;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t w = alp[k * heads + h] * sum[h];
            alp[k * heads + h] = w;
            scalar_t* oh = o + h * channels;
            const scalar_t* xh = xr + h * channels;
#pragma omp simd
            for (int64_t f = 0; f < channels; ++f) oh[f] += w * xh[f];
          }
        }
      }
    });
  });
  return std::make_tuple(out, alpha);
}

// Gradient of the loss with respect to the raw scores (before leaky-relu), [E, H].
// grad_alpha (optional, [E, H]) is the gradient reaching the returned alpha directly.
Tensor attention_backward(Tensor rowptr, Tensor col, Tensor a_src, Tensor a_dst, std::optional<Tensor> a_edge,
                          Tensor x, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha,
                          double negative_slope) {
  check_attention_inputs(rowptr, col, a_src, a_dst, a_edge, x);
  check_cpu_contiguous(alpha, "alpha");
  check_cpu_contiguous(grad_out, "grad_out");
  const int64_t m = rowptr.numel() - 1, heads = x.size(1), channels = x.size(2), e = col.numel();
  STD_TORCH_CHECK(alpha.dim() == 2 && alpha.size(0) == e && alpha.size(1) == heads,
                  "gnn_kernels::attention_backward: 'alpha' must be [E, H]");
  STD_TORCH_CHECK(grad_out.dim() == 3 && grad_out.size(0) == m && grad_out.size(1) == heads &&
                      grad_out.size(2) == channels,
                  "gnn_kernels::attention_backward: 'grad_out' must be [M, H, C]");
  if (grad_alpha.has_value()) {
    check_cpu_contiguous(*grad_alpha, "grad_alpha");
    STD_TORCH_CHECK(grad_alpha->dim() == 2 && grad_alpha->size(0) == e && grad_alpha->size(1) == heads,
                    "gnn_kernels::attention_backward: 'grad_alpha' must be [E, H]");
  }
  Tensor grad_raw = torch::stable::new_empty(x, {e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(x.scalar_type(), "attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* sp = a_src.const_data_ptr<scalar_t>();
    const scalar_t* dp = a_dst.const_data_ptr<scalar_t>();
    const scalar_t* ep = a_edge.has_value() ? a_edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* alp = alpha.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gr = grad_raw.mutable_data_ptr<scalar_t>();
    const scalar_t slope = scalar_t(negative_slope);
    parallel_rows(m, 16, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> dot(heads);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        const scalar_t* g = gp + i * heads * channels;
        for (int64_t h = 0; h < heads; ++h) dot[h] = 0;
        // d loss / d alpha[e, h] = <grad_out[i, h], x[col[e], h]>, kept in gr for now
        for (int64_t k = lo; k < hi; ++k) {
          const scalar_t* xr = xp + c[k] * heads * channels;
          for (int64_t h = 0; h < heads; ++h) {
            scalar_t acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t f = 0; f < channels; ++f) acc += g[h * channels + f] * xr[h * channels + f];
            if (gap) acc += gap[k * heads + h];
            gr[k * heads + h] = acc;
            dot[h] += acc * alp[k * heads + h];
          }
        }
        // softmax backward, then leaky-relu backward
        for (int64_t k = lo; k < hi; ++k) {
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t gs = alp[k * heads + h] * (gr[k * heads + h] - dot[h]);
            const scalar_t raw = sp[c[k] * heads + h] + dp[i * heads + h] + (ep ? ep[k * heads + h] : scalar_t(0));
            gr[k * heads + h] = raw > 0 ? gs : gs * slope;
          }
        }
      }
    });
  });
  return grad_raw;
}

}  // namespace gnn_kernels
