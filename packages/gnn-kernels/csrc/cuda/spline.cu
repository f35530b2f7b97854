// CUDA kernels of SplineCNN's B-spline ops, for the schemas of csrc/cpu/spline.cpp (same
// checks and messages, same pieces: csrc/spline_basis.h).
//
//   spline_basis / _backward   one thread per edge
//   spline_weighting           one thread per output element (e, f)
//   spline_weighting_backward  grad_x: one thread per (e, i); grad_basis: one warp per (e, s)
//                              (butterfly sum: the same bits every run); grad_weight: the edges in
//                              chunks fixed by the sizes, one thread per (chunk, i, f) summing its
//                              chunk's terms in order into a partial of its own, then the partials
//                              added in chunk order. No atomics: every result is deterministic.
//
// kernel_size and is_open_spline ([D], D <= 8) are copied to the host, checked there and passed
// by value; weight_index is checked on the device (an error flag, raised on the host).
#include "common.cuh"
#include "../spline_basis.h"

#include <vector>

namespace gnn_kernels {
namespace gpu {

namespace {

constexpr int kMaxDims = 8;

struct BasisParams {
  int64_t edges, dims, degree, combos;
  int64_t kernel_size[kMaxDims];
  int64_t is_open[kMaxDims];
};

template <typename T>
std::vector<T> copy_to_host(const Tensor& t, cudaStream_t stream) {
  std::vector<T> host(t.numel());
  if (!host.empty()) {
    STD_CUDA_CHECK(cudaMemcpyAsync(host.data(), t.const_data_ptr<T>(), host.size() * sizeof(T),
                                   cudaMemcpyDeviceToHost, stream));
    STD_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return host;
}

BasisParams check_basis_inputs(const Tensor& pseudo, const Tensor& kernel_size, const Tensor& is_open_spline,
                               int64_t degree, const char* op, const CudaContext& ctx) {
  check_cuda_contiguous(pseudo, "pseudo", ctx.device());
  STD_TORCH_CHECK(pseudo.dim() == 2, "gnn_kernels::", op, ": 'pseudo' must be [E, D]");
  STD_TORCH_CHECK(degree >= 1 && degree <= 3, "gnn_kernels::", op, ": 'degree' must be 1, 2 or 3, got ", degree);
  check_long(kernel_size, "kernel_size", ctx.device());
  check_cuda_contiguous(is_open_spline, "is_open_spline", ctx.device());
  STD_TORCH_CHECK(is_open_spline.scalar_type() == ScalarType::Byte && is_open_spline.dim() == 1,
                  "gnn_kernels::", op, ": 'is_open_spline' must be a 1-D uint8 tensor");
  BasisParams p{};
  p.edges = pseudo.size(0);
  p.dims = pseudo.size(1);
  p.degree = degree;
  STD_TORCH_CHECK(p.dims >= 1 && p.dims <= kMaxDims, "gnn_kernels::", op,
                  ": 'pseudo' must have 1 to 8 dimensions, got ", p.dims);
  STD_TORCH_CHECK(kernel_size.numel() == p.dims && is_open_spline.numel() == p.dims, "gnn_kernels::", op,
                  ": 'kernel_size' and 'is_open_spline' must have one entry per dimension (", p.dims, ")");
  const std::vector<int64_t> ks = copy_to_host<int64_t>(kernel_size, ctx.stream());
  const std::vector<uint8_t> open = copy_to_host<uint8_t>(is_open_spline, ctx.stream());
  p.combos = 1;
  for (int64_t d = 0; d < p.dims; ++d) {
    STD_TORCH_CHECK(ks[d] >= 1, "gnn_kernels::", op, ": 'kernel_size' must be positive, got ", ks[d]);
    p.kernel_size[d] = ks[d];
    p.is_open[d] = open[d] != 0 ? 1 : 0;
    p.combos *= degree + 1;
  }
  return p;
}

// Pieces of every dimension of one edge (as the CPU's edge_pieces).
template <typename scalar_t>
__device__ void edge_pieces(const scalar_t* p, const BasisParams& s, scalar_t* value, scalar_t* slope,
                            int64_t* index, scalar_t* scale) {
  const int64_t width = s.degree + 1;
  for (int64_t d = 0; d < s.dims; ++d) {
    const int64_t k = s.kernel_size[d];
    const scalar_t sc = static_cast<scalar_t>(k - s.degree * s.is_open[d]);
    const scalar_t v = p[d] * sc;
    const scalar_t fl = floor(v);
    spline::pieces(v - fl, s.degree, value + d * width, slope + d * width);
    const int64_t first = spline::first_index(fl, k);
    for (int64_t j = 0; j < width; ++j) index[d * width + j] = (first + j) % k;
    scale[d] = sc;
  }
}

template <typename scalar_t>
__global__ void basis_kernel(const scalar_t* __restrict__ pp, BasisParams s, scalar_t* __restrict__ bp,
                             int64_t* __restrict__ wi) {
  scalar_t value[kMaxDims * 4], slope[kMaxDims * 4], scale[kMaxDims];
  int64_t index[kMaxDims * 4];
  const int64_t width = s.degree + 1;
  for (int64_t e = global_thread(); e < s.edges; e += thread_stride()) {
    edge_pieces(pp + e * s.dims, s, value, slope, index, scale);
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
}

template <typename scalar_t>
__global__ void basis_backward_kernel(const scalar_t* __restrict__ gp, const scalar_t* __restrict__ pp,
                                      BasisParams s, scalar_t* __restrict__ out) {
  scalar_t value[kMaxDims * 4], slope[kMaxDims * 4], scale[kMaxDims], acc[kMaxDims];
  int64_t index[kMaxDims * 4], digit[kMaxDims];
  const int64_t width = s.degree + 1;
  for (int64_t e = global_thread(); e < s.edges; e += thread_stride()) {
    edge_pieces(pp + e * s.dims, s, value, slope, index, scale);
    for (int64_t d = 0; d < s.dims; ++d) acc[d] = scalar_t(0);
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
}

struct WeightingShape {
  int64_t edges, combos, kernels, f_in, f_out;
};

WeightingShape check_weighting_inputs(const Tensor& x, const Tensor& weight, const Tensor& basis,
                                      const Tensor& weight_index, const char* op, const CudaContext& ctx) {
  check_cuda_contiguous(x, "x", ctx.device());
  check_cuda_contiguous(weight, "weight", ctx.device());
  check_cuda_contiguous(basis, "basis", ctx.device());
  check_cuda_contiguous(weight_index, "weight_index", ctx.device());
  STD_TORCH_CHECK(x.dim() == 2 && weight.dim() == 3 && basis.dim() == 2 && weight_index.dim() == 2,
                  "gnn_kernels::", op, ": expected x [E, F_in], weight [K, F_in, F_out], basis and weight_index [E, S]");
  STD_TORCH_CHECK((x.scalar_type() == ScalarType::Float || x.scalar_type() == ScalarType::Double) &&
                      weight.scalar_type() == x.scalar_type() && basis.scalar_type() == x.scalar_type(),
                  "gnn_kernels::", op, ": 'x', 'weight' and 'basis' must share a float32/float64 dtype");
  STD_TORCH_CHECK(weight_index.scalar_type() == ScalarType::Long, "gnn_kernels::", op,
                  ": 'weight_index' must be int64");
  WeightingShape s{x.size(0), basis.size(1), weight.size(0), x.size(1), weight.size(2)};
  STD_TORCH_CHECK(weight.size(1) == s.f_in, "gnn_kernels::", op, ": 'weight' expects ", weight.size(1),
                  " input features, 'x' has ", s.f_in);
  STD_TORCH_CHECK(basis.size(0) == s.edges && weight_index.size(0) == s.edges && weight_index.size(1) == s.combos,
                  "gnn_kernels::", op, ": 'basis' and 'weight_index' must be [E, S] with E = ", s.edges);
  const int bits = run_index_checks(weight_index, ctx.stream(), nullptr, 0, 0,
                                    weight_index.const_data_ptr<int64_t>(), weight_index.numel(), s.kernels);
  STD_TORCH_CHECK(!(bits & kBadIndex), "gnn_kernels::", op, ": 'weight_index' holds an index out of range [0, ",
                  s.kernels, ")");
  return s;
}

template <typename scalar_t>
__global__ void weighting_kernel(const scalar_t* __restrict__ xp, const scalar_t* __restrict__ wp,
                                 const scalar_t* __restrict__ bp, const int64_t* __restrict__ wi, WeightingShape s,
                                 scalar_t* __restrict__ out) {
  const int64_t total = s.edges * s.f_out;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t e = t / s.f_out, f = t % s.f_out;
    const scalar_t* xe = xp + e * s.f_in;
    scalar_t acc = scalar_t(0);
    for (int64_t c = 0; c < s.combos; ++c) {
      const scalar_t b = bp[e * s.combos + c];
      const scalar_t* w = wp + wi[e * s.combos + c] * s.f_in * s.f_out + f;
      scalar_t part = scalar_t(0);
      for (int64_t i = 0; i < s.f_in; ++i) part += xe[i] * w[i * s.f_out];
      acc += b * part;
    }
    out[t] = acc;
  }
}

// grad_x[e, i] = sum_s basis[e, s] sum_f W_s[i, f] g[e, f]
template <typename scalar_t>
__global__ void grad_x_kernel(const scalar_t* __restrict__ gp, const scalar_t* __restrict__ wp,
                              const scalar_t* __restrict__ bp, const int64_t* __restrict__ wi, WeightingShape s,
                              scalar_t* __restrict__ gx) {
  const int64_t total = s.edges * s.f_in;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t e = t / s.f_in, i = t % s.f_in;
    const scalar_t* g = gp + e * s.f_out;
    scalar_t acc = scalar_t(0);
    for (int64_t c = 0; c < s.combos; ++c) {
      const scalar_t* w = wp + (wi[e * s.combos + c] * s.f_in + i) * s.f_out;
      scalar_t part = scalar_t(0);
      for (int64_t f = 0; f < s.f_out; ++f) part += w[f] * g[f];
      acc += bp[e * s.combos + c] * part;
    }
    gx[t] = acc;
  }
}

// grad_basis[e, s] = sum_{i, f} x[e, i] W_s[i, f] g[e, f], one warp per (e, s)
template <typename scalar_t>
__global__ void grad_basis_kernel(const scalar_t* __restrict__ gp, const scalar_t* __restrict__ xp,
                                  const scalar_t* __restrict__ wp, const int64_t* __restrict__ wi, WeightingShape s,
                                  scalar_t* __restrict__ gb) {
  const int64_t total = s.edges * s.combos;
  const int64_t pairs = s.f_in * s.f_out;
  for (int64_t t = global_warp(); t < total; t += warp_stride()) {
    const int64_t e = t / s.combos;
    const scalar_t* w = wp + wi[t] * pairs;
    const scalar_t* xe = xp + e * s.f_in;
    const scalar_t* g = gp + e * s.f_out;
    scalar_t acc = scalar_t(0);
    for (int64_t q = lane_id(); q < pairs; q += kWarp) acc += xe[q / s.f_out] * w[q] * g[q % s.f_out];
    acc = warp_sum(acc);
    if (lane_id() == 0) gb[t] = acc;
  }
}

// partial[p, k, i, f] = sum over the chunk's (e, s) with weight_index[e, s] = k of basis * x[e, i] g[e, f]
template <typename scalar_t>
__global__ void grad_weight_kernel(const scalar_t* __restrict__ gp, const scalar_t* __restrict__ xp,
                                   const scalar_t* __restrict__ bp, const int64_t* __restrict__ wi, WeightingShape s,
                                   int64_t chunks, scalar_t* __restrict__ partial) {
  const int64_t pairs = s.f_in * s.f_out;
  const int64_t total = chunks * pairs;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t p = t / pairs, q = t % pairs, i = q / s.f_out, f = q % s.f_out;
    scalar_t* acc = partial + p * s.kernels * pairs + q;
    const int64_t e0 = s.edges * p / chunks, e1 = s.edges * (p + 1) / chunks;
    for (int64_t e = e0; e < e1; ++e) {
      const scalar_t xg = xp[e * s.f_in + i] * gp[e * s.f_out + f];
      for (int64_t c = 0; c < s.combos; ++c) acc[wi[e * s.combos + c] * pairs] += bp[e * s.combos + c] * xg;
    }
  }
}

template <typename scalar_t>
__global__ void sum_partials_kernel(const scalar_t* __restrict__ partial, int64_t chunks, int64_t per,
                                    scalar_t* __restrict__ out) {
  for (int64_t j = global_thread(); j < per; j += thread_stride()) {
    scalar_t acc = scalar_t(0);
    for (int64_t p = 0; p < chunks; ++p) acc += partial[p * per + j];
    out[j] = acc;
  }
}

// Chunks of the weight gradient: fixed by the sizes alone, at most 1024, partials at most 2^26 elements.
int64_t weight_chunks(const WeightingShape& s) {
  const int64_t per = std::max<int64_t>(1, s.kernels * s.f_in * s.f_out);
  int64_t chunks = std::min<int64_t>(1024, (s.edges + 255) / 256);
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, (int64_t(1) << 26) / per));
  return std::max<int64_t>(1, chunks);
}

}  // namespace

std::tuple<Tensor, Tensor> spline_basis(Tensor pseudo, Tensor kernel_size, Tensor is_open_spline, int64_t degree) {
  CudaContext ctx(pseudo);
  const BasisParams s = check_basis_inputs(pseudo, kernel_size, is_open_spline, degree, "spline_basis", ctx);
  Tensor basis = torch::stable::new_empty(pseudo, {s.edges, s.combos});
  Tensor weight_index = torch::stable::new_empty(pseudo, {s.edges, s.combos}, ScalarType::Long);
  if (s.edges == 0) return {basis, weight_index};
  dispatch_float(pseudo.scalar_type(), "spline_basis", [&](auto tag) {
    using scalar_t = decltype(tag);
    basis_kernel<scalar_t><<<grid_threads(s.edges), kThreads, 0, ctx.stream()>>>(
        pseudo.const_data_ptr<scalar_t>(), s, basis.mutable_data_ptr<scalar_t>(),
        weight_index.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return {basis, weight_index};
}

Tensor spline_basis_backward(Tensor grad_basis, Tensor pseudo, Tensor kernel_size, Tensor is_open_spline,
                             int64_t degree) {
  CudaContext ctx(pseudo);
  const BasisParams s =
      check_basis_inputs(pseudo, kernel_size, is_open_spline, degree, "spline_basis_backward", ctx);
  check_cuda_contiguous(grad_basis, "grad_basis", ctx.device());
  STD_TORCH_CHECK(grad_basis.dim() == 2 && grad_basis.size(0) == s.edges && grad_basis.size(1) == s.combos &&
                      grad_basis.scalar_type() == pseudo.scalar_type(),
                  "gnn_kernels::spline_basis_backward: 'grad_basis' must be [E, S] of the dtype of 'pseudo'");
  Tensor grad_pseudo = torch::stable::new_empty(pseudo, {s.edges, s.dims});
  if (s.edges == 0) return grad_pseudo;
  dispatch_float(pseudo.scalar_type(), "spline_basis_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    basis_backward_kernel<scalar_t><<<grid_threads(s.edges), kThreads, 0, ctx.stream()>>>(
        grad_basis.const_data_ptr<scalar_t>(), pseudo.const_data_ptr<scalar_t>(), s,
        grad_pseudo.mutable_data_ptr<scalar_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return grad_pseudo;
}

Tensor spline_weighting(Tensor x, Tensor weight, Tensor basis, Tensor weight_index) {
  CudaContext ctx(x);
  const WeightingShape s = check_weighting_inputs(x, weight, basis, weight_index, "spline_weighting", ctx);
  Tensor out = torch::stable::new_empty(x, {s.edges, s.f_out});
  if (s.edges == 0 || s.f_out == 0) return out;
  dispatch_float(x.scalar_type(), "spline_weighting", [&](auto tag) {
    using scalar_t = decltype(tag);
    weighting_kernel<scalar_t><<<grid_threads(s.edges * s.f_out), kThreads, 0, ctx.stream()>>>(
        x.const_data_ptr<scalar_t>(), weight.const_data_ptr<scalar_t>(), basis.const_data_ptr<scalar_t>(),
        weight_index.const_data_ptr<int64_t>(), s, out.mutable_data_ptr<scalar_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<Tensor, Tensor, Tensor> spline_weighting_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor basis,
                                                             Tensor weight_index, bool need_x, bool need_weight,
                                                             bool need_basis) {
  CudaContext ctx(x);
  const WeightingShape s =
      check_weighting_inputs(x, weight, basis, weight_index, "spline_weighting_backward", ctx);
  check_cuda_contiguous(grad_out, "grad_out", ctx.device());
  STD_TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == s.edges && grad_out.size(1) == s.f_out &&
                      grad_out.scalar_type() == x.scalar_type(),
                  "gnn_kernels::spline_weighting_backward: 'grad_out' must be [E, F_out] of the dtype of 'x'");
  Tensor grad_x = torch::stable::new_zeros(x, {need_x ? s.edges : 0, s.f_in});
  Tensor grad_weight = torch::stable::new_zeros(weight, {need_weight ? s.kernels : 0, s.f_in, s.f_out});
  Tensor grad_basis = torch::stable::new_zeros(basis, {need_basis ? s.edges : 0, s.combos});
  if (s.edges == 0) return {grad_x, grad_weight, grad_basis};
  dispatch_float(x.scalar_type(), "spline_weighting_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* wp = weight.const_data_ptr<scalar_t>();
    const scalar_t* bp = basis.const_data_ptr<scalar_t>();
    const int64_t* wi = weight_index.const_data_ptr<int64_t>();
    if (need_x && s.f_in > 0) {
      grad_x_kernel<scalar_t><<<grid_threads(s.edges * s.f_in), kThreads, 0, ctx.stream()>>>(
          gp, wp, bp, wi, s, grad_x.mutable_data_ptr<scalar_t>());
      GNN_CUDA_LAUNCH_CHECK();
    }
    if (need_basis && s.combos > 0) {
      grad_basis_kernel<scalar_t><<<grid_warps(s.edges * s.combos), kThreads, 0, ctx.stream()>>>(
          gp, xp, wp, wi, s, grad_basis.mutable_data_ptr<scalar_t>());
      GNN_CUDA_LAUNCH_CHECK();
    }
    const int64_t per = s.kernels * s.f_in * s.f_out;
    if (need_weight && per > 0) {
      const int64_t chunks = weight_chunks(s);
      Tensor partial = torch::stable::new_zeros(weight, {chunks, s.kernels, s.f_in, s.f_out});
      grad_weight_kernel<scalar_t><<<grid_threads(chunks * s.f_in * s.f_out), kThreads, 0, ctx.stream()>>>(
          gp, xp, bp, wi, s, chunks, partial.mutable_data_ptr<scalar_t>());
      GNN_CUDA_LAUNCH_CHECK();
      sum_partials_kernel<scalar_t><<<grid_threads(per), kThreads, 0, ctx.stream()>>>(
          partial.const_data_ptr<scalar_t>(), chunks, per, grad_weight.mutable_data_ptr<scalar_t>());
      GNN_CUDA_LAUNCH_CHECK();
    }
  });
  return {grad_x, grad_weight, grad_basis};
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("spline_basis", TORCH_BOX(&gnn_kernels::gpu::spline_basis));
  m.impl("spline_basis_backward", TORCH_BOX(&gnn_kernels::gpu::spline_basis_backward));
  m.impl("spline_weighting", TORCH_BOX(&gnn_kernels::gpu::spline_weighting));
  m.impl("spline_weighting_backward", TORCH_BOX(&gnn_kernels::gpu::spline_weighting_backward));
}
