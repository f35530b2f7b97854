// One random walk (uniform, or biased as in node2vec), shared by the CPU op
// (csrc/cpu/random_walk.cpp) and the CUDA op (csrc/cuda/random_walk.cu, one
// thread per walk), so that both give the walks of gnn-core's pure-torch
// reference (gnn.core.ops.reference_walk) for the same random numbers.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GNN_HOST_DEVICE __host__ __device__
#else
#define GNN_HOST_DEVICE
#endif

namespace gnn_kernels {

// Whether the edge t -> x exists: binary search in t's targets `nb`, sorted within rows.
GNN_HOST_DEVICE inline bool walk_has_edge(const int64_t* rp, const int64_t* nb, int64_t t, int64_t x) {
  int64_t lo = rp[t], hi = rp[t + 1];
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (nb[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < rp[t + 1] && nb[lo] == x;
}

// Class of the edge c -> x for a walk that came from t: 0 (x == t, weight 1/p),
// 1 (t -> x exists, weight 1), 2 (weight 1/q).
GNN_HOST_DEVICE inline int walk_class(const int64_t* rp, const int64_t* nb, int64_t t, int64_t x) {
  if (x == t) return 0;
  return walk_has_edge(rp, nb, t, x) ? 1 : 2;
}

// `u` holds this walk's uniforms: [length] (uniform) or [length, 2] (biased: a class
// draw and a pick draw per step). Writes nodes [length + 1] and edges [length]
// (CSR positions, -1 where the walk stays at a node without out-edges). The draws are
// in [0, 1), so the casts below truncate non-negative products: floor.
//   uniform step: offset min(floor(u * deg), deg - 1);
//   biased step (not the first): class counts n_a, n_b, n_c; masses A = n_a / p,
//   B = n_b, C = n_c / q; s = u0 * ((A + B) + C); class c if s >= A + B and n_c > 0,
//   else b if s >= A and n_b > 0, else a; then the min(floor(u1 * n), n - 1)-th
//   edge of that class in CSR order.
GNN_HOST_DEVICE inline void walk_one(const int64_t* rp, const int64_t* col, const int64_t* nb, int64_t start,
                                     const double* u, int64_t length, bool biased, double p, double q,
                                     int64_t* nodes, int64_t* edges) {
  int64_t cur = start, prev = start;
  nodes[0] = start;
  for (int64_t step = 0; step < length; ++step) {
    const int64_t begin = rp[cur], deg = rp[cur + 1] - begin;
    int64_t next = cur, edge = -1;
    if (deg > 0) {
      int64_t off;
      if (!biased || step == 0) {
        const double draw = biased ? u[2 * step + 1] : u[step];
        off = static_cast<int64_t>(draw * static_cast<double>(deg));
        if (off > deg - 1) off = deg - 1;
      } else {
        int64_t count[3] = {0, 0, 0};
        for (int64_t e = begin; e < begin + deg; ++e) ++count[walk_class(rp, nb, prev, col[e])];
        const double mass_a = static_cast<double>(count[0]) / p;
        const double mass_b = static_cast<double>(count[1]);
        const double mass_c = static_cast<double>(count[2]) / q;
        const double s = u[2 * step] * ((mass_a + mass_b) + mass_c);
        int chosen = 0;
        if (s >= mass_a && count[1] > 0) chosen = 1;
        if (s >= mass_a + mass_b && count[2] > 0) chosen = 2;
        const int64_t n = count[chosen];
        int64_t j = static_cast<int64_t>(u[2 * step + 1] * static_cast<double>(n));
        if (j > n - 1) j = n - 1;
        off = 0;
        for (int64_t e = begin; e < begin + deg; ++e) {
          if (walk_class(rp, nb, prev, col[e]) == chosen) {
            if (j == 0) {
              off = e - begin;
              break;
            }
            --j;
          }
        }
      }
      edge = begin + off;
      next = col[edge];
    }
    edges[step] = edge;
    prev = cur;
    cur = next;
    nodes[step + 1] = cur;
  }
}

}  // namespace gnn_kernels
