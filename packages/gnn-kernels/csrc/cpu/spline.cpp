// SplineCNN's B-spline ops (gnn.core.ops.spline_basis / spline_weighting):
//
//   spline_basis:      pseudo [E, D] -> basis [E, S], weight_index [E, S] (S = (m + 1)^D): for
//                      combination s = sum_d s_d (m + 1)^d the product of the pieces s_d of every
//                      dimension and the flat index sum_d ((floor(v_d) + s_d) mod k_d) prod_{d'<d} k_d'
//                      (the pieces: csrc/spline_basis.h)
//   spline_weighting:  out[e] = sum_s basis[e, s] * x[e] @ weight[weight_index[e, s]]
//
// and their backward passes. The weighting never forms an [E, F_in, F_out] tensor: each edge
// runs through its S kernel matrices (which stay in cache: K * F_in * F_out is small) with the
// output row as accumulator. The weight gradient is summed per chunk of edges into a partial of
// its own, and the partials are added in chunk order: the chunks depend on the sizes only, so
// the result does not depend on the thread count.
#include "common.h"

#include "../spline_basis.h"

#include <algorithm>
#include <type_traits>
#include <vector>

namespace gnn_kernels {

namespace {

struct BasisShape {
  int64_t edges, dims, degree, combos;
  std::vector<int64_t> kernel_size;
  std::vector<int64_t> is_open;
};

BasisShape check_basis_inputs(const Tensor& pseudo, const Tensor& kernel_size, const Tensor& is_open_spline,
                              int64_t degree, const char* op) {
  check_cpu_contiguous(pseudo, "pseudo");
  STD_TORCH_CHECK(pseudo.dim() == 2, "gnn_kernels::", op, ": 'pseudo' must be [E, D]");
  STD_TORCH_CHECK(degree >= 1 && degree <= 3, "gnn_kernels::", op, ": 'degree' must be 1, 2 or 3, got ", degree);
  check_long(kernel_size, "kernel_size");
  check_cpu_contiguous(is_open_spline, "is_open_spline");
  STD_TORCH_CHECK(is_open_spline.scalar_type() == ScalarType::Byte && is_open_spline.dim() == 1,
                  "gnn_kernels::", op, ": 'is_open_spline' must be a 1-D uint8 tensor");
  BasisShape s;
  s.edges = pseudo.size(0);
  s.dims = pseudo.size(1);
  s.degree = degree;
  STD_TORCH_CHECK(s.dims >= 1 && s.dims <= 8, "gnn_kernels::", op, ": 'pseudo' must have 1 to 8 dimensions, got ",
                  s.dims);
  STD_TORCH_CHECK(kernel_size.numel() == s.dims && is_open_spline.numel() == s.dims, "gnn_kernels::", op,
                  ": 'kernel_size' and 'is_open_spline' must have one entry per dimension (", s.dims, ")");
  const int64_t* kp = kernel_size.const_data_ptr<int64_t>();
  const uint8_t* op_ = is_open_spline.const_data_ptr<uint8_t>();
  s.combos = 1;
  for (int64_t d = 0; d < s.dims; ++d) {
    STD_TORCH_CHECK(kp[d] >= 1, "gnn_kernels::", op, ": 'kernel_size' must be positive, got ", kp[d]);
    s.kernel_size.push_back(kp[d]);
    s.is_open.push_back(op_[d] != 0 ? 1 : 0);
    s.combos *= degree + 1;
  }
  return s;
}

// Per-edge pieces of every dimension: value[d * (m+1) + j], slope[...] and index[...].
template <typename scalar_t>
void edge_pieces(const scalar_t* p, const BasisShape& s, scalar_t* value, scalar_t* slope, int64_t* index,
                 scalar_t* scale) {
  const int64_t width = s.degree + 1;
  for (int64_t d = 0; d < s.dims; ++d) {
    const int64_t k = s.kernel_size[d];
    const scalar_t sc = static_cast<scalar_t>(k - s.degree * s.is_open[d]);
    const scalar_t v = p[d] * sc;
    const scalar_t fl = std::floor(v);
    spline::pieces(v - fl, s.degree, value + d * width, slope + d * width);
    const int64_t first = spline::first_index(fl, k);
    for (int64_t j = 0; j < width; ++j) index[d * width + j] = (first + j) % k;
    scale[d] = sc;
  }
}

}  // namespace

// pseudo: [E, D] float; kernel_size: [D] int64; is_open_spline: [D] uint8.
// Returns basis [E, S] (pseudo's dtype) and weight_index [E, S] int64.
std::tuple<Tensor, Tensor> spline_basis(Tensor pseudo, Tensor kernel_size, Tensor is_open_spline, int64_t degree) {
  const BasisShape s = check_basis_inputs(pseudo, kernel_size, is_open_spline, degree, "spline_basis");
  Tensor basis = torch::stable::new_empty(pseudo, {s.edges, s.combos});
  Tensor weight_index = torch::stable::new_empty(pseudo, {s.edges, s.combos}, ScalarType::Long);
  if (s.edges == 0) return {basis, weight_index};
  int64_t* wi = weight_index.mutable_data_ptr<int64_t>();
  dispatch_float(pseudo.scalar_type(), "spline_basis", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* pp = pseudo.const_data_ptr<scalar_t>();
    scalar_t* bp = basis.mutable_data_ptr<scalar_t>();
    const int64_t width = s.degree + 1;
    parallel_rows(s.edges, 1024, [&](int64_t e0, int64_t e1) {
      std::vector<scalar_t> value(s.dims * width), slope(s.dims * width), scale(s.dims);
      std::vector<int64_t> index(s.dims * width);
      for (int64_t e = e0; e < e1; ++e) {
        edge_pieces(pp + e * s.dims, s, value.data(), slope.data(), index.data(), scale.data());
        for (int64_t c = 0; c < s.combos; ++c) {
          scalar_t prod = scalar_t(1);
          int64_t flat = 0, offset = 1, rest = c;
          for (int64_t d = 0; d < s.dims; ++d) {
            const int64_t j = rest % width;
            rest /= width;
            prod *= value[d * width + j];
            flat += index[d * width + j] * offset;
            offset *= s.kernel_size[d];
          }
          bp[e * s.combos + c] = prod;
          wi[e * s.combos + c] = flat;
        }
      }
    });
  });
  return {basis, weight_index};
}

// grad_basis: [E, S]. Returns grad_pseudo [E, D]:
//   sum_s grad_basis[e, s] * slope_{s_d}(t_d) * scale_d * prod_{d' != d} value_{s_d'}(t_d').
Tensor spline_basis_backward(Tensor grad_basis, Tensor pseudo, Tensor kernel_size, Tensor is_open_spline,
                             int64_t degree) {
  const BasisShape s = check_basis_inputs(pseudo, kernel_size, is_open_spline, degree, "spline_basis_backward");
  check_cpu_contiguous(grad_basis, "grad_basis");
  STD_TORCH_CHECK(grad_basis.dim() == 2 && grad_basis.size(0) == s.edges && grad_basis.size(1) == s.combos &&
                      grad_basis.scalar_type() == pseudo.scalar_type(),
                  "gnn_kernels::spline_basis_backward: 'grad_basis' must be [E, S] of the dtype of 'pseudo'");
  Tensor grad_pseudo = torch::stable::new_empty(pseudo, {s.edges, s.dims});
  if (s.edges == 0) return grad_pseudo;
  dispatch_float(pseudo.scalar_type(), "spline_basis_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* pp = pseudo.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad_basis.const_data_ptr<scalar_t>();
    scalar_t* out = grad_pseudo.mutable_data_ptr<scalar_t>();
    const int64_t width = s.degree + 1;
    parallel_rows(s.edges, 1024, [&](int64_t e0, int64_t e1) {
      std::vector<scalar_t> value(s.dims * width), slope(s.dims * width), scale(s.dims), acc(s.dims);
      std::vector<int64_t> index(s.dims * width), digit(s.dims);
      for (int64_t e = e0; e < e1; ++e) {
        edge_pieces(pp + e * s.dims, s, value.data(), slope.data(), index.data(), scale.data());
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        for (int64_t c = 0; c < s.combos; ++c) {
          int64_t rest = c;
          for (int64_t d = 0; d < s.dims; ++d) {
            digit[d] = rest % width;
            rest /= width;
          }
          const scalar_t g = gp[e * s.combos + c];
          for (int64_t d = 0; d < s.dims; ++d) {
            scalar_t prod = slope[d * width + digit[d]];
            for (int64_t o = 0; o < s.dims; ++o)
              if (o != d) prod *= value[o * width + digit[o]];
            acc[d] += g * prod;
          }
        }
        for (int64_t d = 0; d < s.dims; ++d) out[e * s.dims + d] = acc[d] * scale[d];
      }
    });
  });
  return grad_pseudo;
}

namespace {

struct WeightingShape {
  int64_t edges, combos, kernels, f_in, f_out;
};

WeightingShape check_weighting_inputs(const Tensor& x, const Tensor& weight, const Tensor& basis,
                                      const Tensor& weight_index, const char* op) {
  check_cpu_contiguous(x, "x");
  check_cpu_contiguous(weight, "weight");
  check_cpu_contiguous(basis, "basis");
  check_cpu_contiguous(weight_index, "weight_index");
  STD_TORCH_CHECK(x.dim() == 2 && weight.dim() == 3 && basis.dim() == 2 && weight_index.dim() == 2,
                  "gnn_kernels::", op, ": expected x [E, F_in], weight [K, F_in, F_out], basis and weight_index [E, S]");
  STD_TORCH_CHECK(is_float_type(x.scalar_type()) && weight.scalar_type() == x.scalar_type() &&
                      basis.scalar_type() == x.scalar_type(),
                  "gnn_kernels::", op, ": 'x', 'weight' and 'basis' must share a float32/float64 dtype");
  STD_TORCH_CHECK(weight_index.scalar_type() == ScalarType::Long, "gnn_kernels::", op,
                  ": 'weight_index' must be int64");
  WeightingShape s{x.size(0), basis.size(1), weight.size(0), x.size(1), weight.size(2)};
  STD_TORCH_CHECK(weight.size(1) == s.f_in, "gnn_kernels::", op, ": 'weight' expects ", weight.size(1),
                  " input features, 'x' has ", s.f_in);
  STD_TORCH_CHECK(basis.size(0) == s.edges && weight_index.size(0) == s.edges && weight_index.size(1) == s.combos,
                  "gnn_kernels::", op, ": 'basis' and 'weight_index' must be [E, S] with E = ", s.edges);
  const int64_t* wi = weight_index.const_data_ptr<int64_t>();
  std::atomic<bool> bad{false};
  parallel_rows(weight_index.numel(), 1 << 16, [&](int64_t b, int64_t en) {
    bool local = false;
    for (int64_t k = b; k < en; ++k) local |= (wi[k] < 0) | (wi[k] >= s.kernels);
    if (local) bad.store(true, std::memory_order_relaxed);
  });
  STD_TORCH_CHECK(!bad.load(), "gnn_kernels::", op, ": 'weight_index' holds an index out of range [0, ", s.kernels,
                  ")");
  return s;
}

// The chunks of edges whose weight gradients are summed separately: fixed by the sizes alone
// (never by the thread count), at most 64, and their partials at most 2^24 elements together.
int64_t weight_chunks(const WeightingShape& s) {
  const int64_t per = std::max<int64_t>(1, s.kernels * s.f_in * s.f_out);
  int64_t chunks = std::min<int64_t>(64, (s.edges + 2047) / 2048);
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, (int64_t(1) << 24) / per));
  return std::max<int64_t>(1, chunks);
}

// Column blocks of a row: widths fixed at compile time (64, 32, 16, 8) keep a block's accumulators in
// registers; a last block narrower than 8 runs with a runtime width.
template <class Body>
inline void for_each_block(int64_t width, const Body& body) {
  int64_t f0 = 0;
  for (; width - f0 >= 64; f0 += 64) body(f0, std::integral_constant<int, 64>{});
  if (width - f0 >= 32) {
    body(f0, std::integral_constant<int, 32>{});
    f0 += 32;
  }
  if (width - f0 >= 16) {
    body(f0, std::integral_constant<int, 16>{});
    f0 += 16;
  }
  if (width - f0 >= 8) {
    body(f0, std::integral_constant<int, 8>{});
    f0 += 8;
  }
  if (f0 < width) body(f0, std::integral_constant<int, 0>{});
}

// One output block of one edge: out[f0 : f0 + n] = sum_s basis_s * x @ W_s[:, f0 : f0 + n] (n = BW, or
// `tail` when BW == 0).
template <typename scalar_t, int BW>
inline void weigh_block(const scalar_t* __restrict__ xe, const scalar_t* __restrict__ be,
                        const int64_t* __restrict__ ke, int64_t combos, const scalar_t* __restrict__ wp,
                        int64_t f_in, int64_t f_out, int64_t f0, int64_t tail, scalar_t* __restrict__ o) {
  constexpr int kWidth = BW > 0 ? BW : 8;
  const int64_t n = BW > 0 ? BW : tail;
  scalar_t acc[kWidth];
  for (int f = 0; f < kWidth; ++f) acc[f] = scalar_t(0);
  for (int64_t c = 0; c < combos; ++c) {
    const scalar_t b = be[c];
    const scalar_t* __restrict__ w = wp + ke[c] * f_in * f_out + f0;
    for (int64_t i = 0; i < f_in; ++i) {
      const scalar_t a = b * xe[i];
      const scalar_t* __restrict__ row = w + i * f_out;
      if constexpr (BW > 0) {
#pragma omp simd
        for (int f = 0; f < BW; ++f) acc[f] += a * row[f];
      } else {
        for (int64_t f = 0; f < n; ++f) acc[f] += a * row[f];
      }
    }
  }
  for (int64_t f = 0; f < n; ++f) o[f0 + f] = acc[f];
}

// The gradient of x and the basis for one input block of one edge: t_s = W_s[f0 : f0 + n, :] g (from the
// transposed weights wt [K, F_out, F_in]), grad_x[f0 : f0 + n] = sum_s basis_s t_s and
// grad_basis[s] += x[f0 : f0 + n] . t_s.
template <typename scalar_t, int BW>
inline void grad_block(const scalar_t* __restrict__ xe, const scalar_t* __restrict__ g,
                       const scalar_t* __restrict__ be, const int64_t* __restrict__ ke, int64_t combos,
                       const scalar_t* __restrict__ wt, int64_t f_in, int64_t f_out, int64_t i0, int64_t tail,
                       scalar_t* __restrict__ gx, scalar_t* __restrict__ gb) {
  constexpr int kWidth = BW > 0 ? BW : 8;
  const int64_t n = BW > 0 ? BW : tail;
  scalar_t sum[kWidth];
  for (int i = 0; i < kWidth; ++i) sum[i] = scalar_t(0);
  for (int64_t c = 0; c < combos; ++c) {
    scalar_t t[kWidth];
    for (int i = 0; i < kWidth; ++i) t[i] = scalar_t(0);
    const scalar_t* __restrict__ w = wt + ke[c] * f_out * f_in + i0;
    for (int64_t f = 0; f < f_out; ++f) {
      const scalar_t gf = g[f];
      const scalar_t* __restrict__ row = w + f * f_in;
      if constexpr (BW > 0) {
#pragma omp simd
        for (int i = 0; i < BW; ++i) t[i] += gf * row[i];
      } else {
        for (int64_t i = 0; i < n; ++i) t[i] += gf * row[i];
      }
    }
    const scalar_t b = be[c];
    if (gb != nullptr) {
      scalar_t dot = scalar_t(0);
      if constexpr (BW > 0) {
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < BW; ++i) dot += xe[i0 + i] * t[i];
      } else {
        for (int64_t i = 0; i < n; ++i) dot += xe[i0 + i] * t[i];
      }
      gb[c] += dot;
    }
    if constexpr (BW > 0) {
#pragma omp simd
      for (int i = 0; i < BW; ++i) sum[i] += b * t[i];
    } else {
      for (int64_t i = 0; i < n; ++i) sum[i] += b * t[i];
    }
  }
  if (gx != nullptr)
    for (int64_t i = 0; i < n; ++i) gx[i0 + i] = sum[i];
}

// grad_weight[k_s][:, f0 : f0 + n] += (basis_s x)^T g[f0 : f0 + n] for every s of one edge.
template <typename scalar_t, int BW>
inline void weight_grad_block(const scalar_t* __restrict__ xe, const scalar_t* __restrict__ g,
                              const scalar_t* __restrict__ be, const int64_t* __restrict__ ke, int64_t combos,
                              scalar_t* __restrict__ acc, int64_t f_in, int64_t f_out, int64_t f0, int64_t tail) {
  constexpr int kWidth = BW > 0 ? BW : 8;
  const int64_t n = BW > 0 ? BW : tail;
  scalar_t gv[kWidth];
  for (int64_t f = 0; f < n; ++f) gv[f] = g[f0 + f];
  for (int64_t c = 0; c < combos; ++c) {
    const scalar_t b = be[c];
    scalar_t* __restrict__ w = acc + ke[c] * f_in * f_out + f0;
    for (int64_t i = 0; i < f_in; ++i) {
      const scalar_t a = b * xe[i];
      scalar_t* __restrict__ row = w + i * f_out;
      if constexpr (BW > 0) {
#pragma omp simd
        for (int f = 0; f < BW; ++f) row[f] += a * gv[f];
      } else {
        for (int64_t f = 0; f < n; ++f) row[f] += a * gv[f];
      }
    }
  }
}

}  // namespace

// x: [E, F_in]; weight: [K, F_in, F_out]; basis: [E, S]; weight_index: [E, S] in [0, K).
Tensor spline_weighting(Tensor x, Tensor weight, Tensor basis, Tensor weight_index) {
  const WeightingShape s = check_weighting_inputs(x, weight, basis, weight_index, "spline_weighting");
  Tensor out = torch::stable::new_empty(x, {s.edges, s.f_out});
  if (s.edges == 0 || s.f_out == 0) return out;
  const int64_t* wi = weight_index.const_data_ptr<int64_t>();
  dispatch_float(x.scalar_type(), "spline_weighting", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* wp = weight.const_data_ptr<scalar_t>();
    const scalar_t* bp = basis.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const int64_t f_in = s.f_in, f_out = s.f_out, combos = s.combos;
    parallel_rows(s.edges, 64, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) {
        const scalar_t* xe = xp + e * f_in;
        const scalar_t* be = bp + e * combos;
        const int64_t* ke = wi + e * combos;
        scalar_t* o = op + e * f_out;
        for_each_block(f_out, [&](int64_t f0, auto width) {
          constexpr int BW = decltype(width)::value;
          weigh_block<scalar_t, BW>(xe, be, ke, combos, wp, f_in, f_out, f0, f_out - f0, o);
        });
      }
    });
  });
  return out;
}

// grad_out: [E, F_out]. Returns (grad_x [E, F_in], grad_weight [K, F_in, F_out], grad_basis [E, S]);
// an output not asked for is returned empty ([0, ...]).
//   grad_x[e]         = sum_s basis[e, s] * W_s grad_out[e]          (W_s = weight[weight_index[e, s]])
//   grad_basis[e, s]  = x[e] . (W_s grad_out[e])
//   grad_weight[k]    = sum_{(e, s): weight_index[e, s] = k} basis[e, s] * x[e]^T grad_out[e]
std::tuple<Tensor, Tensor, Tensor> spline_weighting_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor basis,
                                                             Tensor weight_index, bool need_x, bool need_weight,
                                                             bool need_basis) {
  const WeightingShape s = check_weighting_inputs(x, weight, basis, weight_index, "spline_weighting_backward");
  check_cpu_contiguous(grad_out, "grad_out");
  STD_TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == s.edges && grad_out.size(1) == s.f_out &&
                      grad_out.scalar_type() == x.scalar_type(),
                  "gnn_kernels::spline_weighting_backward: 'grad_out' must be [E, F_out] of the dtype of 'x'");
  Tensor grad_x = torch::stable::new_zeros(x, {need_x ? s.edges : 0, s.f_in});
  Tensor grad_weight = torch::stable::new_zeros(weight, {need_weight ? s.kernels : 0, s.f_in, s.f_out});
  Tensor grad_basis = torch::stable::new_empty(basis, {need_basis ? s.edges : 0, s.combos});
  if (s.edges == 0 || !(need_x || need_weight || need_basis)) return {grad_x, grad_weight, grad_basis};
  const int64_t* wi = weight_index.const_data_ptr<int64_t>();
  const bool need_mv = need_x || need_basis;
  const int64_t chunks = need_weight ? weight_chunks(s) : std::max<int64_t>(1, (s.edges + 255) / 256);
  const int64_t per = s.kernels * s.f_in * s.f_out;
  // transposed weights [K, F_out, F_in]: W_s g is then a sum of rows (no horizontal sums)
  Tensor weight_t = torch::stable::new_empty(weight, {need_mv ? s.kernels : 0, s.f_out, s.f_in});
  Tensor partial = torch::stable::new_zeros(weight, {need_weight && chunks > 1 ? chunks : 0, s.kernels, s.f_in, s.f_out});
  dispatch_float(x.scalar_type(), "spline_weighting_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* wp = weight.const_data_ptr<scalar_t>();
    const scalar_t* bp = basis.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    scalar_t* gxp = need_x ? grad_x.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gwp = need_weight ? grad_weight.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gbp = need_basis ? grad_basis.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* pp = need_weight && chunks > 1 ? partial.mutable_data_ptr<scalar_t>() : nullptr;
    const int64_t f_in = s.f_in, f_out = s.f_out, combos = s.combos, edges = s.edges;
    scalar_t* wtp = nullptr;
    if (need_mv) {
      wtp = weight_t.mutable_data_ptr<scalar_t>();
      for (int64_t k = 0; k < s.kernels; ++k)
        for (int64_t i = 0; i < f_in; ++i)
          for (int64_t f = 0; f < f_out; ++f) wtp[(k * f_out + f) * f_in + i] = wp[(k * f_in + i) * f_out + f];
    }
    parallel_rows(chunks, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        scalar_t* acc = pp != nullptr ? pp + p * per : gwp;
        const int64_t e0 = edges * p / chunks, e1 = edges * (p + 1) / chunks;
        for (int64_t e = e0; e < e1; ++e) {
          const scalar_t* g = gp + e * f_out;
          const scalar_t* xe = xp + e * f_in;
          const scalar_t* be = bp + e * combos;
          const int64_t* ke = wi + e * combos;
          if (need_mv) {
            scalar_t* gb = need_basis ? gbp + e * combos : nullptr;
            if (gb != nullptr)
              for (int64_t c = 0; c < combos; ++c) gb[c] = scalar_t(0);
            scalar_t* gx = need_x ? gxp + e * f_in : nullptr;
            for_each_block(f_in, [&](int64_t i0, auto width) {
              constexpr int BW = decltype(width)::value;
              grad_block<scalar_t, BW>(xe, g, be, ke, combos, wtp, f_in, f_out, i0, f_in - i0, gx, gb);
            });
          }
          if (need_weight) {
            for_each_block(f_out, [&](int64_t f0, auto width) {
              constexpr int BW = decltype(width)::value;
              weight_grad_block<scalar_t, BW>(xe, g, be, ke, combos, acc, f_in, f_out, f0, f_out - f0);
            });
          }
        }
      }
    });
    if (pp != nullptr) {  // the partials, added in chunk order
      parallel_rows(per, 4096, [&](int64_t j0, int64_t j1) {
        for (int64_t p = 0; p < chunks; ++p) {
          const scalar_t* __restrict__ src = pp + p * per;
#pragma omp simd
          for (int64_t j = j0; j < j1; ++j) gwp[j] += src[j];
        }
      });
    }
  });
  return {grad_x, grad_weight, grad_basis};
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("spline_basis(Tensor pseudo, Tensor kernel_size, Tensor is_open_spline, int degree) -> (Tensor, Tensor)");
  m.def(
      "spline_basis_backward(Tensor grad_basis, Tensor pseudo, Tensor kernel_size, Tensor is_open_spline, "
      "int degree) -> Tensor");
  m.def("spline_weighting(Tensor x, Tensor weight, Tensor basis, Tensor weight_index) -> Tensor");
  m.def(
      "spline_weighting_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor basis, Tensor weight_index, "
      "bool need_x, bool need_weight, bool need_basis) -> (Tensor, Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("spline_basis", TORCH_BOX(&gnn_kernels::spline_basis));
  m.impl("spline_basis_backward", TORCH_BOX(&gnn_kernels::spline_basis_backward));
  m.impl("spline_weighting", TORCH_BOX(&gnn_kernels::spline_weighting));
  m.impl("spline_weighting_backward", TORCH_BOX(&gnn_kernels::spline_weighting_backward));
}
