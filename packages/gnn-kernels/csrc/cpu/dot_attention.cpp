// Fused dot-product attention (TransformerConv), forward and backward.
//
// For each receiving node i (a CSR row), head h and entry k = (j -> i):
//   s[k, h]      = scale * <query[i, h, :], key[j, h, :] + edge[k, h, :]>
//   alpha[k, h]  = softmax over the entries of row i of s[., h]
//   out[i, h, :] = sum_k alpha[k, h] * (value[j, h, :] + edge[k, h, :])
// edge is optional and given in CSR order. Only [E, H] tensors are formed
// (alpha, and the score gradient in backward); the forward is one pass per row
// with an online (running-max) softmax.
//
// Backward, without atomics:
//   row pass (per i):  dS[k, h] = alpha[k, h] * (<g_i, value_j + edge_k> + ga[k, h] - <g_i, out_i>
//                                               - sum_row alpha * ga),
//                      grad_query[i] = scale * sum_k dS[k] (key_j + edge_k),
//                      grad_edge[k]  = alpha[k] g_i + scale dS[k] query_i;
//   column pass over the transposed pattern (per sending node j):
//                      grad_key[j]   = scale * sum_k dS[k] query_i,
//                      grad_value[j] = sum_k alpha[k] g_i.
#include "fused_attention.h"

#include <cmath>
#include <limits>

namespace gnn_kernels {

namespace {

constexpr const char* kOp = "dot_attention";

struct DotShapes {
  int64_t m, n, e, heads, channels;
};

DotShapes check_dot_inputs(const Tensor& rowptr, const Tensor& col, const Tensor& query, const Tensor& key,
                           const Tensor& value, const std::optional<Tensor>& edge) {
  check_cpu_contiguous(query, "query");
  check_cpu_contiguous(key, "key");
  STD_TORCH_CHECK(query.dim() == 3 && key.dim() == 3, "gnn_kernels::dot_attention: 'query' and 'key' must be 3-D");
  STD_TORCH_CHECK(is_float_type(query.scalar_type()), "gnn_kernels::dot_attention: only float32/float64");
  DotShapes s{rowptr.numel() - 1, key.size(0), col.numel(), query.size(1), query.size(2)};
  check_long(rowptr, "rowptr");
  fused::check_hc(query, kOp, "query", s.m, s.heads, s.channels, query.scalar_type());
  fused::check_hc(key, kOp, "key", s.n, s.heads, s.channels, query.scalar_type());
  fused::check_hc(value, kOp, "value", s.n, s.heads, s.channels, query.scalar_type());
  if (edge.has_value()) fused::check_hc(*edge, kOp, "edge", s.e, s.heads, s.channels, query.scalar_type());
  check_csr(rowptr, col, s.n);
  return s;
}

}  // namespace

// t_rowptr/t_col/t_perm: the transposed pattern, only carried for the backward formula.
std::tuple<Tensor, Tensor> dot_attention_forward(Tensor rowptr, Tensor col, Tensor query, Tensor key, Tensor value,
                                                 std::optional<Tensor> edge, double scale,
                                                 std::optional<Tensor> /*t_rowptr*/,
                                                 std::optional<Tensor> /*t_col*/,
                                                 std::optional<Tensor> /*t_perm*/) {
  const DotShapes s = check_dot_inputs(rowptr, col, query, key, value, edge);
  const int64_t heads = s.heads, channels = s.channels, hc = heads * channels;
  Tensor out = torch::stable::new_zeros(query, {s.m, heads, channels});
  Tensor alpha = torch::stable::new_empty(query, {s.e, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  dispatch_float(query.scalar_type(), kOp, [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* qp = query.const_data_ptr<scalar_t>();
    const scalar_t* kp = key.const_data_ptr<scalar_t>();
    const scalar_t* vp = value.const_data_ptr<scalar_t>();
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    scalar_t* alp = alpha.mutable_data_ptr<scalar_t>();
    const scalar_t sc = scalar_t(scale);
    parallel_rows(s.m, 16, [&](int64_t begin, int64_t end) {
      fused::OnlineSoftmax<scalar_t> softmax(heads, channels);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        if (lo == hi) continue;
        const scalar_t* q = qp + i * hc;
        scalar_t* o = op + i * hc;  // running sum of exp(s - mx) * message
        softmax.start();
        for (int64_t k = lo; k < hi; ++k) {
          if (k + kPrefetch < hi) {
            prefetch_row(kp + c[k + kPrefetch] * hc, hc);
            prefetch_row(vp + c[k + kPrefetch] * hc, hc);
          }
          const scalar_t* kr = kp + c[k] * hc;
          const scalar_t* vr = vp + c[k] * hc;
          const scalar_t* er = ep ? ep + k * hc : nullptr;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t* qh = q + h * channels;
            const scalar_t* kh = kr + h * channels;
            scalar_t dot = 0;
            if (er) {
              const scalar_t* eh = er + h * channels;
#pragma omp simd reduction(+ : dot)
              for (int64_t f = 0; f < channels; ++f) dot += qh[f] * (kh[f] + eh[f]);
            } else {
#pragma omp simd reduction(+ : dot)
              for (int64_t f = 0; f < channels; ++f) dot += qh[f] * kh[f];
            }
            const scalar_t score = dot * sc;
            alp[k * heads + h] = score;
            scalar_t* oh = o + h * channels;
            const scalar_t p = softmax.add(h, score, oh);
            const scalar_t* vh = vr + h * channels;
            if (er) {
              const scalar_t* eh = er + h * channels;
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) oh[f] += p * (vh[f] + eh[f]);
            } else {
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) oh[f] += p * vh[f];
            }
          }
        }
        softmax.finish(o, alp + lo * heads, hi - lo);
      }
    });
  });
  return std::make_tuple(out, alpha);
}

// Returns (grad_query [M, H, C], grad_key [N, H, C], grad_value [N, H, C], grad_edge [E, H, C]
// or [0, H, C] without edge). alpha [E, H] and out [M, H, C] are the forward's outputs;
// grad_alpha (optional, [E, H], CSR order) is the gradient reaching alpha directly.
std::tuple<Tensor, Tensor, Tensor, Tensor> dot_attention_backward(
    Tensor rowptr, Tensor col, Tensor query, Tensor key, Tensor value, std::optional<Tensor> edge, double scale,
    Tensor out, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha, std::optional<Tensor> t_rowptr,
    std::optional<Tensor> t_col, std::optional<Tensor> t_perm) {
  const DotShapes s = check_dot_inputs(rowptr, col, query, key, value, edge);
  const int64_t heads = s.heads, channels = s.channels, hc = heads * channels;
  const ScalarType dtype = query.scalar_type();
  fused::check_hc(out, kOp, "out", s.m, heads, channels, dtype);
  fused::check_hc(grad_out, kOp, "grad_out", s.m, heads, channels, dtype);
  fused::check_eh(alpha, kOp, "alpha", s.e, heads, dtype);
  if (grad_alpha.has_value()) fused::check_eh(*grad_alpha, kOp, "grad_alpha", s.e, heads, dtype);
  fused::check_transposed(t_rowptr, t_col, t_perm, kOp, s.m, s.n, s.e);

  Tensor grad_query = torch::stable::new_zeros(query, {s.m, heads, channels});
  Tensor grad_key = torch::stable::new_zeros(query, {s.n, heads, channels});
  Tensor grad_value = torch::stable::new_zeros(query, {s.n, heads, channels});
  Tensor grad_edge = torch::stable::new_empty(query, {edge.has_value() ? s.e : 0, heads, channels});
  // per entry: (dS[k, :], alpha[k, :]) side by side, so the column pass reads one cache line per entry
  Tensor weights = torch::stable::new_empty(query, {s.e, 2, heads});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* c = col.const_data_ptr<int64_t>();
  const int64_t* trp = t_rowptr->const_data_ptr<int64_t>();
  const int64_t* tc = t_col->const_data_ptr<int64_t>();
  const int64_t* tperm = t_perm->const_data_ptr<int64_t>();
  dispatch_float(dtype, "dot_attention_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* qp = query.const_data_ptr<scalar_t>();
    const scalar_t* kp = key.const_data_ptr<scalar_t>();
    const scalar_t* vp = value.const_data_ptr<scalar_t>();
    const scalar_t* ep = edge.has_value() ? edge->const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* outp = out.const_data_ptr<scalar_t>();
    const scalar_t* alp = alpha.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* gap = grad_alpha.has_value() ? grad_alpha->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gqp = grad_query.mutable_data_ptr<scalar_t>();
    scalar_t* gkp = grad_key.mutable_data_ptr<scalar_t>();
    scalar_t* gvp = grad_value.mutable_data_ptr<scalar_t>();
    scalar_t* gep = ep ? grad_edge.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* wp = weights.mutable_data_ptr<scalar_t>();
    const scalar_t sc = scalar_t(scale);

    // row pass: score gradient, query and edge gradients
    parallel_rows(s.m, 16, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> base(heads);
      const int64_t last = rp[end];
      for (int64_t i = begin; i < end; ++i) {
        const int64_t lo = rp[i], hi = rp[i + 1];
        if (lo == hi) continue;
        const scalar_t* g = gp + i * hc;
        const scalar_t* q = qp + i * hc;
        const scalar_t* o = outp + i * hc;
        scalar_t* gq = gqp + i * hc;
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
          if (k + kPrefetch < last) {  // the gathered rows are random accesses: fetch ahead
            prefetch_row(kp + c[k + kPrefetch] * hc, hc);
            prefetch_row(vp + c[k + kPrefetch] * hc, hc);
          }
          const scalar_t* kr = kp + c[k] * hc;
          const scalar_t* vr = vp + c[k] * hc;
          const scalar_t* er = ep ? ep + k * hc : nullptr;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t* gh = g + h * channels;
            const scalar_t* vh = vr + h * channels;
            scalar_t dalpha = 0;
            if (er) {
              const scalar_t* eh = er + h * channels;
#pragma omp simd reduction(+ : dalpha)
              for (int64_t f = 0; f < channels; ++f) dalpha += gh[f] * (vh[f] + eh[f]);
            } else {
#pragma omp simd reduction(+ : dalpha)
              for (int64_t f = 0; f < channels; ++f) dalpha += gh[f] * vh[f];
            }
            if (gap) dalpha += gap[k * heads + h];
            const scalar_t a = alp[k * heads + h];
            const scalar_t ds = a * (dalpha - base[h]);
            wp[(2 * k) * heads + h] = ds;
            wp[(2 * k + 1) * heads + h] = a;
            const scalar_t w = sc * ds;
            const scalar_t* kh = kr + h * channels;
            scalar_t* gqh = gq + h * channels;
            if (er) {
              const scalar_t* eh = er + h * channels;
              const scalar_t* qh = q + h * channels;
              scalar_t* geh = gep + k * hc + h * channels;
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) {
                gqh[f] += w * (kh[f] + eh[f]);
                geh[f] = a * gh[f] + w * qh[f];
              }
            } else {
#pragma omp simd
              for (int64_t f = 0; f < channels; ++f) gqh[f] += w * kh[f];
            }
          }
        }
      }
    });

    // column pass over the transposed pattern: key and value gradients
    parallel_rows(s.n, 16, [&](int64_t begin, int64_t end) {
      const int64_t last = trp[end];
      for (int64_t j = begin; j < end; ++j) {
        scalar_t* gk = gkp + j * hc;
        scalar_t* gv = gvp + j * hc;
        for (int64_t p = trp[j]; p < trp[j + 1]; ++p) {
          if (p + kPrefetch < last) {
            prefetch_row(qp + tc[p + kPrefetch] * hc, hc);
            prefetch_row(gp + tc[p + kPrefetch] * hc, hc);
            prefetch_row(wp + 2 * tperm[p + kPrefetch] * heads, 2 * heads);
          }
          const int64_t k = tperm[p], i = tc[p];
          const scalar_t* q = qp + i * hc;
          const scalar_t* g = gp + i * hc;
          const scalar_t* wk = wp + 2 * k * heads;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t w = sc * wk[h];
            const scalar_t a = wk[heads + h];
            scalar_t* gkh = gk + h * channels;
            scalar_t* gvh = gv + h * channels;
            const scalar_t* qh = q + h * channels;
            const scalar_t* gh = g + h * channels;
#pragma omp simd
            for (int64_t f = 0; f < channels; ++f) {
              gkh[f] += w * qh[f];
              gvh[f] += a * gh[f];
            }
          }
        }
      }
    });
  });
  return std::make_tuple(grad_query, grad_key, grad_value, grad_edge);
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def(
      "dot_attention_forward(Tensor rowptr, Tensor col, Tensor query, Tensor key, Tensor value, Tensor? edge, "
      "float scale, Tensor? t_rowptr, Tensor? t_col, Tensor? t_perm) -> (Tensor, Tensor)");
  m.def(
      "dot_attention_backward(Tensor rowptr, Tensor col, Tensor query, Tensor key, Tensor value, Tensor? edge, "
      "float scale, Tensor out, Tensor alpha, Tensor grad_out, Tensor? grad_alpha, Tensor? t_rowptr, "
      "Tensor? t_col, Tensor? t_perm) -> (Tensor, Tensor, Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("dot_attention_forward", TORCH_BOX(&gnn_kernels::dot_attention_forward));
  m.impl("dot_attention_backward", TORCH_BOX(&gnn_kernels::dot_attention_backward));
}
