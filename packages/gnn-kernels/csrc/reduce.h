// Reduction codes of scatter_reduce/segment_reduce, shared by the CPU and CUDA
// kernels and by the Python side (gnn.kernels.backend._REDUCE_CODES).
#pragma once

#include <cstdint>

namespace gnn_kernels {

enum Reduce : int64_t { kSum = 0, kMean = 1, kMax = 2, kMin = 3, kMul = 4 };

constexpr bool valid_reduce(int64_t r) { return r >= kSum && r <= kMul; }

// max/min pick one element per output (an arg); the others combine all of them
constexpr bool is_minmax(int64_t r) { return r == kMax || r == kMin; }

}  // namespace gnn_kernels
