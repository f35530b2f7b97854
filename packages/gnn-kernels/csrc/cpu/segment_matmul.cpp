// Grouped matmul by type (HeteroLinear, RGCN): out[ptr[t]:ptr[t+1]] = inputs[ptr[t]:ptr[t+1]] @ other[t].
//
// The loop over types runs here, in C++, and every block product is one
// `aten::mm.out` call written straight into its slice of the output, so
// there is no Python loop, no per-type temporary and no concatenation. The
// products themselves are computed by torch's BLAS, which is faster than any
// hand-written micro-kernel for the block sizes that occur in practice.
// Because only dispatcher calls touch the data, the same code serves every
// device whose `ptr` offsets are readable on the host.
#include "common.h"

#include <array>

namespace gnn_kernels {
namespace {

// out = a @ b, written into `out` (a view of the caller's result).
void mm_into(const Tensor& a, const Tensor& b, Tensor& out) {
  std::array<StableIValue, 3> stack{torch::stable::detail::from(a), torch::stable::detail::from(b),
                                    torch::stable::detail::from(out)};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher("aten::mm", "out", stack.data(), TORCH_ABI_VERSION));
}

// Validate the shapes and the offsets; returns the host copy of `ptr`'s values.
std::vector<int64_t> check_segment_matmul(const Tensor& inputs, const Tensor& ptr, const Tensor& other) {
  check_long(ptr, "ptr");
  STD_TORCH_CHECK(inputs.dim() == 2, "gnn_kernels::segment_matmul: 'inputs' must be 2-D [N, F_in]");
  STD_TORCH_CHECK(other.dim() == 3, "gnn_kernels::segment_matmul: 'other' must be 3-D [T, F_in, F_out]");
  STD_TORCH_CHECK(is_float_type(inputs.scalar_type()) && inputs.scalar_type() == other.scalar_type(),
                  "gnn_kernels::segment_matmul: 'inputs' and 'other' must share a float32/float64 dtype");
  const int64_t types = ptr.numel() - 1;
  STD_TORCH_CHECK(types >= 0, "gnn_kernels::segment_matmul: 'ptr' must not be empty");
  STD_TORCH_CHECK(other.size(0) == types, "gnn_kernels::segment_matmul: 'other' has ", other.size(0),
                  " matrices but 'ptr' describes ", types, " types");
  STD_TORCH_CHECK(other.size(1) == inputs.size(1), "gnn_kernels::segment_matmul: 'other' expects ",
                  other.size(1), " input features, 'inputs' has ", inputs.size(1));
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  std::vector<int64_t> offsets(p, p + types + 1);
  STD_TORCH_CHECK(offsets[0] == 0 && offsets[types] == inputs.size(0),
                  "gnn_kernels::segment_matmul: 'ptr' must start at 0 and end at ", inputs.size(0));
  for (int64_t t = 0; t < types; ++t)
    STD_TORCH_CHECK(offsets[t] <= offsets[t + 1], "gnn_kernels::segment_matmul: 'ptr' must be non-decreasing");
  return offsets;
}

}  // namespace

Tensor segment_matmul(Tensor inputs, Tensor ptr, Tensor other) {
  const std::vector<int64_t> offsets = check_segment_matmul(inputs, ptr, other);
  Tensor out = torch::stable::new_empty(inputs, {inputs.size(0), other.size(2)});
  for (size_t t = 0; t + 1 < offsets.size(); ++t) {
    const int64_t rows = offsets[t + 1] - offsets[t];
    if (rows == 0) continue;
    Tensor block = torch::stable::narrow(out, 0, offsets[t], rows);
    mm_into(torch::stable::narrow(inputs, 0, offsets[t], rows), torch::stable::select(other, 0, t), block);
  }
  return out;
}

// Gradients of segment_matmul: grad_inputs[seg t] = grad[seg t] @ other[t]^T and
// grad_other[t] = inputs[seg t]^T @ grad[seg t] (zero for a type without rows).
std::tuple<Tensor, Tensor> segment_matmul_backward(Tensor inputs, Tensor ptr, Tensor other, Tensor grad,
                                                   bool need_inputs, bool need_other) {
  const std::vector<int64_t> offsets = check_segment_matmul(inputs, ptr, other);
  STD_TORCH_CHECK(grad.dim() == 2 && grad.size(0) == inputs.size(0) && grad.size(1) == other.size(2),
                  "gnn_kernels::segment_matmul_backward: 'grad' must have shape [N, F_out]");
  Tensor grad_inputs = torch::stable::new_empty(inputs, {need_inputs ? inputs.size(0) : 0, inputs.size(1)});
  Tensor grad_other = torch::stable::new_zeros(other, {need_other ? other.size(0) : 0, other.size(1), other.size(2)});
  for (size_t t = 0; t + 1 < offsets.size(); ++t) {
    const int64_t rows = offsets[t + 1] - offsets[t];
    if (rows == 0) continue;
    Tensor grad_block = torch::stable::narrow(grad, 0, offsets[t], rows);
    if (need_inputs) {
      Tensor block = torch::stable::narrow(grad_inputs, 0, offsets[t], rows);
      mm_into(grad_block, torch::stable::transpose(torch::stable::select(other, 0, t), 0, 1), block);
    }
    if (need_other) {
      Tensor block = torch::stable::select(grad_other, 0, t);
      mm_into(torch::stable::transpose(torch::stable::narrow(inputs, 0, offsets[t], rows), 0, 1), grad_block,
              block);
    }
  }
  return {grad_inputs, grad_other};
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("segment_matmul(Tensor inputs, Tensor ptr, Tensor other) -> Tensor");
  m.def(
      "segment_matmul_backward(Tensor inputs, Tensor ptr, Tensor other, Tensor grad, bool need_inputs, "
      "bool need_other) -> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("segment_matmul", TORCH_BOX(&gnn_kernels::segment_matmul));
  m.impl("segment_matmul_backward", TORCH_BOX(&gnn_kernels::segment_matmul_backward));
}

#ifdef GNN_WITH_CUDA
// The same code serves CUDA tensors: it only issues dispatcher calls, and the
// caller passes `ptr` on the host.
STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("segment_matmul", TORCH_BOX(&gnn_kernels::segment_matmul));
  m.impl("segment_matmul_backward", TORCH_BOX(&gnn_kernels::segment_matmul_backward));
}
#endif
