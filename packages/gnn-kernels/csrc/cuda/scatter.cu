// CUDA versions of csrc/cpu/scatter.cpp: group reductions of rows of src [E, F].
//   scatter_reduce: groups given by an unsorted index;
//   segment_reduce: groups given by sorted offsets ptr.
// reduce (csrc/reduce.h): sum, mean, max, min, mul. For max/min (segment_reduce) the arg tensor
// holds the winning row (or -1 for an empty group, whose output is 0); an empty group's product is 1.
//
// scatter_reduce (one thread per element of src):
//   sum/mean: atomicAdd into out (the summation order, hence the last bits of
//             the result, may vary from run to run; the CPU kernel is
//             deterministic); mean counts the rows of each group with a
//             64-bit atomicAdd and divides afterwards, as on the CPU.
//   mul:      an atomic multiply (compare-and-swap loop) into out, which starts
//             at 1; like sum, the order of the factors may vary between runs.
//   max/min:  three passes. (1) a compare-and-swap loop stores the maximum
//             (minimum) of each output element, (2) every row whose value
//             equals it writes its row number with a 64-bit atomicMin, (3) the
//             output takes the value of the winning row, an empty group gets
//             0 and arg -1.
//   Tie rule: among rows with the same extreme value the smallest row number
//   wins, and the output is that row's value (bitwise, so of two zeros of
//   different sign the first row's). This is exactly the CPU rule (rows in
//   increasing order, strict comparison). Like on the CPU, NaN never wins and
//   a group whose rows are all -inf (max) or +inf (min) counts as empty.
//
// segment_reduce: one thread per (segment, feature) runs the CPU loop over
// the segment's rows in order, so it is deterministic and matches the CPU.
#include "common.cuh"
#include "../reduce.h"

namespace gnn_kernels {
namespace gpu {

namespace {

template <typename scalar_t>
scalar_t init_value(int64_t reduce) {
  if (reduce == kMax) return -std::numeric_limits<scalar_t>::infinity();
  if (reduce == kMin) return std::numeric_limits<scalar_t>::infinity();
  return reduce == kMul ? scalar_t(1) : scalar_t(0);
}

template <typename scalar_t>
__global__ void fill_kernel(scalar_t* __restrict__ op, int64_t* __restrict__ ap, int64_t n, scalar_t init,
                            int64_t arg_init) {
  for (int64_t t = global_thread(); t < n; t += thread_stride()) {
    op[t] = init;
    if (ap != nullptr) ap[t] = arg_init;
  }
}

// pass 1: sum/mean atomically add, mul multiplies, max/min store the extreme value; mean also counts rows per group
template <typename scalar_t>
__global__ void scatter_accumulate_kernel(const scalar_t* __restrict__ sp, const int64_t* __restrict__ ip,
                                          scalar_t* __restrict__ op, int64_t* __restrict__ count, int64_t e,
                                          int64_t feats, int64_t reduce) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    const int64_t g = ip[k];
    if (reduce == kSum || reduce == kMean) {
      atomicAdd(op + g * feats + f, sp[t]);
      if (count != nullptr && f == 0) atomicAdd(reinterpret_cast<unsigned long long*>(count + g), 1ull);
    } else if (reduce == kMul) {
      atomic_mul(op + g * feats + f, sp[t]);
    } else {
      atomic_max_min(op + g * feats + f, sp[t], reduce == kMax);
    }
  }
}

// pass 2 of max/min: the smallest row holding the stored extreme value
template <typename scalar_t>
__global__ void scatter_arg_kernel(const scalar_t* __restrict__ sp, const int64_t* __restrict__ ip,
                                   const scalar_t* __restrict__ op, int64_t* __restrict__ ap, int64_t e,
                                   int64_t feats, scalar_t init) {
  const int64_t total = e * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t k = t / feats, f = t - k * feats;
    const int64_t at = ip[k] * feats + f;
    const scalar_t s = sp[t];
    if (s != init && s == op[at]) atomicMin(reinterpret_cast<long long*>(ap + at), static_cast<long long>(k));
  }
}

// pass 3 of max/min: the winner's value, or 0 and -1 for a group without one (arg still `e`)
template <typename scalar_t>
__global__ void scatter_finish_kernel(const scalar_t* __restrict__ sp, scalar_t* __restrict__ op,
                                      int64_t* __restrict__ ap, int64_t dim_size, int64_t feats, int64_t e) {
  const int64_t total = dim_size * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t f = t % feats;
    const int64_t a = ap[t];
    if (a >= e) {
      ap[t] = -1;
      op[t] = scalar_t(0);
    } else {
      op[t] = sp[a * feats + f];
    }
  }
}

template <typename scalar_t>
__global__ void scatter_mean_kernel(scalar_t* __restrict__ op, const int64_t* __restrict__ count,
                                    int64_t dim_size, int64_t feats) {
  const int64_t total = dim_size * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t c = count[t / feats];
    if (c > 1) op[t] *= scalar_t(1) / scalar_t(c);
  }
}

template <typename scalar_t>
__global__ void segment_reduce_kernel(const scalar_t* __restrict__ sp, const int64_t* __restrict__ pp,
                                      scalar_t* __restrict__ op, int64_t* __restrict__ ap, int64_t m,
                                      int64_t feats, int64_t reduce, scalar_t init) {
  const int64_t total = m * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t g = t / feats, f = t - g * feats;
    const int64_t lo = pp[g], hi = pp[g + 1];
    scalar_t acc = init;
    int64_t arg = -1;
    for (int64_t k = lo; k < hi; ++k) {
      const scalar_t s = sp[k * feats + f];
      if (reduce == kSum || reduce == kMean) {
        acc += s;
      } else if (reduce == kMul) {
        acc *= s;
      } else if (reduce == kMax ? s > acc : s < acc) {
        acc = s;
        arg = k;
      }
    }
    if (reduce == kMean && hi - lo > 1) acc *= scalar_t(1) / scalar_t(hi - lo);
    if (ap != nullptr) {
      if (arg < 0) acc = scalar_t(0);
      ap[t] = arg;
    }
    op[t] = acc;
  }
}

}  // namespace

std::tuple<Tensor, Tensor> scatter_reduce(Tensor src, Tensor index, int64_t dim_size, int64_t reduce) {
  check_cuda_tensor(src, "src");
  CudaContext ctx(src);
  check_cuda_contiguous(src, "src", ctx.device());
  STD_TORCH_CHECK(src.dim() == 2, "gnn_kernels::scatter_reduce: 'src' must be [E, F]");
  STD_TORCH_CHECK(index.numel() == src.size(0), "gnn_kernels::scatter_reduce: 'index' must have E entries");
  STD_TORCH_CHECK(valid_reduce(reduce), "gnn_kernels::scatter_reduce: unknown reduce ", reduce);
  STD_TORCH_CHECK(dim_size >= 0, "gnn_kernels::scatter_reduce: 'dim_size' must be non-negative");
  check_index(index, dim_size, "index", ctx);
  const int64_t e = src.size(0), feats = src.size(1);
  const bool arg_needed = is_minmax(reduce);
  Tensor out = torch::stable::new_empty(src, {dim_size, feats});
  Tensor arg =
      torch::stable::new_empty(src, {arg_needed ? dim_size : 0, arg_needed ? feats : 0}, ScalarType::Long);
  // like the CPU op, scatter_reduce returns no arg (its backward compares values);
  // the arg buffer above is internal to the max/min passes
  Tensor no_arg = torch::stable::new_empty(src, {0, 0}, ScalarType::Long);
  const int64_t out_numel = dim_size * feats, src_numel = e * feats;
  if (out_numel == 0) return std::make_tuple(out, no_arg);
  const int64_t* ip = index.const_data_ptr<int64_t>();
  dispatch_float(src.scalar_type(), "scatter_reduce", [&](auto tag) {
    using scalar_t = decltype(tag);
    const scalar_t* sp = src.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    int64_t* ap = arg_needed ? arg.mutable_data_ptr<int64_t>() : nullptr;
    const scalar_t init = init_value<scalar_t>(reduce);
    cudaStream_t stream = ctx.stream();
    // arg starts at `e`, "no row yet", so that atomicMin can lower it
    fill_kernel<scalar_t><<<grid_threads(out_numel), kThreads, 0, stream>>>(op, ap, out_numel, init, e);
    GNN_CUDA_LAUNCH_CHECK();
    Tensor count;
    int64_t* cp = nullptr;
    if (reduce == kMean) {
      count = torch::stable::new_zeros(src, {dim_size}, ScalarType::Long);
      cp = count.mutable_data_ptr<int64_t>();
    }
    if (src_numel > 0) {
      scatter_accumulate_kernel<scalar_t><<<grid_threads(src_numel), kThreads, 0, stream>>>(sp, ip, op, cp, e,
                                                                                          feats, reduce);
      GNN_CUDA_LAUNCH_CHECK();
    }
    if (reduce == kMean) {
      scatter_mean_kernel<scalar_t>
          <<<grid_threads(out_numel), kThreads, 0, stream>>>(op, cp, dim_size, feats);
      GNN_CUDA_LAUNCH_CHECK();
    }
    if (arg_needed) {
      if (src_numel > 0) {
        scatter_arg_kernel<scalar_t>
            <<<grid_threads(src_numel), kThreads, 0, stream>>>(sp, ip, op, ap, e, feats, init);
        GNN_CUDA_LAUNCH_CHECK();
      }
      scatter_finish_kernel<scalar_t><<<grid_threads(out_numel), kThreads, 0, stream>>>(sp, op, ap, dim_size,
                                                                                      feats, e);
      GNN_CUDA_LAUNCH_CHECK();
    }
  });
  return std::make_tuple(out, no_arg);
}

std::tuple<Tensor, Tensor> segment_reduce(Tensor src, Tensor ptr, int64_t reduce) {
  check_cuda_tensor(src, "src");
  CudaContext ctx(src);
  check_cuda_contiguous(src, "src", ctx.device());
  STD_TORCH_CHECK(src.dim() == 2, "gnn_kernels::segment_reduce: 'src' must be [E, F]");
  STD_TORCH_CHECK(valid_reduce(reduce), "gnn_kernels::segment_reduce: unknown reduce ", reduce);
  check_long(ptr, "ptr", ctx.device());
  const int64_t m = ptr.numel() - 1, e = src.size(0), feats = src.size(1);
  STD_TORCH_CHECK(m >= 0, "gnn_kernels::segment_reduce: 'ptr' must not be empty");
  const int64_t* pp = ptr.const_data_ptr<int64_t>();
  const int bits = run_index_checks(ptr, ctx.stream(), pp, m, e, nullptr, 0, 0);
  STD_TORCH_CHECK(!(bits & kBadPtrEnds), "gnn_kernels::segment_reduce: 'ptr' must run from 0 to ", e);
  STD_TORCH_CHECK(!(bits & kBadPtrOrder),
                  "gnn_kernels::segment_reduce: 'ptr' must be monotonically non-decreasing");
  const bool arg_needed = is_minmax(reduce);
  Tensor out = torch::stable::new_empty(src, {m, feats});
  Tensor arg = torch::stable::new_empty(src, {arg_needed ? m : 0, arg_needed ? feats : 0}, ScalarType::Long);
  const int64_t total = m * feats;
  if (total == 0) return std::make_tuple(out, arg);
  dispatch_float(src.scalar_type(), "segment_reduce", [&](auto tag) {
    using scalar_t = decltype(tag);
    segment_reduce_kernel<scalar_t><<<grid_threads(total), kThreads, 0, ctx.stream()>>>(
        src.const_data_ptr<scalar_t>(), pp, out.mutable_data_ptr<scalar_t>(),
        arg_needed ? arg.mutable_data_ptr<int64_t>() : nullptr, m, feats, reduce,
        init_value<scalar_t>(reduce));
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(out, arg);
}

}  // namespace gpu
}  // namespace gnn_kernels
