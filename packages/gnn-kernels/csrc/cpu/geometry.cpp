// Geometric ops on point sets (torch stable ABI, CPU).
//
//   knn          for every query point y[i], the k points of x closest to it
//                (squared euclidean distance, or 1 - cosine similarity through a
//                key that orders like it), sorted by (distance, index); exact. A
//                kd-tree per example serves euclidean queries in up to kMaxTreeDim
//                dimensions, tiled exhaustive scans serve the rest.
//   radius       for every y[i], the points of x with squared distance < r * r; when
//                more than max_num_neighbors qualify, the ones with the smallest indices.
//   fps          farthest point sampling, per example, from a given start point.
//   graclus      greedy matching: visit nodes in the given order and pair each
//                unmatched node with its unmatched neighbour of largest weight.
//   grid_cluster voxel id of every point.
//
// Examples (mini-batch members) are given as offsets ptr [B + 1] into the sorted
// points; points only match within their example. Every input is checked
// before any parallel region: an error is raised, never a crash.
//
// Distances are sums of rounded squares added in order of the dimensions,
// without fused multiply-adds, so that they equal the pure-torch reference
// (gnn.core.ops.geometry) bit for bit and the neighbours, ties included, agree.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "common.h"
#include "../geometry_checks.h"
#include "../graclus_match.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace gnn_kernels {

namespace {

constexpr int64_t kLeafSize = 32;    // points per kd-tree leaf
constexpr int64_t kMaxTreeDim = 8;   // kd-trees pay off in low dimensions only
constexpr int64_t kQueryChunk = 256; // queries per work item
constexpr int64_t kMinOrdered = 2048; // examples with this many queries answer them in spatial order
constexpr int64_t kQueryTile = 16;    // exhaustive scans: queries sharing one tile of points
constexpr int64_t kPointTile = 256;   // exhaustive scans: points per tile

void check_points(const Tensor& t, const char* op, const char* name) {
  STD_TORCH_CHECK(t.is_cpu(), "gnn_kernels::", op, ": '", name, "' must be a CPU tensor");
  STD_TORCH_CHECK(t.is_contiguous(), "gnn_kernels::", op, ": '", name, "' must be contiguous");
  STD_TORCH_CHECK(t.dim() == 2, "gnn_kernels::", op, ": '", name, "' must be 2-D [num_points, D], got ",
                  t.dim(), " dimensions");
  STD_TORCH_CHECK(is_float_type(t.scalar_type()), "gnn_kernels::", op, ": '", name,
                  "' must be float32 or float64");
  STD_TORCH_CHECK(t.size(1) >= 1, "gnn_kernels::", op, ": '", name, "' must have at least one dimension per point");
}

// ptr: int64 [B + 1], monotonically non-decreasing from 0 to n.
void check_offsets(const Tensor& ptr, int64_t n, const char* op, const char* name) {
  check_long(ptr, name);
  const int64_t b = ptr.numel() - 1;
  STD_TORCH_CHECK(b >= 0, "gnn_kernels::", op, ": '", name, "' must not be empty");
  geometry::check_offset_values(ptr.const_data_ptr<int64_t>(), b, n, op, name);
}

template <typename scalar_t>
bool all_finite(const scalar_t* p, int64_t n) {
  std::atomic<bool> bad{false};
  parallel_rows(n, 1 << 16, [&](int64_t b, int64_t e) {
    bool local = false;
    for (int64_t k = b; k < e; ++k) local |= !std::isfinite(p[k]);
    if (local) bad.store(true, std::memory_order_relaxed);
  });
  return !bad.load();
}

template <typename scalar_t>
inline scalar_t sq_dist(const scalar_t* a, const scalar_t* b, int64_t dim) {
  scalar_t acc = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const scalar_t t = a[d] - b[d];
    acc += t * t;
  }
  return acc;
}

template <typename scalar_t>
inline scalar_t dot(const scalar_t* a, const scalar_t* b, int64_t dim) {
  scalar_t acc = 0;
  for (int64_t d = 0; d < dim; ++d) acc += a[d] * b[d];
  return acc;
}

// Cosine ranking key of a point with dot product `dot` with the query and squared
// norm `sq`: -(dot / sq) * |dot| = -cos|cos| |y|^2 orders the points of one query
// like 1 - cos, with correctly rounded operations only (no square root), so that it
// equals the pure-torch reference bit for bit. Zero vectors get 0 (similarity 0).
template <typename scalar_t>
inline scalar_t cosine_key(scalar_t dot, scalar_t sq) {
  return sq > 0 ? -(dot / sq) * std::fabs(dot) : scalar_t(0);
}

// The example holding row q of a sorted set with offsets ptr[0..num_examples].
inline int64_t example_of(const int64_t* ptr, int64_t num_examples, int64_t q) {
  return static_cast<int64_t>(std::upper_bound(ptr, ptr + num_examples + 1, q) - ptr) - 1;
}

// kd-tree over the points [begin, end) of a row-major [N, dim] array. Nodes
// split at the median of their widest dimension and keep their bounding box,
// whose distance to a query bounds the distance of every point inside from
// below (the rounded terms are monotone, so the bound holds in floating point
// as well), and the smallest point index inside (for radius' index order).
template <typename scalar_t>
struct KDTree {
  struct Node {
    int64_t lo, hi, left, right, min_index;
  };
  const scalar_t* pts = nullptr;
  int64_t dim = 0;
  std::vector<int64_t> perm;      // point index at each tree position
  std::vector<scalar_t> coords;   // the points in tree order (leaves scan contiguous memory)
  std::vector<Node> nodes;
  std::vector<scalar_t> box;  // per node: dim lower bounds, then dim upper bounds

  void build(const scalar_t* points, int64_t d, int64_t begin, int64_t end) {
    pts = points;
    dim = d;
    const int64_t n = end - begin;
    perm.resize(n);
    for (int64_t i = 0; i < n; ++i) perm[i] = begin + i;
    if (n == 0) return;
    nodes.reserve(2 * (n / kLeafSize) + 2);
    box.reserve((2 * (n / kLeafSize) + 2) * 2 * dim);
    make(0, n);
    coords.resize(n * dim);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < dim; ++d) coords[i * dim + d] = pts[perm[i] * dim + d];
  }

  bool empty() const { return nodes.empty(); }

  int64_t make(int64_t lo, int64_t hi) {
    const int64_t id = static_cast<int64_t>(nodes.size());
    nodes.push_back({lo, hi, -1, -1, 0});
    box.resize(box.size() + 2 * dim);
    int64_t split = 0;
    {
      scalar_t* lower = box.data() + id * 2 * dim;
      scalar_t* upper = lower + dim;
      int64_t min_index = perm[lo];
      for (int64_t d = 0; d < dim; ++d) lower[d] = upper[d] = pts[perm[lo] * dim + d];
      for (int64_t i = lo + 1; i < hi; ++i) {
        const int64_t p = perm[i];
        min_index = std::min(min_index, p);
        const scalar_t* row = pts + p * dim;
        for (int64_t d = 0; d < dim; ++d) {
          lower[d] = std::min(lower[d], row[d]);
          upper[d] = std::max(upper[d], row[d]);
        }
      }
      nodes[id].min_index = min_index;
      scalar_t widest = upper[0] - lower[0];
      for (int64_t d = 1; d < dim; ++d)
        if (upper[d] - lower[d] > widest) {
          widest = upper[d] - lower[d];
          split = d;
        }
    }
    if (hi - lo <= kLeafSize) return id;
    const int64_t mid = lo + (hi - lo) / 2;
    const scalar_t* base = pts;
    const int64_t stride = dim;
    std::nth_element(perm.begin() + lo, perm.begin() + mid, perm.begin() + hi, [&](int64_t a, int64_t b) {
      const scalar_t ca = base[a * stride + split], cb = base[b * stride + split];
      return ca < cb || (ca == cb && a < b);
    });
    const int64_t left = make(lo, mid);
    const int64_t right = make(mid, hi);
    nodes[id].left = left;
    nodes[id].right = right;
    return id;
  }

  // DIM > 0: the number of dimensions, known at compile time
  template <int DIM>
  scalar_t lower_bound(int64_t node, const scalar_t* q) const {
    const int64_t nd = DIM > 0 ? DIM : dim;
    const scalar_t* lower = box.data() + node * 2 * nd;
    const scalar_t* upper = lower + nd;
    scalar_t acc = 0;
    for (int64_t d = 0; d < nd; ++d) {
      scalar_t t = 0;
      if (q[d] < lower[d])
        t = lower[d] - q[d];
      else if (q[d] > upper[d])
        t = q[d] - upper[d];
      acc += t * t;
    }
    return acc;
  }
};

template <typename scalar_t>
std::vector<KDTree<scalar_t>> build_trees(const scalar_t* pts, int64_t dim, const int64_t* ptr,
                                          int64_t num_examples) {
  std::vector<KDTree<scalar_t>> trees(num_examples);
  parallel_rows(num_examples, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) trees[b].build(pts, dim, ptr[b], ptr[b + 1]);
  });
  return trees;
}

// The k best (distance, index) pairs seen so far: a sorted array for small k
// (insertion is cheapest there), a max-heap otherwise.
template <typename scalar_t>
struct KBest {
  struct Item {
    scalar_t d;
    int64_t i;
  };
  static bool less(const Item& a, const Item& b) { return a.d < b.d || (a.d == b.d && a.i < b.i); }
  static constexpr int64_t kSortedLimit = 64;
  int64_t k = 0;
  bool sorted_mode = true;
  std::vector<Item> items;

  void reset(int64_t k_) {
    k = k_;
    sorted_mode = k <= kSortedLimit;
    items.clear();
  }
  bool full() const { return static_cast<int64_t>(items.size()) >= k; }
  scalar_t worst() const {
    if (!full()) return std::numeric_limits<scalar_t>::infinity();
    return sorted_mode ? items.back().d : items.front().d;
  }
  void offer(scalar_t d, int64_t i) {
    const Item item{d, i};
    if (sorted_mode) {
      if (full()) {
        if (!less(item, items.back())) return;
        items.pop_back();
      }
      items.push_back(item);
      int64_t t = static_cast<int64_t>(items.size()) - 1;
      for (; t > 0 && less(item, items[t - 1]); --t) items[t] = items[t - 1];
      items[t] = item;
      return;
    }
    if (!full()) {
      items.push_back(item);
      std::push_heap(items.begin(), items.end(), less);
    } else if (less(item, items.front())) {
      std::pop_heap(items.begin(), items.end(), less);
      items.back() = item;
      std::push_heap(items.begin(), items.end(), less);
    }
  }
  // ascending (distance, index)
  void finish() {
    if (!sorted_mode) std::sort_heap(items.begin(), items.end(), less);
  }
};

template <int DIM, typename scalar_t>
void knn_tree_query(const KDTree<scalar_t>& tree, const scalar_t* q, KBest<scalar_t>& best,
                    std::vector<std::pair<scalar_t, int64_t>>& stack) {
  const int64_t dim = DIM > 0 ? DIM : tree.dim;
  stack.clear();
  stack.emplace_back(tree.template lower_bound<DIM>(0, q), 0);
  while (!stack.empty()) {
    const auto [bound, id] = stack.back();
    stack.pop_back();
    if (bound > best.worst()) continue;  // equal bounds may still hold a smaller index
    const auto& node = tree.nodes[id];
    if (node.left < 0) {
      const scalar_t* c = tree.coords.data() + node.lo * dim;
      for (int64_t t = node.lo; t < node.hi; ++t, c += dim) {
        const scalar_t d = sq_dist(c, q, dim);
        if (d <= best.worst()) best.offer(d, tree.perm[t]);
      }
      continue;
    }
    const scalar_t bl = tree.template lower_bound<DIM>(node.left, q);
    const scalar_t br = tree.template lower_bound<DIM>(node.right, q);
    if (bl <= br) {
      stack.emplace_back(br, node.right);
      stack.emplace_back(bl, node.left);
    } else {
      stack.emplace_back(bl, node.left);
      stack.emplace_back(br, node.right);
    }
  }
}

// Indices of the points of the tree with squared distance < r2, at most cap of
// them (the smallest indices), as a max-heap on the index.
template <int DIM, typename scalar_t>
void radius_tree_query(const KDTree<scalar_t>& tree, const scalar_t* q, scalar_t r2, int64_t cap,
                       std::vector<int64_t>& found, std::vector<int64_t>& stack) {
  const int64_t dim = DIM > 0 ? DIM : tree.dim;
  found.clear();
  stack.clear();
  stack.push_back(0);
  const auto full = [&]() { return static_cast<int64_t>(found.size()) >= cap; };
  while (!stack.empty()) {
    const int64_t id = stack.back();
    stack.pop_back();
    const auto& node = tree.nodes[id];
    if (tree.template lower_bound<DIM>(id, q) >= r2) continue;
    if (full() && node.min_index > found.front()) continue;
    if (node.left >= 0) {
      stack.push_back(node.right);
      stack.push_back(node.left);
      continue;
    }
    const scalar_t* c = tree.coords.data() + node.lo * dim;
    for (int64_t t = node.lo; t < node.hi; ++t, c += dim) {
      if (!(sq_dist(c, q, dim) < r2)) continue;
      const int64_t p = tree.perm[t];
      if (!full()) {
        found.push_back(p);
        std::push_heap(found.begin(), found.end());
      } else if (p < found.front()) {
        std::pop_heap(found.begin(), found.end());
        found.back() = p;
        std::push_heap(found.begin(), found.end());
      }
    }
  }
  std::sort_heap(found.begin(), found.end());
}

void check_pair(const Tensor& x, const Tensor& y, const Tensor& ptr_x, const Tensor& ptr_y, const char* op) {
  check_points(x, op, "x");
  check_points(y, op, "y");
  STD_TORCH_CHECK(x.scalar_type() == y.scalar_type(), "gnn_kernels::", op,
                  ": 'x' and 'y' must have the same dtype");
  STD_TORCH_CHECK(x.size(1) == y.size(1), "gnn_kernels::", op, ": 'x' has ", x.size(1),
                  " dimensions per point but 'y' has ", y.size(1));
  check_offsets(ptr_x, x.size(0), op, "ptr_x");
  check_offsets(ptr_y, y.size(0), op, "ptr_y");
  STD_TORCH_CHECK(ptr_x.numel() == ptr_y.numel(), "gnn_kernels::", op,
                  ": 'ptr_x' and 'ptr_y' must describe the same number of examples, got ",
                  ptr_x.numel() - 1, " and ", ptr_y.numel() - 1);
}

// The order in which to answer the queries [0, M): every example's queries stay
// in its range of positions, and the queries of big examples follow a Morton
// curve over the bounding box of the example's points, so that consecutive
// queries walk the same tree nodes (cache locality). Results do not depend on it.
template <typename scalar_t>
std::vector<int64_t> query_order(const scalar_t* yp, int64_t dim, const int64_t* py, int64_t num_examples,
                                 const std::vector<KDTree<scalar_t>>& trees) {
  const int64_t m = py[num_examples];
  std::vector<int64_t> order(m);
  std::vector<uint64_t> key(m, 0);
  const int64_t bits = std::min<int64_t>(21, 63 / std::max<int64_t>(dim, 1));
  const scalar_t top = static_cast<scalar_t>((uint64_t(1) << bits) - 1);
  const int64_t num_chunks = (m + kQueryChunk - 1) / kQueryChunk;
  parallel_rows(num_chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t q0 = c * kQueryChunk, q1 = std::min(m, q0 + kQueryChunk);
      int64_t b = example_of(py, num_examples, q0);
      for (int64_t q = q0; q < q1; ++q) {
        while (q >= py[b + 1]) ++b;
        order[q] = q;
        if (py[b + 1] - py[b] < kMinOrdered || trees[b].empty()) continue;
        const scalar_t* lower = trees[b].box.data();  // the root's box
        const scalar_t* upper = lower + dim;
        uint64_t k = 0;
        for (int64_t d = 0; d < dim; ++d) {
          const scalar_t width = upper[d] - lower[d];
          scalar_t t = width > 0 ? (yp[q * dim + d] - lower[d]) / width : scalar_t(0);
          t = std::min(std::max(t, scalar_t(0)), scalar_t(1));
          const uint64_t cell = static_cast<uint64_t>(t * top);
          for (int64_t bit = 0; bit < bits; ++bit) k |= ((cell >> bit) & 1u) << (bit * dim + d);
        }
        key[q] = k;
      }
    }
  });
  parallel_rows(num_examples, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      if (py[b + 1] - py[b] < kMinOrdered || trees[b].empty()) continue;
      std::sort(order.begin() + py[b], order.begin() + py[b + 1],
                [&](int64_t a, int64_t c) { return key[a] < key[c] || (key[a] == key[c] && a < c); });
    }
  });
  return order;
}

// [N, D] row-major points -> [D, N] (one row per dimension) for the exhaustive scans.
template <typename scalar_t>
std::vector<scalar_t> transposed(const scalar_t* p, int64_t n, int64_t dim) {
  std::vector<scalar_t> t(n * dim);
  parallel_rows(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t d = 0; d < dim; ++d) t[d * n + i] = p[i * dim + d];
  });
  return t;
}

template <typename scalar_t>
std::vector<scalar_t> squared_norms(const scalar_t* p, int64_t n, int64_t dim) {
  std::vector<scalar_t> out(n);
  parallel_rows(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = dot(p + i * dim, p + i * dim, dim);
  });
  return out;
}

// out[jj] = sq_dist(point j0 + jj, q) for jj < len, from the transposed points
// xt [D, N]: the same rounded terms added in the same order, vectorised across points.
template <typename scalar_t>
inline void tile_sq_dist(const scalar_t* xt, int64_t n, int64_t dim, int64_t j0, int64_t len,
                         const scalar_t* q, scalar_t* out) {
  for (int64_t jj = 0; jj < len; ++jj) out[jj] = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const scalar_t qd = q[d];
    const scalar_t* xr = xt + d * n + j0;
#pragma omp simd
    for (int64_t jj = 0; jj < len; ++jj) {
      const scalar_t t = xr[jj] - qd;
      out[jj] += t * t;
    }
  }
}

// out[jj] = dot(point j0 + jj, q), likewise.
template <typename scalar_t>
inline void tile_dot(const scalar_t* xt, int64_t n, int64_t dim, int64_t j0, int64_t len, const scalar_t* q,
                     scalar_t* out) {
  for (int64_t jj = 0; jj < len; ++jj) out[jj] = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const scalar_t qd = q[d];
    const scalar_t* xr = xt + d * n + j0;
#pragma omp simd
    for (int64_t jj = 0; jj < len; ++jj) out[jj] += xr[jj] * qd;
  }
}

}  // namespace

// x [N, D], y [M, D], ptr_x/ptr_y [B + 1] -> [2, M * k]: row 0 the query
// (index into y), row 1 its neighbours (index into x) sorted by (distance,
// index), -1 where the query's example holds fewer than k points.
Tensor knn(Tensor x, Tensor y, Tensor ptr_x, Tensor ptr_y, int64_t k, bool cosine) {
  check_pair(x, y, ptr_x, ptr_y, "knn");
  STD_TORCH_CHECK(k >= 1, "gnn_kernels::knn: 'k' must be positive, got ", k);
  const int64_t n = x.size(0), m = y.size(0), dim = y.size(1), num_examples = ptr_x.numel() - 1;
  STD_TORCH_CHECK(m == 0 || k <= std::numeric_limits<int64_t>::max() / m, "gnn_kernels::knn: 'k' is too large");
  Tensor out = torch::stable::new_empty(ptr_y, {2, m * k});
  int64_t* row = out.mutable_data_ptr<int64_t>();
  int64_t* col = row + m * k;
  const int64_t* px = ptr_x.const_data_ptr<int64_t>();
  const int64_t* py = ptr_y.const_data_ptr<int64_t>();
  dispatch_float(x.scalar_type(), "knn", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(xp, n * dim), "gnn_kernels::knn: 'x' holds NaN or infinite coordinates");
    STD_TORCH_CHECK(all_finite(yp, m * dim), "gnn_kernels::knn: 'y' holds NaN or infinite coordinates");
    const bool use_tree = !cosine && dim <= kMaxTreeDim;
    std::vector<KDTree<scalar_t>> trees;
    std::vector<int64_t> order;
    std::vector<scalar_t> xt, x_sq;
    if (use_tree) {
      trees = build_trees(xp, dim, px, num_examples);
      order = query_order(yp, dim, py, num_examples, trees);
    } else {
      xt = transposed(xp, n, dim);
      if (cosine) x_sq = squared_norms(xp, n, dim);
    }
    const int64_t num_chunks = (m + kQueryChunk - 1) / kQueryChunk;
    parallel_rows(num_chunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<KBest<scalar_t>> best(kQueryTile);
      std::vector<std::pair<scalar_t, int64_t>> stack;
      std::vector<scalar_t> dist(kPointTile);
      const auto emit = [&](int64_t q, KBest<scalar_t>& kb) {
        kb.finish();
        const int64_t found = static_cast<int64_t>(kb.items.size());
        for (int64_t t = 0; t < k; ++t) {
          row[q * k + t] = q;
          col[q * k + t] = t < found ? kb.items[t].i : -1;
        }
      };
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t p0 = c * kQueryChunk, p1 = std::min(m, p0 + kQueryChunk);
        int64_t b = example_of(py, num_examples, p0);
        if (use_tree) {
          for (int64_t pos = p0; pos < p1; ++pos) {
            while (pos >= py[b + 1]) ++b;
            const int64_t q = order[pos];
            const scalar_t* yq = yp + q * dim;
            best[0].reset(k);
            if (!trees[b].empty()) {
              if (dim == 2)
                knn_tree_query<2>(trees[b], yq, best[0], stack);
              else if (dim == 3)
                knn_tree_query<3>(trees[b], yq, best[0], stack);
              else
                knn_tree_query<0>(trees[b], yq, best[0], stack);
            }
            emit(q, best[0]);
          }
          continue;
        }
        // exhaustive: tiles of queries (of one example) against tiles of points, distances
        // of a point tile computed from the transposed points (vectorised across points)
        for (int64_t t0 = p0; t0 < p1;) {
          while (t0 >= py[b + 1]) ++b;
          const int64_t t1 = std::min({p1, py[b + 1], t0 + kQueryTile});
          for (int64_t q = t0; q < t1; ++q) best[q - t0].reset(k);
          for (int64_t j0 = px[b]; j0 < px[b + 1]; j0 += kPointTile) {
            const int64_t len = std::min(kPointTile, px[b + 1] - j0);
            for (int64_t q = t0; q < t1; ++q) {
              KBest<scalar_t>& kb = best[q - t0];
              const scalar_t* yq = yp + q * dim;
              if (cosine) {
                tile_dot(xt.data(), n, dim, j0, len, yq, dist.data());
                for (int64_t jj = 0; jj < len; ++jj) kb.offer(cosine_key(dist[jj], x_sq[j0 + jj]), j0 + jj);
              } else {
                tile_sq_dist(xt.data(), n, dim, j0, len, yq, dist.data());
                for (int64_t jj = 0; jj < len; ++jj)
                  if (dist[jj] <= kb.worst()) kb.offer(dist[jj], j0 + jj);
              }
            }
          }
          for (int64_t q = t0; q < t1; ++q) emit(q, best[q - t0]);
          t0 = t1;
        }
      }
    });
  });
  return out;
}

// x [N, D], y [M, D] -> [2, E]: pairs (query in y, point in x) with squared
// distance < r * r, sorted by query then point, at most max_num_neighbors per
// query (those with the smallest indices).
Tensor radius(Tensor x, Tensor y, Tensor ptr_x, Tensor ptr_y, double r, int64_t max_num_neighbors) {
  check_pair(x, y, ptr_x, ptr_y, "radius");
  STD_TORCH_CHECK(std::isfinite(r) && r >= 0, "gnn_kernels::radius: 'r' must be finite and non-negative, got ", r);
  STD_TORCH_CHECK(max_num_neighbors >= 0, "gnn_kernels::radius: 'max_num_neighbors' must be non-negative, got ",
                  max_num_neighbors);
  const int64_t m = y.size(0), n = x.size(0), dim = y.size(1), num_examples = ptr_x.numel() - 1;
  const int64_t* px = ptr_x.const_data_ptr<int64_t>();
  const int64_t* py = ptr_y.const_data_ptr<int64_t>();
  const int64_t num_chunks = (m + kQueryChunk - 1) / kQueryChunk;
  std::vector<std::vector<int64_t>> chunk_cols(num_chunks);
  std::vector<int64_t> counts(m, 0), chunk_of(m, 0), start_in_chunk(m, 0);
  dispatch_float(x.scalar_type(), "radius", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(xp, n * dim), "gnn_kernels::radius: 'x' holds NaN or infinite coordinates");
    STD_TORCH_CHECK(all_finite(yp, m * dim), "gnn_kernels::radius: 'y' holds NaN or infinite coordinates");
    const scalar_t r2 = static_cast<scalar_t>(r * r);
    const bool use_tree = dim <= kMaxTreeDim;
    std::vector<KDTree<scalar_t>> trees;
    std::vector<int64_t> order;
    std::vector<scalar_t> xt;
    if (use_tree) {
      trees = build_trees(xp, dim, px, num_examples);
      order = query_order(yp, dim, py, num_examples, trees);
    } else {
      xt = transposed(xp, n, dim);
    }
    parallel_rows(num_chunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<int64_t> found, stack;
      std::vector<scalar_t> dist(kPointTile);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t p0 = c * kQueryChunk, p1 = std::min(m, p0 + kQueryChunk);
        std::vector<int64_t>& cols = chunk_cols[c];
        int64_t b = example_of(py, num_examples, p0);
        for (int64_t pos = p0; pos < p1; ++pos) {
          while (pos >= py[b + 1]) ++b;
          const int64_t q = use_tree ? order[pos] : pos;
          chunk_of[q] = c;
          start_in_chunk[q] = static_cast<int64_t>(cols.size());
          if (max_num_neighbors == 0) continue;
          const scalar_t* yq = yp + q * dim;
          int64_t count = 0;
          if (use_tree) {
            if (trees[b].empty()) continue;
            if (dim == 2)
              radius_tree_query<2>(trees[b], yq, r2, max_num_neighbors, found, stack);
            else if (dim == 3)
              radius_tree_query<3>(trees[b], yq, r2, max_num_neighbors, found, stack);
            else
              radius_tree_query<0>(trees[b], yq, r2, max_num_neighbors, found, stack);
            cols.insert(cols.end(), found.begin(), found.end());
            count = static_cast<int64_t>(found.size());
          } else {  // points in index order, until max_num_neighbors are found
            for (int64_t j0 = px[b]; j0 < px[b + 1] && count < max_num_neighbors; j0 += kPointTile) {
              const int64_t len = std::min(kPointTile, px[b + 1] - j0);
              tile_sq_dist(xt.data(), n, dim, j0, len, yq, dist.data());
              for (int64_t jj = 0; jj < len && count < max_num_neighbors; ++jj)
                if (dist[jj] < r2) {
                  cols.push_back(j0 + jj);
                  ++count;
                }
            }
          }
          counts[q] = count;
        }
      }
    });
  });
  std::vector<int64_t> offset(m + 1, 0);
  for (int64_t q = 0; q < m; ++q) offset[q + 1] = offset[q] + counts[q];
  const int64_t total = offset[m];
  Tensor out = torch::stable::new_empty(ptr_y, {2, total});
  int64_t* row = out.mutable_data_ptr<int64_t>();
  int64_t* col = row + total;
  parallel_rows(m, 1024, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t* src = chunk_cols[chunk_of[q]].data() + start_in_chunk[q];
      std::copy(src, src + counts[q], col + offset[q]);
      std::fill(row + offset[q], row + offset[q + 1], q);
    }
  });
  return out;
}

// src [N, D], ptr [B + 1], num_samples [B], start [B] (offset of the first pick
// inside each example) -> [sum(num_samples)] global indices, per example in
// pick order. Each next pick is the first point of largest squared distance to
// the picks so far; picked points are never picked again.
Tensor fps(Tensor src, Tensor ptr, Tensor num_samples, Tensor start) {
  check_points(src, "fps", "src");
  const int64_t n = src.size(0), dim = src.size(1);
  check_offsets(ptr, n, "fps", "ptr");
  const int64_t num_examples = ptr.numel() - 1;
  check_long(num_samples, "num_samples");
  check_long(start, "start");
  STD_TORCH_CHECK(num_samples.numel() == num_examples && start.numel() == num_examples,
                  "gnn_kernels::fps: 'num_samples' and 'start' must have one entry per example (", num_examples,
                  ")");
  const int64_t* pp = ptr.const_data_ptr<int64_t>();
  const int64_t* np = num_samples.const_data_ptr<int64_t>();
  const int64_t* sp = start.const_data_ptr<int64_t>();
  const std::vector<int64_t> out_ptr = geometry::fps_output_offsets(pp, np, sp, num_examples);
  Tensor out = torch::stable::new_empty(ptr, {out_ptr[num_examples]});
  int64_t* op = out.mutable_data_ptr<int64_t>();
  dispatch_float(src.scalar_type(), "fps", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* xp = src.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(xp, n * dim), "gnn_kernels::fps: 'src' holds NaN or infinite coordinates");
    parallel_rows(num_examples, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t count = np[b];
        if (count == 0) continue;
        const int64_t base = pp[b], size = pp[b + 1] - pp[b];
        const scalar_t* pts = xp + base * dim;
        std::vector<scalar_t> dist(size, std::numeric_limits<scalar_t>::infinity());
        // big examples split each sweep over the thread pool (serial inside a parallel region)
        const int64_t num_parts = std::max<int64_t>(1, std::min<int64_t>(64, size / 8192));
        std::vector<scalar_t> part_best(num_parts);
        std::vector<int64_t> part_arg(num_parts);
        int64_t pick = sp[b];
        op[out_ptr[b]] = base + pick;
        dist[pick] = -1;
        const auto sweep = [&](int64_t p0, int64_t p1) {
          const scalar_t* last = pts + pick * dim;
          for (int64_t p = p0; p < p1; ++p) {
            const int64_t j0 = size * p / num_parts, j1 = size * (p + 1) / num_parts;
            scalar_t best = -2;
            int64_t arg = -1;
            for (int64_t j = j0; j < j1; ++j) {
              scalar_t dj = dist[j];
              if (dj >= 0) {
                const scalar_t d = sq_dist(pts + j * dim, last, dim);
                if (d < dj) dist[j] = dj = d;
              }
              if (dj > best) {
                best = dj;
                arg = j;
              }
            }
            part_best[p] = best;
            part_arg[p] = arg;
          }
        };
        for (int64_t i = 1; i < count; ++i) {
          if (num_parts == 1)
            sweep(0, 1);
          else
            parallel_rows(num_parts, 1, sweep);
          int64_t p_best = 0;
          for (int64_t p = 1; p < num_parts; ++p)
            if (part_best[p] > part_best[p_best]) p_best = p;
          pick = part_arg[p_best];
          op[out_ptr[b] + i] = base + pick;
          dist[pick] = -1;
        }
      }
    });
  });
  return out;
}

// rowptr [N + 1], col [E] (CSR of the directed edges u -> v), weight [E] >= 0
// to be eligible, perm [N] the visiting order -> cluster [N]: a matched pair
// (u, v) gets min(u, v), an unmatched node its own index. Ties in weight go to
// the first eligible edge of u; self-loops are ignored.
Tensor graclus(Tensor rowptr, Tensor col, Tensor weight, Tensor perm) {
  check_long(rowptr, "rowptr");
  const int64_t num_nodes = rowptr.numel() - 1;
  STD_TORCH_CHECK(num_nodes >= 0, "gnn_kernels::graclus: 'rowptr' must not be empty");
  check_csr(rowptr, col, num_nodes);
  check_cpu_contiguous(weight, "weight");
  STD_TORCH_CHECK(weight.dim() == 1 && weight.numel() == col.numel(), "gnn_kernels::graclus: 'weight' must have ",
                  col.numel(), " entries (one per edge)");
  check_index(perm, num_nodes, "perm");
  STD_TORCH_CHECK(perm.numel() == num_nodes, "gnn_kernels::graclus: 'perm' must have ", num_nodes, " entries");
  const int64_t* order = perm.const_data_ptr<int64_t>();
  {
    std::vector<char> seen(num_nodes, 0);
    for (int64_t i = 0; i < num_nodes; ++i) {
      STD_TORCH_CHECK(!seen[order[i]], "gnn_kernels::graclus: 'perm' must be a permutation of the nodes, ",
                      order[i], " occurs twice");
      seen[order[i]] = 1;
    }
  }
  Tensor out = torch::stable::new_empty(rowptr, {num_nodes});
  int64_t* cluster = out.mutable_data_ptr<int64_t>();
  std::fill(cluster, cluster + num_nodes, int64_t(-1));
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* cp = col.const_data_ptr<int64_t>();
  dispatch_float(weight.scalar_type(), "graclus", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* wp = weight.const_data_ptr<scalar_t>();
    graclus_match(rp, cp, wp, order, num_nodes, cluster);
  });
  return out;
}

// pos [N, D], size/start/end [D] -> cluster [N]:
//   sum_d trunc((pos[i, d] - start[d]) / size[d]) * prod_{d' < d} (trunc((end[d'] - start[d']) / size[d']) + 1)
Tensor grid_cluster(Tensor pos, Tensor size, Tensor start, Tensor end) {
  check_points(pos, "grid_cluster", "pos");
  const int64_t n = pos.size(0), dim = pos.size(1);
  const Tensor* vecs[3] = {&size, &start, &end};
  const char* names[3] = {"size", "start", "end"};
  for (int i = 0; i < 3; ++i) {
    check_cpu_contiguous(*vecs[i], names[i]);
    STD_TORCH_CHECK(vecs[i]->dim() == 1 && vecs[i]->numel() == dim, "gnn_kernels::grid_cluster: '", names[i],
                    "' must have shape [", dim, "]");
    STD_TORCH_CHECK(vecs[i]->scalar_type() == pos.scalar_type(), "gnn_kernels::grid_cluster: '", names[i],
                    "' must have the dtype of 'pos'");
  }
  Tensor out = torch::stable::new_empty(pos, {n}, ScalarType::Long);
  int64_t* op = out.mutable_data_ptr<int64_t>();
  dispatch_float(pos.scalar_type(), "grid_cluster", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* pp = pos.const_data_ptr<scalar_t>();
    const scalar_t* zp = size.const_data_ptr<scalar_t>();
    const scalar_t* sp = start.const_data_ptr<scalar_t>();
    const scalar_t* ep = end.const_data_ptr<scalar_t>();
    STD_TORCH_CHECK(all_finite(pp, n * dim), "gnn_kernels::grid_cluster: 'pos' holds NaN or infinite coordinates");
    const std::vector<int64_t> stride = geometry::grid_strides(zp, sp, ep, dim);
    parallel_rows(n, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        uint64_t id = 0;  // unsigned: wraps instead of overflowing for points far outside [start, end]
        for (int64_t d = 0; d < dim; ++d) {
          const scalar_t cell = (pp[i * dim + d] - sp[d]) / zp[d];
          const int64_t c = std::fabs(cell) < geometry::kGridLimit ? static_cast<int64_t>(cell)
                                                     : std::numeric_limits<int64_t>::min();
          id += static_cast<uint64_t>(c) * static_cast<uint64_t>(stride[d]);
        }
        op[i] = static_cast<int64_t>(id);
      }
    });
  });
  return out;
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("knn(Tensor x, Tensor y, Tensor ptr_x, Tensor ptr_y, int k, bool cosine) -> Tensor");
  m.def("radius(Tensor x, Tensor y, Tensor ptr_x, Tensor ptr_y, float r, int max_num_neighbors) -> Tensor");
  m.def("fps(Tensor src, Tensor ptr, Tensor num_samples, Tensor start) -> Tensor");
  m.def("graclus(Tensor rowptr, Tensor col, Tensor weight, Tensor perm) -> Tensor");
  m.def("grid_cluster(Tensor pos, Tensor size, Tensor start, Tensor end) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("knn", TORCH_BOX(&gnn_kernels::knn));
  m.impl("radius", TORCH_BOX(&gnn_kernels::radius));
  m.impl("fps", TORCH_BOX(&gnn_kernels::fps));
  m.impl("graclus", TORCH_BOX(&gnn_kernels::graclus));
  m.impl("grid_cluster", TORCH_BOX(&gnn_kernels::grid_cluster));
}
