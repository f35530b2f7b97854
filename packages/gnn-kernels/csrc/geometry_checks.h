// Host-side argument checks of the geometry ops, shared by the CPU ops
// (csrc/cpu/geometry.cpp) and the CUDA ops (csrc/cuda/geometry.cu, on host
// copies of the small arrays), so that both raise the same errors and derive
// the same offsets and strides.
#pragma once

#include <torch/headeronly/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace gnn_kernels {
namespace geometry {

// Cell coordinates at or beyond this magnitude do not fit an int64.
constexpr double kGridLimit = 9.0e18;

// p: the values of an offsets array [b + 1], which must run monotonically from 0 to n.
inline void check_offset_values(const int64_t* p, int64_t b, int64_t n, const char* op, const char* name) {
  STD_TORCH_CHECK(p[0] == 0 && p[b] == n, "gnn_kernels::", op, ": '", name, "' must run from 0 to ", n, ", got ",
                  p[0], " and ", p[b]);
  for (int64_t i = 0; i < b; ++i)
    STD_TORCH_CHECK(p[i + 1] >= p[i], "gnn_kernels::", op, ": '", name, "' must be monotonically non-decreasing");
}

// fps: per example b (points pp[b]..pp[b+1]) num_samples np[b] in [0, size] and, when sampling,
// a start sp[b] in [0, size). Returns the offsets [B + 1] of each example's samples in the output.
inline std::vector<int64_t> fps_output_offsets(const int64_t* pp, const int64_t* np, const int64_t* sp,
                                               int64_t num_examples) {
  std::vector<int64_t> out_ptr(num_examples + 1, 0);
  for (int64_t b = 0; b < num_examples; ++b) {
    const int64_t size = pp[b + 1] - pp[b];
    STD_TORCH_CHECK(np[b] >= 0 && np[b] <= size, "gnn_kernels::fps: 'num_samples' of example ", b,
                    " must lie in [0, ", size, "], got ", np[b]);
    STD_TORCH_CHECK(np[b] == 0 || (sp[b] >= 0 && sp[b] < size), "gnn_kernels::fps: 'start' of example ", b,
                    " must lie in [0, ", size, "), got ", sp[b]);
    out_ptr[b + 1] = out_ptr[b] + np[b];
  }
  return out_ptr;
}

// grid_cluster: checks size/start/end [dim] and returns the stride of each dimension in the
// voxel id, prod_{d' < d} (trunc((end[d'] - start[d']) / size[d']) + 1).
template <typename scalar_t>
std::vector<int64_t> grid_strides(const scalar_t* zp, const scalar_t* sp, const scalar_t* ep, int64_t dim) {
  std::vector<int64_t> stride(dim);
  int64_t acc = 1;
  for (int64_t d = 0; d < dim; ++d) {
    STD_TORCH_CHECK(std::isfinite(zp[d]) && zp[d] > 0, "gnn_kernels::grid_cluster: 'size' must be positive");
    STD_TORCH_CHECK(std::isfinite(sp[d]) && std::isfinite(ep[d]) && ep[d] >= sp[d],
                    "gnn_kernels::grid_cluster: 'start' and 'end' must be finite with end >= start");
    const scalar_t cells = (ep[d] - sp[d]) / zp[d];
    STD_TORCH_CHECK(cells < kGridLimit, "gnn_kernels::grid_cluster: too many voxels along dimension ", d);
    stride[d] = acc;
    STD_TORCH_CHECK(!__builtin_mul_overflow(acc, static_cast<int64_t>(cells) + 1, &acc),
                    "gnn_kernels::grid_cluster: the number of voxels overflows int64");
  }
  return stride;
}

}  // namespace geometry
}  // namespace gnn_kernels
