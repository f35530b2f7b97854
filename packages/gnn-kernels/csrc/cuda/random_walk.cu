// CUDA version of csrc/cpu/random_walk.cpp: the same op, checks and error
// messages, one thread per walk running the CPU's step rule (csrc/random_walk.h),
// so the walks equal the CPU's (and the pure-torch reference's) for the same
// random numbers. The step arithmetic is four float64 operations (a division, two
// additions, a product) and a floor of a product, none of which nvcc can contract
// into a fused multiply-add, so the draws compare exactly as on the CPU.
#include "common.cuh"
#include "../random_walk.h"

namespace gnn_kernels {
namespace gpu {

namespace {

__global__ void random_walk_kernel(const int64_t* __restrict__ rp, const int64_t* __restrict__ cp,
                                   const int64_t* __restrict__ nb, const int64_t* __restrict__ sp,
                                   const double* __restrict__ up, int64_t num_walks, int64_t length, bool biased,
                                   double p, double q, int64_t* __restrict__ np, int64_t* __restrict__ ep) {
  const int64_t draws = biased ? 2 * length : length;
  for (int64_t w = global_thread(); w < num_walks; w += thread_stride())
    walk_one(rp, cp, nb, sp[w], up + w * draws, length, biased, p, q, np + w * (length + 1), ep + w * length);
}

}  // namespace

std::tuple<Tensor, Tensor> random_walk(Tensor rowptr, Tensor col, std::optional<Tensor> neighbors, Tensor start,
                                       Tensor rand, double p, double q) {
  CudaContext ctx(rowptr);
  check_long(rowptr, "rowptr", ctx.device());
  const int64_t num_nodes = rowptr.numel() - 1;
  STD_TORCH_CHECK(num_nodes >= 0, "gnn_kernels::random_walk: 'rowptr' must not be empty");
  check_csr(rowptr, col, num_nodes, ctx);
  check_index(start, num_nodes, "start", ctx);
  check_cuda_contiguous(rand, "rand", ctx.device());
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
    check_index(*neighbors, num_nodes, "neighbors", ctx);
    nb = neighbors->const_data_ptr<int64_t>();
  }
  Tensor nodes = torch::stable::new_empty(start, {num_walks, length + 1});
  Tensor edges = torch::stable::new_empty(start, {num_walks, length});
  if (num_walks > 0) {
    random_walk_kernel<<<grid_threads(num_walks), kThreads, 0, ctx.stream()>>>(
        rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(), nb, start.const_data_ptr<int64_t>(),
        rand.const_data_ptr<double>(), num_walks, length, biased, p, q, nodes.mutable_data_ptr<int64_t>(),
        edges.mutable_data_ptr<int64_t>());
    GNN_CUDA_LAUNCH_CHECK();
  }
  return std::make_tuple(nodes, edges);
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) { m.impl("random_walk", TORCH_BOX(&gnn_kernels::gpu::random_walk)); }
