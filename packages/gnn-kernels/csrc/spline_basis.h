// The B-spline pieces of SplineCNN's kernels, shared by the CPU and CUDA ops
// (csrc/cpu/spline.cpp, csrc/cuda/spline.cu) so that both compute them identically.
//
// Dimension d of a pseudo-coordinate u is scaled to v = u * (k_d - m * open_d); the
// m + 1 pieces that are non-zero at v sit at knot intervals floor(v) + s (s = 0..m),
// taken modulo k_d, and their values are the uniform B-spline pieces of degree m at
// t = v - floor(v) (Cox-de Boor on integer knots):
//   m = 1: 1 - t, t
//   m = 2: (1 - t)^2 / 2, 1/2 + t (1 - t), t^2 / 2
//   m = 3: (1 - t)^3 / 6, (3t^3 - 6t^2 + 4) / 6, (-3t^3 + 3t^2 + 3t + 1) / 6, t^3 / 6
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define GNN_HD __host__ __device__ __forceinline__
#else
#define GNN_HD inline
#endif

namespace gnn_kernels {
namespace spline {

// |floor(v)| beyond this is clamped before it becomes an index (gnn.core's INDEX_LIMIT), so
// that a huge or non-finite coordinate gives the same valid index on every backend.
constexpr double kIndexLimit = 1e15;

// Values (and derivatives in t) of the degree + 1 pieces at t.
template <typename T>
GNN_HD void pieces(T t, int64_t degree, T* value, T* slope) {
  const T u = T(1) - t;
  if (degree == 1) {
    value[0] = u;
    value[1] = t;
    slope[0] = T(-1);
    slope[1] = T(1);
  } else if (degree == 2) {
    value[0] = T(0.5) * u * u;
    value[1] = T(0.5) + t * (T(1) - t);
    value[2] = T(0.5) * t * t;
    slope[0] = -u;
    slope[1] = T(1) - T(2) * t;
    slope[2] = t;
  } else {
    const T t2 = t * t, t3 = t2 * t;
    value[0] = u * u * u / T(6);
    value[1] = (T(3) * t3 - T(6) * t2 + T(4)) / T(6);
    value[2] = (T(-3) * t3 + T(3) * t2 + T(3) * t + T(1)) / T(6);
    value[3] = t3 / T(6);
    slope[0] = T(-0.5) * u * u;
    slope[1] = T(1.5) * t2 - T(2) * t;
    slope[2] = T(-1.5) * t2 + t + T(0.5);
    slope[3] = T(0.5) * t2;
  }
}

// floor(v) mod k in [0, k) (k >= 1); NaN counts as 0, and |floor(v)| is clamped to kIndexLimit
// in the precision of T, as gnn.core's reference does.
template <typename T>
GNN_HD int64_t first_index(T floor_v, int64_t k) {
  T f = floor_v;
  const T limit = static_cast<T>(kIndexLimit);
  if (!(f == f)) f = T(0);
  if (f > limit) f = limit;
  if (f < -limit) f = -limit;
  int64_t r = static_cast<int64_t>(f) % k;
  return r < 0 ? r + k : r;
}

}  // namespace spline
}  // namespace gnn_kernels
