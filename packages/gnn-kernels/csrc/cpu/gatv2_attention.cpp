// Fused GATv2 attention, forward and backward.
//
// For each receiving node i (a CSR row), head h and entry k = (j -> i):
//   z[k, h, c]   = x_src[j, h, c] + x_dst[i, h, c] + edge[k, h, c]
//   s[k, h]      = sum_c att[h, c] * leaky_relu(z[k, h, c])
//   alpha[k, h]  = softmax over the entries of row i of s[., h]
//   out[i, h, :] = sum_k alpha[k, h] * x_src[j, h, :]
// edge is optional and given in CSR order. z is never stored: only [E, H]
// tensors are formed (alpha, and the score gradient in backward); the forward
// is one pass per row with an online (running-max) softmax.
//
// Backward, without atomics (dz[k, h, c] = dS[k, h] att[h, c] leaky_relu'(z[k, h, c])):
//   row pass (per i):  dS[k, h] = alpha[k, h] * (<g_i, x_src_j> + ga[k, h] - <g_i, out_i>
//                                               - sum_row alpha * ga),
//                      grad_x_dst[i] = sum_k dz[k], grad_edge[k] = dz[k],
//                      grad_att += dS[k, h] leaky_relu(z[k]) as per-chunk partial sums;
//   column pass over the transposed pattern (per sending node j, z recomputed):
//                      grad_x_src[j] = sum_k alpha[k] g_i + dz[k].
#include "fused_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gnn_kernels {

namespace {

constexpr const char* kOp = "gatv2_attention";
constexpr int64_t kRowsPerChunk = 256;

struct Gatv2Shapes {
  int64_t m, n, e, heads, channels;
};

Gatv2Shapes check_gatv2_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& x_src, const Tensor& x_dst,
                               const Tensor& att, const std::optional<Tensor>& edge) {
  check_cpu_contiguous(x_src, "x_src");
  STD_TORCH_CHECK(x_src.dim() == 3, "gnn_kernels::gatv2_attention: 'x_src' must be [N, H, C]");
  STD_TORCH_CHECK(is_float_type(x_src.scalar_type()), "gnn_kernels::gatv2_attention: only float32/float64");
  check_long(rowptr, "rowptr");
  Gatv2Shapes s{rowptr.numel() - 1, x_src.size(0), col.numel(), x_src.size(1), x_src.size(2)};
  const ScalarType dtype = x_src.scalar_type();
  fused::check_hc(x_dst, kOp, "x_dst", s.m, s.heads, s.channels, dtype);
  check_cpu_contiguous(att, "att");
  STD_TORCH_CHECK(att.dim() == 2 && att.size(0) == s.heads && att.size(1) == s.channels,
                  "gnn_kernels::gatv2_attention: 'att' must be [", s.heads, ", ", s.channels, "]");
  STD_TORCH_CHECK(att.scalar_type() == dtype, "gnn_kernels::gatv2_attention: 'att' dtype must match");
  if (edge.has_value()) fused::check_hc(*edge, kOp, "edge", s.e, s.heads, s.channels, dtype);
  check_csr(rowptr, col, s.n);
  return s;
}

// Branch-free forms, so that the channel loops vectorize.
template <typename scalar_t>
inline scalar_t leaky(scalar_t z, scalar_t slope) {
  return std::max(z, scalar_t(0)) + slope * std::min(z, scalar_t(0));
}

template <typename scalar_t>
inline scalar_t leaky_grad(scalar_t z, scalar_t slope) {
  return slope + (scalar_t(1) - slope) * scalar_t(z > 0);
}

}  // namespace

// t_rowptr/t_col/t_perm: the transposed pattern, only carried for the backward formula.
std::tuple<Tensor, Tensor> gatv2_attention_forward(Tensor rowptr, Tensor col, Tensor x_src, Tensor x_dst, Tensor att,
                                                   std::optional<Tensor> edge, double negative_slope,
                                                   std::optional<Tensor> /*t_rowptr*/,
                                                   std::optional<Tensor> /*t_col*/,
                                                   std::optional<Tensor> /*t_perm*/) {
  const Gatv2Shapes s = check_gatv2_inputs(rowptr, col, x_src, x_dst, att, edge);
  const int64_t heads = s.heads, channels = s.channels, hc = heads * channels;
  Tensor out = torch::stable::new_zeros(x_src, {s.m, heads, channels});
  Tensor alpha = torch::stable::new_empty(x_src, {s.e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(x_src.scalar_type(), kOp, [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xsp = x_src.const_data_ptr<scalar_t>();
    const scalar_t* xdp = x_dst.const_data_ptr<scalar_t>();
    const scalar_t* ap = att.const_data_ptr<scalar_t>();
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    scalar_t* alp = alpha.mutable_data_ptr<scalar_t>();
    const scalar_t slope = scalar_t(negative_slope);
    parallel_rows(s.m, 16, [&](int64_t begin, int64_t end) {
      fused::OnlineSoftmax<scalar_t> softmax(heads, channels);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        if (lo == hi) continue;
        const scalar_t* xd = xdp + i * hc;
        scalar_t* o = op + i * hc;  // running sum of exp(s - mx) * x_src_j
        softmax.start();
        for (int64_t k = lo; k < hi; ++k) {
          if (k + kPrefetch < hi) prefetch_row(xsp + c[k + kPrefetch] * hc, hc);
          const scalar_t* xs = xsp + c[k] * hc;
          const scalar_t* er = ep ? ep + k * hc : nullptr;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t* xsh = xs + h * channels;
            const scalar_t* xdh = xd + h * channels;
            const scalar_t* ah = ap + h * channels;
            scalar_t score = 0;
            if (er) {
              const scalar_t* eh = er + h * channels;
#pragma omp simd reduction(+ : score)
              for (int64_t f = 0; f < channels; ++f) score += ah[f] * leaky(xsh[f] + xdh[f] + eh[f], slope);
            } else {
#pragma omp simd reduction(+ : score)
              for (int64_t f = 0; f < channels; ++f) score += ah[f] * leaky(xsh[f] + xdh[f], slope);
            }
            alp[k * heads + h] = score;
            scalar_t* oh = o + h * channels;
            const scalar_t p = softmax.add(h, score, oh);
#pragma omp simd
            for (int64_t f = 0; f < channels; ++f) oh[f] += p * xsh[f];
          }
        }
        softmax.finish(o, alp + lo * heads, hi - lo);
      }
    });
  });
  return std::make_tuple(out, alpha);
}

// Returns (grad_x_src [N, H, C], grad_x_dst [M, H, C], grad_att [H, C], grad_edge [E, H, C] or
// [0, H, C] without edge). alpha [E, H] and out [M, H, C] are the forward's outputs;
// grad_alpha (optional, [E, H], CSR order) is the gradient reaching alpha directly.
std::tuple<Tensor, Tensor, Tensor, Tensor> gatv2_attention_backward(
    Tensor rowptr, Tensor col, Tensor x_src, Tensor x_dst, Tensor att, std::optional<Tensor> edge,
    double negative_slope, Tensor out, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha,
    std::optional<Tensor> t_rowptr, std::optional<Tensor> t_col, std::optional<Tensor> t_perm) {
  const Gatv2Shapes s = check_gatv2_inputs(rowptr, col, x_src, x_dst, att, edge);
  const int64_t heads = s.heads, channels = s.channels, hc = heads * channels;
  const ScalarType dtype = x_src.scalar_type();
  fused::check_hc(out, kOp, "out", s.m, heads, channels, dtype);
  fused::check_hc(grad_out, kOp, "grad_out", s.m, heads, channels, dtype);
  fused::check_eh(alpha, kOp, "alpha", s.e, heads, dtype);
  if (grad_alpha.has_value()) fused::check_eh(*grad_alpha, kOp, "grad_alpha", s.e, heads, dtype);
  fused::check_transposed(t_rowptr, t_col, t_perm, kOp, s.m, s.n, s.e);

  Tensor grad_x_src = torch::stable::new_zeros(x_src, {s.n, heads, channels});
  Tensor grad_x_dst = torch::stable::new_zeros(x_src, {s.m, heads, channels});
  Tensor grad_att = torch::stable::new_zeros(x_src, {heads, channels});
  Tensor grad_edge = torch::stable::new_empty(x_src, {edge.has_value() ? s.e : 0, heads, channels});
  // per entry: (dS[k, :], alpha[k, :]) side by side, so the column pass reads one cache line per entry
  Tensor weights = torch::stable::new_empty(x_src, {s.e, 2, heads});
  const int64_t chunks = fused::num_chunks(s.m, kRowsPerChunk);
  Tensor partial = torch::stable::new_zeros(x_src, {chunks, heads, channels});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  const int64_t* trp = t_rowptr->const_data_ptr<int64_t>();
  const int64_t* tc = t_col->const_data_ptr<int64_t>();
  const int64_t* tperm = t_perm->const_data_ptr<int64_t>();
  dispatch_float(dtype, "gatv2_attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xsp = x_src.const_data_ptr<scalar_t>();
    const scalar_t* xdp = x_dst.const_data_ptr<scalar_t>();
    const scalar_t* ap = att.const_data_ptr<scalar_t>();
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* outp = out.const_data_ptr<scalar_t>();
    const scalar_t* alp = alpha.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gxsp = grad_x_src.mutable_data_ptr<scalar_t>();
    scalar_t* gxdp = grad_x_dst.mutable_data_ptr<scalar_t>();
    scalar_t* gep = ep ? grad_edge.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* wp = weights.mutable_data_ptr<scalar_t>();
    scalar_t* pp = partial.mutable_data_ptr<scalar_t>();
    const scalar_t slope = scalar_t(negative_slope);

    // row pass: score gradient, x_dst / edge gradients, per-chunk att gradients
    fused::for_chunks(s.m, kRowsPerChunk, [&](int64_t chunk, int64_t begin, int64_t end) {
      std::vector<scalar_t> base(heads);
      const int64_t last = rp[end];
      scalar_t* gatt = pp + chunk * hc;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        if (lo == hi) continue;
        const scalar_t* g = gp + i * hc;
        const scalar_t* xd = xdp + i * hc;
        const scalar_t* o = outp + i * hc;
        scalar_t* gxd = gxdp + i * hc;
        for (int64_t h = 0; h < heads; ++h) {  // sum_k alpha[k] dalpha[k] = <g_i, out_i> (+ alpha . ga)
          scalar_t acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int64_t f = 0; f < channels; ++f) acc += g[h * channels + f] * o[h * channels + f];
          base[h] = acc;
        }
        if (gap)
          for (int64_t k = lo; k < hi; ++k)
            for (int64_t h = 0; h < heads; ++h) base[h] += alp[k * heads + h] * gap[k * heads + h];
        for (int64_t k = lo; k < hi; ++k) {
          if (k + kPrefetch < last) prefetch_row(xsp + c[k + kPrefetch] * hc, hc);
          const scalar_t* xs = xsp + c[k] * hc;
          const scalar_t* er = ep ? ep + k * hc : nullptr;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t* gh = g + h * channels;
            const scalar_t* xsh = xs + h * channels;
            const scalar_t* xdh = xd + h * channels;
            const scalar_t* ah = ap + h * channels;
            scalar_t dalpha = 0;
#pragma omp simd reduction(+ : dalpha)
            for (int64_t f = 0; f < channels; ++f) dalpha += gh[f] * xsh[f];
            if (gap) dalpha += gap[k * heads + h];
            const scalar_t ds = alp[k * heads + h] * (dalpha - base[h]);
            wp[(2 * k) * heads + h] = ds;
            wp[(2 * k + 1) * heads + h] = alp[k * heads + h];
            scalar_t* gxdh = gxd + h * channels;
            scalar_t* gah = gatt + h * channels;
            if (er) {
              const scalar_t* eh = er + h * channels;
              scalar_t* geh = gep + k * hc + h * channels;
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) {
                const scalar_t z = xsh[f] + xdh[f] + eh[f];
                const scalar_t dz = ds * ah[f] * leaky_grad(z, slope);
                gxdh[f] += dz;
                geh[f] = dz;
                gah[f] += ds * leaky(z, slope);
              }
            } else {
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) {
                const scalar_t z = xsh[f] + xdh[f];
                gxdh[f] += ds * ah[f] * leaky_grad(z, slope);
                gah[f] += ds * leaky(z, slope);
              }
            }
          }
        }
      }
    });

    // column pass over the transposed pattern: x_src gradients (z recomputed)
    parallel_rows(s.n, 16, [&](int64_t begin, int64_t end) {
      const int64_t last = trp[end];
      for (int64_t j = begin; j < end; ++j) {
        const scalar_t* xs = xsp + j * hc;
        scalar_t* gxs = gxsp + j * hc;
        for (int64_t p = trp[j]; p < trp[j + 1]; ++p) {
          if (p + kPrefetch < last) {  // the gathered rows are random accesses: fetch ahead
            prefetch_row(xdp + tc[p + kPrefetch] * hc, hc);
            prefetch_row(gp + tc[p + kPrefetch] * hc, hc);
            prefetch_row(wp + 2 * tperm[p + kPrefetch] * heads, 2 * heads);
            if (ep) prefetch_row(ep + tperm[p + kPrefetch] * hc, hc);
          }
          const int64_t k = tperm[p], i = tc[p];
          const scalar_t* xd = xdp + i * hc;
          const scalar_t* g = gp + i * hc;
          const scalar_t* er = ep ? ep + k * hc : nullptr;
          const scalar_t* wk = wp + 2 * k * heads;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t ds = wk[h];
            const scalar_t a = wk[heads + h];
            const scalar_t* xsh = xs + h * channels;
            const scalar_t* xdh = xd + h * channels;
            const scalar_t* gh = g + h * channels;
            const scalar_t* ah = ap + h * channels;
            scalar_t* gxsh = gxs + h * channels;
            if (er) {
              const scalar_t* eh = er + h * channels;
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) {
                const scalar_t z = xsh[f] + xdh[f] + eh[f];
                gxsh[f] += a * gh[f] + ds * ah[f] * leaky_grad(z, slope);
              }
            } else {
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) {
                const scalar_t z = xsh[f] + xdh[f];
                gxsh[f] += a * gh[f] + ds * ah[f] * leaky_grad(z, slope);
              }
            }
          }
        }
      }
    });

    // the att gradient: sum of the per-chunk partials, in chunk order (deterministic)
    scalar_t* ga = grad_att.mutable_data_ptr<scalar_t>();
    for (int64_t t = 0; t < chunks; ++t)
      for (int64_t f = 0; f < hc; ++f) ga[f] += pp[t * hc + f];
  });
  return std::make_tuple(grad_x_src, grad_x_dst, grad_att, grad_edge);
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def(
      "gatv2_attention_forward(Tensor rowptr, Tensor col, Tensor x_src, Tensor x_dst, Tensor att, Tensor? edge, "
      "float negative_slope, Tensor? t_rowptr, Tensor? t_col, Tensor? t_perm) -> (Tensor, Tensor)");
  m.def(
      "gatv2_attention_backward(Tensor rowptr, Tensor col, Tensor x_src, Tensor x_dst, Tensor att, Tensor? edge, "
      "float negative_slope, Tensor out, Tensor alpha, Tensor grad_out, Tensor? grad_alpha, Tensor? t_rowptr, "
      "Tensor? t_col, Tensor? t_perm) -> (Tensor, Tensor, Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("gatv2_attention_forward", TORCH_BOX(&gnn_kernels::gatv2_attention_forward));
  m.impl("gatv2_attention_backward", TORCH_BOX(&gnn_kernels::gatv2_attention_backward));
}
