// CUDA version of csrc/cpu/softmax.cpp: segment softmax over the rows of
// src [E, F], groups given by index [E] (same schemas, checks and formula):
//
//   out[k, f] = exp(src[k, f] - m[g, f]) / (sum_{l in g} exp(src[l, f] - m[g, f]) + 1e-16)
//   grad_src[k, f] = out[k, f] * (grad[k, f] - sum_{l in g} grad[l, f] * out[l, f])
//
// One thread per element of src, in passes: the group maximum with the
// compare-and-swap atomic_max_min of common.cuh (an all -inf group's maximum
// becomes 0, as on the CPU), then exp and an atomicAdd of the group sums,
// then the division. The backward adds grad * out per group with atomicAdd,
// then forms the result. The group sums are added in a run-dependent order,
// so their last bits (and the results') may differ between runs and from the
// CPU kernel, which adds in row order.
#include "common.cuh"

namespace gnn_kernels {
namespace gpu {

namespace {

template <typename scalar_t>
__global__ void fill_value_kernel(scalar_t* __restrict__ p, int64_t n, scalar_t value) {
  for (int64_t t = global_thread(); t < n; t += thread_stride()) p[t] = value;
}

template <typename scalar_t>
__global__ void group_max_kernel(const scalar_t* __restrict__ sp, const int64_t* __restrict__ ip,
                                 scalar_t* __restrict__ gmax, int64_t e, int64_t feats) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    atomic_max_min(gmax + ip[k] * feats + f, sp[t], true);
  }
}

// an all -inf (or empty) group: maximum 0; the sums start at 0
template <typename scalar_t>
__global__ void finish_max_kernel(scalar_t* __restrict__ gmax, scalar_t* __restrict__ gsum, int64_t n) {
  const scalar_t lowest = -std::numeric_limits<scalar_t>::infinity();
  for (int64_t t = global_thread(); t < n; t += thread_stride()) {
    if (gmax[t] == lowest) gmax[t] = scalar_t(0);
    gsum[t] = scalar_t(0);
  }
}

template <typename scalar_t>
__global__ void exp_sum_kernel(const scalar_t* __restrict__ sp, const int64_t* __restrict__ ip,
                               const scalar_t* __restrict__ gmax, scalar_t* __restrict__ gsum,
                               scalar_t* __restrict__ op, int64_t e, int64_t feats) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    const int64_t at = ip[k] * feats + f;
    const scalar_t v = device_exp(sp[t] - gmax[at]);
    op[t] = v;
    atomicAdd(gsum + at, v);
  }
}

template <typename scalar_t>
__global__ void normalize_kernel(const int64_t* __restrict__ ip, const scalar_t* __restrict__ gsum,
                                 scalar_t* __restrict__ op, int64_t e, int64_t feats) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    op[t] /= gsum[ip[k] * feats + f] + static_cast<scalar_t>(1e-16);
  }
}

template <typename scalar_t>
__global__ void group_dot_kernel(const scalar_t* __restrict__ outp, const scalar_t* __restrict__ gp,
                                 const int64_t* __restrict__ ip, scalar_t* __restrict__ gdot, int64_t e,
                                 int64_t feats) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    atomicAdd(gdot + ip[k] * feats + f, gp[t] * outp[t]);
  }
}

template <typename scalar_t>
__global__ void softmax_grad_kernel(const scalar_t* __restrict__ outp, const scalar_t* __restrict__ gp,
                                    const int64_t* __restrict__ ip, const scalar_t* __restrict__ gdot,
                                    scalar_t* __restrict__ rp, int64_t e, int64_t feats) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    rp[t] = outp[t] * (gp[t] - gdot[ip[k] * feats + f]);
  }
}

void check_softmax_inputs(const Tensor& src, const Tensor& index, int64_t dim_size, const char* name,
                          const CudaContext& ctx) {
  check_cuda_contiguous(src, name, ctx.device());
  STD_TORCH_CHECK(src.dim() == 2, "gnn_kernels::softmax: '", name, "' must be [E, F]");
  STD_TORCH_CHECK(index.numel() == src.size(0), "gnn_kernels::softmax: 'index' must have E entries");
  STD_TORCH_CHECK(dim_size >= 0, "gnn_kernels::softmax: 'dim_size' must be non-negative");
  check_index(index, dim_size, "index", ctx);
}

}  // namespace

Tensor softmax_forward(Tensor src, Tensor index, int64_t dim_size) {
  check_cuda_tensor(src, "src");
  CudaContext ctx(src);
  check_softmax_inputs(src, index, dim_size, "src", ctx);
  const int64_t e = src.size(0), feats = src.size(1);
  Tensor out = torch::stable::new_empty(src, {e, feats});
  const int64_t total = e * feats, stat_numel = dim_size * feats;
  if (total == 0) return out;
  Tensor stats = torch::stable::new_empty(src, {2, dim_size, feats});
  const int64_t* ip = index.const_data_ptr<int64_t>();
  dispatch_float(src.scalar_type(), "softmax_forward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* sp = src.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    scalar_t* gmax = stats.mutable_data_ptr<scalar_t>();
    scalar_t* gsum = gmax + stat_numel;
    cudaStream_t stream = ctx.stream();
    fill_value_kernel<scalar_t><<<grid_threads(stat_numel), kThreads, 0, stream>>>(
        gmax, stat_numel, -std::numeric_limits<scalar_t>::infinity());
    GNN_CUDA_LAUNCH_CHECK();
    group_max_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(sp, ip, gmax, e, feats);
    GNN_CUDA_LAUNCH_CHECK();
    finish_max_kernel<scalar_t><<<grid_threads(stat_numel), kThreads, 0, stream>>>(gmax, gsum, stat_numel);
    GNN_CUDA_LAUNCH_CHECK();
    exp_sum_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(sp, ip, gmax, gsum, op, e, feats);
    GNN_CUDA_LAUNCH_CHECK();
    normalize_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(ip, gsum, op, e, feats);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return out;
}

Tensor softmax_backward(Tensor out, Tensor grad, Tensor index, int64_t dim_size) {
  check_cuda_tensor(out, "out");
  CudaContext ctx(out);
  check_softmax_inputs(out, index, dim_size, "out", ctx);
  check_cuda_contiguous(grad, "grad", ctx.device());
  STD_TORCH_CHECK(grad.dim() == 2 && grad.size(0) == out.size(0) && grad.size(1) == out.size(1),
                  "gnn_kernels::softmax_backward: 'grad' must have the shape of 'out'");
  STD_TORCH_CHECK(grad.scalar_type() == out.scalar_type(), "gnn_kernels::softmax_backward: dtypes must match");
  const int64_t e = out.size(0), feats = out.size(1);
  Tensor result = torch::stable::new_empty(out, {e, feats});
  const int64_t total = e * feats;
  if (total == 0) return result;
  Tensor gdot = torch::stable::new_zeros(out, {dim_size, feats});
  const int64_t* ip = index.const_data_ptr<int64_t>();
  dispatch_float(out.scalar_type(), "softmax_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* outp = out.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    scalar_t* dp = gdot.mutable_data_ptr<scalar_t>();
    cudaStream_t stream = ctx.stream();
    group_dot_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(outp, gp, ip, dp, e, feats);
    GNN_CUDA_LAUNCH_CHECK();
    softmax_grad_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(
        outp, gp, ip, dp, result.mutable_data_ptr<scalar_t>(), e, feats);
    GNN_CUDA_LAUNCH_CHECK();
  });
  return result;
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("softmax_forward", TORCH_BOX(&gnn_kernels::gpu::softmax_forward));
  m.impl("softmax_backward", TORCH_BOX(&gnn_kernels::gpu::softmax_backward));
}
