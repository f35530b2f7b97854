// Registration of gnn-kernels' CPU ops as torch custom ops (stable ABI), so
// that one binary serves every torch release with a compatible stable ABI.
#include "common.h"

namespace gnn_kernels {

Tensor spmm_sum(Tensor rowptr, Tensor col, std::optional<Tensor> value, Tensor x, bool mean, std::optional<Tensor> ,
                std::optional<Tensor> , std::optional<Tensor> , std::optional<Tensor> x_self, double self_weight);
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

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY(gnn_kernels, m) {
  m.def(
      "spmm_sum(Tensor rowptr, Tensor col, Tensor? value, Tensor x, bool mean, Tensor? t_rowptr, Tensor? t_col, "
      "Tensor? t_perm, Tensor? x_self=None, float self_weight=1.0) -> Tensor");
  m.def("spmm_minmax(Tensor rowptr, Tensor col, Tensor? value, Tensor x, bool is_max) -> (Tensor, Tensor)");
  m.def("sddmm(Tensor rowptr, Tensor col, Tensor a, Tensor b) -> Tensor");
  m.def(
      "attention_forward(Tensor rowptr, Tensor col, Tensor a_src, Tensor a_dst, Tensor? a_edge, Tensor? mask, "
      "Tensor x, float negative_slope, Tensor? t_rowptr, Tensor? t_col, Tensor? t_perm) -> (Tensor, Tensor)");
  m.def(
      "attention_backward(Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor t_perm, "
      "Tensor a_src, Tensor a_dst, Tensor? a_edge, Tensor x, Tensor alpha, Tensor grad_out, Tensor? grad_alpha, "
      "float negative_slope) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("scatter_reduce(Tensor src, Tensor index, int dim_size, int reduce) -> (Tensor, Tensor)");
  m.def("segment_reduce(Tensor src, Tensor ptr, int reduce) -> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("spmm_sum", TORCH_BOX(&gnn_kernels::spmm_sum));
  m.impl("spmm_minmax", TORCH_BOX(&gnn_kernels::spmm_minmax));
  m.impl("sddmm", TORCH_BOX(&gnn_kernels::sddmm));
  m.impl("attention_forward", TORCH_BOX(&gnn_kernels::attention_forward));
  m.impl("attention_backward", TORCH_BOX(&gnn_kernels::attention_backward));
  m.impl("scatter_reduce", TORCH_BOX(&gnn_kernels::scatter_reduce));
  m.impl("segment_reduce", TORCH_BOX(&gnn_kernels::segment_reduce));
}
