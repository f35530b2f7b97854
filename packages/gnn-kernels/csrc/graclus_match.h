// Graclus' greedy heavy-edge matching, shared by the CPU op (csrc/cpu/geometry.cpp)
// and the CUDA op (csrc/cuda/geometry.cu, on one device thread), so that both give
// the same clusters by construction.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GNN_HOST_DEVICE __host__ __device__
#else
#define GNN_HOST_DEVICE
#endif

namespace gnn_kernels {

// Visit the nodes in `order`; an unmatched node u pairs with its unmatched
// neighbour v != u of largest non-negative weight (the first in CSR order on a
// tie; NaN and negative weights never match), and both get the cluster
// min(u, v); a node left without a partner is its own cluster. `cluster`
// [num_nodes] must start at -1. Sequential by nature: every choice depends on
// all earlier ones.
template <typename scalar_t>
GNN_HOST_DEVICE inline void graclus_match(const int64_t* rp, const int64_t* cp, const scalar_t* wp,
                                          const int64_t* order, int64_t num_nodes, int64_t* cluster) {
  for (int64_t t = 0; t < num_nodes; ++t) {
    const int64_t u = order[t];
    if (cluster[u] >= 0) continue;
    int64_t mate = -1;
    scalar_t best = 0;
    for (int64_t e = rp[u]; e < rp[u + 1]; ++e) {
      const int64_t v = cp[e];
      if (v == u || cluster[v] >= 0 || !(wp[e] >= 0)) continue;
      if (mate < 0 || wp[e] > best) {
        mate = v;
        best = wp[e];
      }
    }
    if (mate < 0) {
      cluster[u] = u;
    } else {
      cluster[u] = cluster[mate] = u < mate ? u : mate;
    }
  }
}

}  // namespace gnn_kernels
