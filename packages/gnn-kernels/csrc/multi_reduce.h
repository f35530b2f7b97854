// Codes of the one-pass multi-reductions (multi_reduce / multi_reduce_backward), shared by
// the CPU and CUDA kernels and by the Python side (gnn.kernels.backend.MULTI_CODES).
//
// Each requested reduction is one int64 code: its kind (low 3 bits) plus kMultiSemiGrad
// when its semi-gradient is asked for (var/std: no gradient through the mean of squares;
// softmax: no gradient through the weights).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace gnn_kernels {

enum MultiKind : int64_t {
  kMultiSum = 0,
  kMultiMean = 1,
  kMultiMax = 2,
  kMultiMin = 3,
  kMultiVar = 4,
  kMultiStd = 5,
  kMultiSoftmax = 6,
};
constexpr int64_t kMultiKindMask = 7;
constexpr int64_t kMultiSemiGrad = 8;

// std = sqrt(max(var, kStdEps)), set to 0 where it is <= sqrt(kStdEps) (PyG's StdAggregation)
constexpr double kMultiStdEps = 1e-5;
// softmax weights e / (sum e + kMultiSoftmaxEps) (PyG's softmax)
constexpr double kMultiSoftmaxEps = 1e-16;

inline int64_t multi_kind(int64_t code) { return code & kMultiKindMask; }
inline bool multi_semi(int64_t code) { return (code & kMultiSemiGrad) != 0; }
inline bool valid_multi_code(int64_t code) {
  if (code < 0 || code > (kMultiKindMask | kMultiSemiGrad)) return false;
  const int64_t kind = multi_kind(code);
  if (kind > kMultiSoftmax) return false;
  return !multi_semi(code) || kind == kMultiVar || kind == kMultiStd || kind == kMultiSoftmax;
}

// What one call computes, read once from the codes.
struct MultiPlan {
  int64_t num = 0;       // R: number of reductions
  int64_t softmaxes = 0; // S: number of softmax reductions (rows of `temps`)
  bool sum = false;      // some reduction needs the group sum (sum, mean, var, std)
  bool sum_sq = false;   // ... the sum of squares (var, std)
  bool max = false, min = false;
  bool var_grad = false;  // some var/std (its backward needs the group mean)
  bool affine = false;    // the backward has a constant term per group (sum, mean, var, std)
  bool linear = false;    // ... and a term linear in x (var/std without semi_grad)
  int64_t minmax = 0;     // number of max/min reductions
  std::vector<int64_t> kind, slot;  // per reduction: its kind; its softmax row (or -1)
  std::vector<bool> semi;
  bool ok = true;
  // aux [G, rows, F]: rows 2 s and 2 s + 1 hold softmax s's shift m and denominator Z; with the
  // statistics the backward reads (stats), then the group mean (var/std) and, per max/min, the
  // number of elements equal to its result
  int64_t mean_row = -1;
  std::vector<int64_t> tie_row;  // per reduction: its tie-count row, or -1
  int64_t aux_rows(bool stats) const { return 2 * softmaxes + (stats ? (var_grad ? 1 : 0) + minmax : 0); }
};

inline MultiPlan make_multi_plan(const std::vector<int64_t>& codes) {
  MultiPlan p;
  p.num = static_cast<int64_t>(codes.size());
  for (int64_t code : codes) {
    if (!valid_multi_code(code)) p.ok = false;
    const int64_t kind = multi_kind(code);
    const bool semi = multi_semi(code);
    p.kind.push_back(kind);
    p.semi.push_back(semi);
    p.slot.push_back(kind == kMultiSoftmax ? p.softmaxes++ : -1);
    if (kind == kMultiSum || kind == kMultiMean || kind == kMultiVar || kind == kMultiStd) {
      p.sum = true;
      p.affine = true;
    }
    if (kind == kMultiVar || kind == kMultiStd) {
      p.sum_sq = true;
      p.var_grad = true;
      if (!semi) p.linear = true;
    }
    if (kind == kMultiMax) p.max = true;
    if (kind == kMultiMin) p.min = true;
    if (kind == kMultiMax || kind == kMultiMin) ++p.minmax;
  }
  int64_t row = 2 * p.softmaxes;
  if (p.var_grad) p.mean_row = row++;
  for (int64_t kind : p.kind) p.tie_row.push_back(kind == kMultiMax || kind == kMultiMin ? row++ : -1);
  return p;
}

}  // namespace gnn_kernels
