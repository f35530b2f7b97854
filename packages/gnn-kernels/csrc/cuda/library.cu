// Registration of gnn-kernels' CUDA ops for the schemas defined in
// csrc/cpu/library.cpp (stable ABI): same names, same signatures.
#include "common.cuh"

namespace gnn_kernels {
namespace gpu {

Tensor spmm_sum(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x, bool mean,
                std::optional<Tensor> t_rowptr, std::optional<Tensor> t_col, std::optional<Tensor> t_perm,
                std::optional<Tensor> x_self, double self_weight);
std::tuple<Tensor, Tensor> spmm_minmax(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x,
                                       bool is_max);
Tensor sddmm(Tensor rowptr, Tensor col, Tensor a, Tensor b);
std::tuple<Tensor, Tensor> attention_forward(Tensor rowptr, Tensor col, Tensor a_src, Tensor a_dst,
                                             std::optional<Tensor> a_edge, std::optional<Tensor> mask, Tensor x,
                                             double negative_slope, std::optional<Tensor> t_rowptr,
                                             std::optional<Tensor> t_col, std::optional<Tensor> t_perm);
std::tuple<Tensor, Tensor, Tensor, Tensor> attention_backward(
    Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor t_perm, Tensor a_src, Tensor a_dst,
    std::optional<Tensor> a_edge, Tensor x, Tensor alpha, Tensor grad_out, std::optional<Tensor> grad_alpha,
    double negative_slope);
std::tuple<Tensor, Tensor> scatter_reduce(Tensor src, Tensor index, int64_t dim_size, int64_t reduce);
std::tuple<Tensor, Tensor> segment_reduce(Tensor src, Tensor ptr, int64_t reduce);

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("spmm_sum", TORCH_BOX(&gnn_kernels::gpu::spmm_sum));
  m.impl("spmm_minmax", TORCH_BOX(&gnn_kernels::gpu::spmm_minmax));
  m.impl("sddmm", TORCH_BOX(&gnn_kernels::gpu::sddmm));
  m.impl("attention_forward", TORCH_BOX(&gnn_kernels::gpu::attention_forward));
  m.impl("attention_backward", TORCH_BOX(&gnn_kernels::gpu::attention_backward));
  m.impl("scatter_reduce", TORCH_BOX(&gnn_kernels::gpu::scatter_reduce));
  m.impl("segment_reduce", TORCH_BOX(&gnn_kernels::gpu::segment_reduce));
}
