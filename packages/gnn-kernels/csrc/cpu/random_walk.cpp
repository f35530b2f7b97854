// Random walks on a CSR graph (gnn.core.ops.random_walk): uniform, or biased as
// in node2vec. The random numbers come from the caller, so the walks are those of
// the pure-torch reference for the same numbers; walks run in parallel.
#include "common.h"

#include "../random_walk.h"

namespace gnn_kernels {

// rowptr [N + 1], col [E], neighbors [E] (col sorted within rows; biased walks of
// more than one step), start [S], rand float64 [S, L] (uniform) or [S, L, 2]
// (biased) -> nodes [S, L + 1], edges [S, L].
std::tuple<Tensor, Tensor> random_walk(Tensor rowptr, Tensor col, std::optional<Tensor> neighbors, Tensor start,
                                       Tensor rand, double p, double q) {
  check_long(rowptr, "rowptr");
  const int64_t num_nodes = rowptr.numel() - 1;
  STD_TORCH_CHECK(num_nodes >= 0, "gnn_kernels::random_walk: 'rowptr' must not be empty");
  check_csr(rowptr, col, num_nodes);
  check_index(start, num_nodes, "start");
  check_cpu_contiguous(rand, "rand");
  STD_TORCH_CHECK(rand.scalar_type() == ScalarType::Double, "gnn_kernels::random_walk: 'rand' must be float64");
  const int64_t num_walks = start.numel();
  const bool biased = rand.dim() == 3;
  STD_TORCH_CHECK((rand.dim() == 2 || (biased && rand.size(2) == 2)) && rand.size(0) == num_walks,
                  "gnn_kernels::random_walk: 'rand' must have shape [S, L] or [S, L, 2] with S = ", num_walks,
                  " walks");
  const int64_t length = rand.size(1);
  STD_TORCH_CHECK(p > 0 && q > 0, "gnn_kernels::random_walk: 'p' and 'q' must be positive");
  const int64_t* nb = nullptr;
  if (biased && length > 1) {
    STD_TORCH_CHECK(neighbors.has_value(), "gnn_kernels::random_walk: biased walks need 'neighbors'");
    STD_TORCH_CHECK(neighbors->numel() == col.numel(), "gnn_kernels::random_walk: 'neighbors' must have ",
                    col.numel(), " entries (one per edge)");
    check_index(*neighbors, num_nodes, "neighbors");
    nb = neighbors->const_data_ptr<int64_t>();
  }
  Tensor nodes = torch::stable::new_empty(start, {num_walks, length + 1});
  Tensor edges = torch::stable::new_empty(start, {num_walks, length});
  const int64_t* rp = rowptr.const_data_ptr<int64_t>();
  const int64_t* cp = col.const_data_ptr<int64_t>();
  const int64_t* sp = start.const_data_ptr<int64_t>();
  const double* up = rand.const_data_ptr<double>();
  int64_t* np = nodes.mutable_data_ptr<int64_t>();
  int64_t* ep = edges.mutable_data_ptr<int64_t>();
  const int64_t draws = biased ? 2 * length : length;
  parallel_rows(num_walks, 256, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w)
      walk_one(rp, cp, nb, sp[w], up + w * draws, length, biased, p, q, np + w * (length + 1), ep + w * length);
  });
  return std::make_tuple(nodes, edges);
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def(
      "random_walk(Tensor rowptr, Tensor col, Tensor? neighbors, Tensor start, Tensor rand, float p, float q) -> "
      "(Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) { m.impl("random_walk", TORCH_BOX(&gnn_kernels::random_walk)); }
