// CUDA version of csrc/cpu/gather_matmul.cpp: out[e] = inputs[index[e]] @ other[types[e]] (same
// schemas, checks, routes and rule for choosing them):
//
//   table   (an index is given and N * T <= E): table = inputs @ [other_0 | ... | other_{T-1}], then one
//           row copy per output row;
//   grouped (otherwise): the rows in type order (a stable device sort of `types`), one `aten::mm.out`
//           per type (the type offsets are copied to the host), the rows put back in place.
//
// Sums over several rows (the table's gradient, a node read by several edges) run over rows grouped
// by a stable sort, one thread per (group, feature) adding in edge order, so the results do not
// depend on scheduling (no atomics). The sorts and products are torch's own kernels, called
// through the dispatcher.
#include "common.cuh"

#include <array>
#include <vector>

namespace gnn_kernels {
namespace gpu {

namespace {

void mm_into(const Tensor& a, const Tensor& b, Tensor& out) {
  std::array<StableIValue, 3> stack{torch::stable::detail::from(a), torch::stable::detail::from(b),
                                    torch::stable::detail::from(out)};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher("aten::mm", "out", stack.data(), TORCH_ABI_VERSION));
}

Tensor mm(const Tensor& a, const Tensor& b) {
  Tensor out = torch::stable::new_empty(a, {a.size(0), b.size(1)});
  mm_into(a, b, out);
  return out;
}

// (sorted keys, positions) of a stable ascending sort of the int64 `keys` (aten::sort.stable).
std::tuple<Tensor, Tensor> sort_stable(const Tensor& keys) {
  std::array<StableIValue, 4> stack{torch::stable::detail::from(keys),
                                    torch::stable::detail::from(std::optional<bool>(true)),
                                    torch::stable::detail::from(int64_t(0)), torch::stable::detail::from(false)};
  STABLE_TORCH_ERROR_CODE_CHECK(
      torch_call_dispatcher("aten::sort", "stable", stack.data(), TORCH_ABI_VERSION));
  return {torch::stable::detail::to<Tensor>(stack[0]), torch::stable::detail::to<Tensor>(stack[1])};
}

__global__ void keys_kernel(const int64_t* __restrict__ types, const int64_t* __restrict__ index, int64_t n,
                            int64_t num_types, int64_t* __restrict__ key) {
  for (int64_t e = global_thread(); e < n; e += thread_stride()) key[e] = index[e] * num_types + types[e];
}

// rows[k] = index[order[k]]
__global__ void compose_kernel(const int64_t* __restrict__ index, const int64_t* __restrict__ order, int64_t n,
                               int64_t* __restrict__ rows) {
  for (int64_t k = global_thread(); k < n; k += thread_stride()) rows[k] = index[order[k]];
}

// ptr[g] = first position of a key >= g in the sorted keys (g = 0 .. groups).
__global__ void ptr_kernel(const int64_t* __restrict__ sorted, int64_t n, int64_t groups, int64_t* __restrict__ ptr) {
  for (int64_t g = global_thread(); g <= groups; g += thread_stride()) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted[mid] < g) lo = mid + 1;
      else hi = mid;
    }
    ptr[g] = lo;
  }
}

// dst[k, f] = src[rows[k], f]
template <typename scalar_t>
__global__ void gather_rows_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ rows, int64_t n,
                                   int64_t width, scalar_t* __restrict__ dst) {
  const int64_t total = n * width;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / width, f = t - k * width;
    dst[t] = src[rows[k] * width + f];
  }
}

// dst[rows[k], f] = src[k, f] (distinct rows)
template <typename scalar_t>
__global__ void scatter_rows_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ rows, int64_t n,
                                    int64_t width, scalar_t* __restrict__ dst) {
  const int64_t total = n * width;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / width, f = t - k * width;
    dst[rows[k] * width + f] = src[t];
  }
}

// dst[g, f] = sum of src[order[k], f] for k in [ptr[g], ptr[g + 1]), in order (0 for an empty group)
template <typename scalar_t>
__global__ void group_sum_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ order,
                                 const int64_t* __restrict__ ptr, int64_t groups, int64_t width,
                                 scalar_t* __restrict__ dst) {
  const int64_t total = groups * width;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t g = t / width, f = t - g * width;
    scalar_t acc = scalar_t(0);
    for (int64_t k = ptr[g]; k < ptr[g + 1]; ++k) acc += src[order[k] * width + f];
    dst[t] = acc;
  }
}

struct Sizes {
  int64_t rows, in, types, out, entries;
  bool indexed;
  bool table() const { return indexed && rows * types <= entries; }
};

Sizes check_inputs(const Tensor& inputs, const Tensor& types, const Tensor& other, const std::optional<Tensor>& index,
                   const CudaContext& ctx) {
  STD_TORCH_CHECK(inputs.dim() == 2, "gnn_kernels::gather_matmul: 'inputs' must be 2-D [N, F_in]");
  STD_TORCH_CHECK(other.dim() == 3, "gnn_kernels::gather_matmul: 'other' must be 3-D [T, F_in, F_out]");
  check_cuda_tensor(other, "other");
  STD_TORCH_CHECK(other.get_device_index() == ctx.device(), "gnn_kernels::gather_matmul: 'other' must be on cuda:",
                  ctx.device());
  STD_TORCH_CHECK(inputs.scalar_type() == other.scalar_type() &&
                      (inputs.scalar_type() == ScalarType::Float || inputs.scalar_type() == ScalarType::Double),
                  "gnn_kernels::gather_matmul: 'inputs' and 'other' must share a float32/float64 dtype");
  STD_TORCH_CHECK(other.size(1) == inputs.size(1), "gnn_kernels::gather_matmul: 'other' expects ", other.size(1),
                  " input features, 'inputs' has ", inputs.size(1));
  Sizes s{inputs.size(0), inputs.size(1), other.size(0), other.size(2), types.numel(), index.has_value()};
  check_index(types, s.types, "types", ctx);
  if (index.has_value()) {
    STD_TORCH_CHECK(index->numel() == s.entries, "gnn_kernels::gather_matmul: 'index' has ", index->numel(),
                    " entries but 'types' has ", s.entries);
    check_index(*index, s.rows, "index", ctx);
  } else {
    STD_TORCH_CHECK(s.entries == s.rows,
                    "gnn_kernels::gather_matmul: without 'index', 'types' needs one entry per row of 'inputs' (",
                    s.rows, "), got ", s.entries);
  }
  return s;
}

Tensor wide_weights(const Tensor& other) {
  Tensor t = torch::stable::contiguous(torch::stable::transpose(other, 0, 1));  // [K, T, M]
  return torch::stable::reshape(t, {other.size(1), other.size(0) * other.size(2)});
}

Tensor wide_weights_t(const Tensor& other) {
  Tensor t = torch::stable::contiguous(torch::stable::transpose(other, 1, 2));  // [T, M, K]
  return torch::stable::reshape(t, {other.size(0) * other.size(2), other.size(1)});
}

Tensor table_keys(const Tensor& types, const Tensor& index, int64_t num_types, const CudaContext& ctx) {
  const int64_t n = types.numel();
  Tensor key = torch::stable::new_empty(types, {n});
  keys_kernel<<<grid_threads(n), kThreads, 0, ctx.stream()>>>(types.const_data_ptr<int64_t>(),
                                                             index.const_data_ptr<int64_t>(), n, num_types,
                                                             key.mutable_data_ptr<int64_t>());
  GNN_CUDA_LAUNCH_CHECK();
  return key;
}

// (order, device ptr [groups + 1]) of a stable grouping of `keys` (values in [0, groups)).
std::tuple<Tensor, Tensor> group_by(const Tensor& keys, int64_t groups, const CudaContext& ctx) {
  Tensor sorted, order;
  std::tie(sorted, order) = sort_stable(keys);
  Tensor ptr = torch::stable::new_empty(keys, {groups + 1});
  ptr_kernel<<<grid_threads(groups + 1), kThreads, 0, ctx.stream()>>>(
      sorted.const_data_ptr<int64_t>(), sorted.numel(), groups, ptr.mutable_data_ptr<int64_t>());
  GNN_CUDA_LAUNCH_CHECK();
  return {order, ptr};
}

std::vector<int64_t> to_host(const Tensor& ptr, const CudaContext& ctx) {
  std::vector<int64_t> host(ptr.numel());
  STD_CUDA_CHECK(cudaMemcpyAsync(host.data(), ptr.const_data_ptr<int64_t>(), host.size() * sizeof(int64_t),
                                 cudaMemcpyDeviceToHost, ctx.stream()));
  STD_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return host;
}

// The row of `inputs` read at each position of the type order.
Tensor source_rows(const Tensor& order, const std::optional<Tensor>& index, const CudaContext& ctx) {
  if (!index.has_value()) return order;
  const int64_t n = order.numel();
  Tensor rows = torch::stable::new_empty(order, {n});
  compose_kernel<<<grid_threads(n), kThreads, 0, ctx.stream()>>>(index->const_data_ptr<int64_t>(),
                                                                order.const_data_ptr<int64_t>(), n,
                                                                rows.mutable_data_ptr<int64_t>());
  GNN_CUDA_LAUNCH_CHECK();
  return rows;
}

template <typename scalar_t>
void launch_gather(const Tensor& src, const Tensor& rows, int64_t width, Tensor& dst, const CudaContext& ctx) {
  const int64_t n = rows.numel();
  if (n * width == 0) return;
  gather_rows_kernel<scalar_t><<<grid_threads(n * width), kThreads, 0, ctx.stream()>>>(
      src.const_data_ptr<scalar_t>(), rows.const_data_ptr<int64_t>(), n, width, dst.mutable_data_ptr<scalar_t>());
  GNN_CUDA_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_scatter(const Tensor& src, const Tensor& rows, int64_t width, Tensor& dst, const CudaContext& ctx) {
  const int64_t n = rows.numel();
  if (n * width == 0) return;
  scatter_rows_kernel<scalar_t><<<grid_threads(n * width), kThreads, 0, ctx.stream()>>>(
      src.const_data_ptr<scalar_t>(), rows.const_data_ptr<int64_t>(), n, width, dst.mutable_data_ptr<scalar_t>());
  GNN_CUDA_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_group_sum(const Tensor& src, const Tensor& order, const Tensor& ptr, int64_t width, Tensor& dst,
                      const CudaContext& ctx) {
  const int64_t groups = ptr.numel() - 1;
  if (groups * width == 0) return;
  group_sum_kernel<scalar_t><<<grid_threads(groups * width), kThreads, 0, ctx.stream()>>>(
      src.const_data_ptr<scalar_t>(), order.const_data_ptr<int64_t>(), ptr.const_data_ptr<int64_t>(), groups, width,
      dst.mutable_data_ptr<scalar_t>());
  GNN_CUDA_LAUNCH_CHECK();
}

}  // namespace

Tensor gather_matmul(Tensor inputs, Tensor types, Tensor other, std::optional<Tensor> index) {
  check_cuda_tensor(inputs, "inputs");
  CudaContext ctx(inputs);
  const Sizes s = check_inputs(inputs, types, other, index, ctx);
  Tensor out = torch::stable::new_empty(inputs, {s.entries, s.out});
  if (s.entries == 0 || s.out == 0) return out;
  if (s.table()) {
    Tensor table = mm(inputs, wide_weights(other));  // [N, T * M]
    Tensor key = table_keys(types, *index, s.types, ctx);
    dispatch_float(inputs.scalar_type(), "gather_matmul", [&](auto tag) {
      using scalar_t = decltype(tag);
      launch_gather<scalar_t>(table, key, s.out, out, ctx);
    });
    return out;
  }
  Tensor order, dptr;  // (no structured bindings: the lambdas below capture them)
  std::tie(order, dptr) = group_by(types, s.types, ctx);
  const std::vector<int64_t> ptr = to_host(dptr, ctx);
  Tensor rows = source_rows(order, index, ctx);
  Tensor x = torch::stable::contiguous(inputs);
  Tensor sorted_in = torch::stable::new_empty(inputs, {s.entries, s.in});
  Tensor sorted_out = torch::stable::new_empty(inputs, {s.entries, s.out});
  dispatch_float(inputs.scalar_type(), "gather_matmul", [&](auto tag) {
    using scalar_t = decltype(tag);
    launch_gather<scalar_t>(x, rows, s.in, sorted_in, ctx);
  });
  for (int64_t t = 0; t < s.types; ++t) {
    const int64_t len = ptr[t + 1] - ptr[t];
    if (len == 0) continue;
    Tensor block = torch::stable::narrow(sorted_out, 0, ptr[t], len);
    mm_into(torch::stable::narrow(sorted_in, 0, ptr[t], len), torch::stable::select(other, 0, t), block);
  }
  dispatch_float(inputs.scalar_type(), "gather_matmul", [&](auto tag) {
    using scalar_t = decltype(tag);
    launch_scatter<scalar_t>(sorted_out, order, s.out, out, ctx);
  });
  return out;
}

std::tuple<Tensor, Tensor> gather_matmul_backward(Tensor inputs, Tensor types, Tensor other,
                                                  std::optional<Tensor> index, Tensor grad, bool need_inputs,
                                                  bool need_other) {
  check_cuda_tensor(inputs, "inputs");
  CudaContext ctx(inputs);
  const Sizes s = check_inputs(inputs, types, other, index, ctx);
  check_cuda_tensor(grad, "grad");
  STD_TORCH_CHECK(grad.dim() == 2 && grad.size(0) == s.entries && grad.size(1) == s.out,
                  "gnn_kernels::gather_matmul_backward: 'grad' must have shape [", s.entries, ", ", s.out, "]");
  Tensor g = torch::stable::contiguous(grad);
  Tensor grad_inputs = torch::stable::new_zeros(inputs, {need_inputs ? s.rows : 0, s.in});
  Tensor grad_other = torch::stable::new_zeros(other, {need_other ? s.types : 0, s.in, s.out});
  if (s.entries == 0 || s.out == 0 || !(need_inputs || need_other)) return {grad_inputs, grad_other};

  if (s.table()) {
    Tensor key = table_keys(types, *index, s.types, ctx);
    Tensor order, ptr;
    std::tie(order, ptr) = group_by(key, s.rows * s.types, ctx);
    Tensor grad_table = torch::stable::new_empty(inputs, {s.rows, s.types * s.out});
    dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
      using scalar_t = decltype(tag);
      launch_group_sum<scalar_t>(g, order, ptr, s.out, grad_table, ctx);
    });
    if (need_inputs) mm_into(grad_table, wide_weights_t(other), grad_inputs);
    if (need_other) {
      Tensor wide = mm(torch::stable::transpose(inputs, 0, 1), grad_table);  // [K, T * M]
      grad_other = torch::stable::contiguous(
          torch::stable::transpose(torch::stable::view(wide, {s.in, s.types, s.out}), 0, 1));
    }
    return {grad_inputs, grad_other};
  }

  Tensor order, dptr;
  std::tie(order, dptr) = group_by(types, s.types, ctx);
  const std::vector<int64_t> ptr = to_host(dptr, ctx);
  Tensor rows = source_rows(order, index, ctx);
  Tensor sorted_grad = torch::stable::new_empty(grad, {s.entries, s.out});
  dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    launch_gather<scalar_t>(g, order, s.out, sorted_grad, ctx);
  });
  if (need_other) {
    Tensor x = torch::stable::contiguous(inputs);
    Tensor sorted_in = torch::stable::new_empty(inputs, {s.entries, s.in});
    dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
      using scalar_t = decltype(tag);
      launch_gather<scalar_t>(x, rows, s.in, sorted_in, ctx);
    });
    for (int64_t t = 0; t < s.types; ++t) {
      const int64_t len = ptr[t + 1] - ptr[t];
      if (len == 0) continue;
      Tensor block = torch::stable::select(grad_other, 0, t);
      mm_into(torch::stable::transpose(torch::stable::narrow(sorted_in, 0, ptr[t], len), 0, 1),
              torch::stable::narrow(sorted_grad, 0, ptr[t], len), block);
    }
  }
  if (need_inputs) {
    Tensor sorted_gin = torch::stable::new_empty(inputs, {s.entries, s.in});
    for (int64_t t = 0; t < s.types; ++t) {
      const int64_t len = ptr[t + 1] - ptr[t];
      if (len == 0) continue;
      Tensor block = torch::stable::narrow(sorted_gin, 0, ptr[t], len);
      mm_into(torch::stable::narrow(sorted_grad, 0, ptr[t], len),
              torch::stable::transpose(torch::stable::select(other, 0, t), 0, 1), block);
    }
    if (!index.has_value()) {  // each row of `inputs` is read once
      dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
        using scalar_t = decltype(tag);
        launch_scatter<scalar_t>(sorted_gin, order, s.in, grad_inputs, ctx);
      });
    } else {  // a row read by several positions: their sum, grouped by a stable sort of the rows
      Tensor row_order, row_ptr;
      std::tie(row_order, row_ptr) = group_by(rows, s.rows, ctx);
      dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
        using scalar_t = decltype(tag);
        launch_group_sum<scalar_t>(sorted_gin, row_order, row_ptr, s.in, grad_inputs, ctx);
      });
    }
  }
  return {grad_inputs, grad_other};
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("gather_matmul", TORCH_BOX(&gnn_kernels::gpu::gather_matmul));
  m.impl("gather_matmul_backward", TORCH_BOX(&gnn_kernels::gpu::gather_matmul_backward));
}
