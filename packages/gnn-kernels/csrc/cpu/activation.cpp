// The derivatives SiLU's second backward needs, in one pass (memory-lean dense layers of the
// molecular models):
//
//   silu_second_order(z, g, u) -> (g * d1, u * d1, u * g * d2)
//   d1 = silu'(z)  = s (1 + z (1 - s)),   d2 = silu''(z) = s (1 - s) (2 + z (1 - 2 s)),
//   s = sigmoid(z)
//
// (g: the gradient the first backward received, u: the gradient of its result g * d1). Torch
// ops need three sigmoid evaluations and about ten passes over [E, H] tensors for the same
// numbers. Not differentiable itself: the caller builds higher orders from torch ops.
#include "common.h"

namespace gnn_kernels {
namespace {

// sigmoid(z) from exp(-|z|) <= 1, branch-free (vectorizes)
inline float sigmoid_of(float z) {
  const float e = exp_nonpositive(z < 0.0f ? z : -z);
  const float r = 1.0f / (1.0f + e);
  return z < 0.0f ? e * r : r;
}

inline double sigmoid_of(double z) { return 1.0 / (1.0 + std::exp(-z)); }

}  // namespace

std::tuple<Tensor, Tensor, Tensor> silu_second_order(Tensor z, Tensor g, Tensor u) {
  check_cpu_contiguous(z, "z");
  check_cpu_contiguous(g, "g");
  check_cpu_contiguous(u, "u");
  STD_TORCH_CHECK(is_float_type(z.scalar_type()) && g.scalar_type() == z.scalar_type() &&
                      u.scalar_type() == z.scalar_type(),
                  "gnn_kernels::silu_second_order: 'z', 'g' and 'u' must share a float32/float64 dtype");
  const int64_t n = z.numel();
  STD_TORCH_CHECK(g.numel() == n && u.numel() == n, "gnn_kernels::silu_second_order: 'z', 'g' and 'u' must have "
                  "the same number of elements");
  Tensor g_z = torch::stable::new_empty(z, {n});
  Tensor grad_g = torch::stable::new_empty(z, {n});
  Tensor grad_z = torch::stable::new_empty(z, {n});
  dispatch_float(z.scalar_type(), "silu_second_order", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* zp = z.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* up = u.const_data_ptr<scalar_t>();
    scalar_t* o1 = g_z.mutable_data_ptr<scalar_t>();
    scalar_t* o2 = grad_g.mutable_data_ptr<scalar_t>();
    scalar_t* o3 = grad_z.mutable_data_ptr<scalar_t>();
    parallel_rows(n, 1 << 14, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t x = zp[i];
        const scalar_t s = sigmoid_of(x);
        const scalar_t one_minus = scalar_t(1) - s;
        const scalar_t d1 = s * (scalar_t(1) + x * one_minus);
        const scalar_t d2 = s * one_minus * (scalar_t(2) + x * (one_minus - s));
        o1[i] = gp[i] * d1;
        o2[i] = up[i] * d1;
        o3[i] = up[i] * gp[i] * d2;
      }
    });
  });
  return {g_z, grad_g, grad_z};
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("silu_second_order(Tensor z, Tensor g, Tensor u) -> (Tensor, Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("silu_second_order", TORCH_BOX(&gnn_kernels::silu_second_order));
}
