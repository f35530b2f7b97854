// CUDA versions of csrc/cpu/multi_reduce.cpp: the one-pass multi-reductions over the groups
// (rows) of a CSR pattern and their backward. Same ops, schemas, checks and formulas.
//
// multi_reduce: one thread per (group, feature) runs the CPU loop over the group's rows in
// order (consecutive threads read consecutive features of a row: coalesced), so the result
// is deterministic; with `stats` it also keeps the group means and tie counts in aux.
// multi_reduce_backward, in kernels that each own what they write (no atomics, deterministic):
//   1. coefficients: one thread per (group, feature) computes the group's backward
//      coefficients (the constant and linear terms, the tie-split of each max/min, each
//      softmax's grad / Z) from out, aux and grad_out into a [G, K, F] buffer;
//   2. elements mode: one thread per (group, feature) writes each element's gradient;
//      gather mode: one thread per (node of x, feature) sums the coefficients of the groups
//      it feeds over the transposed pattern, in its order;
//   3. temperatures: one thread per (group, feature) sums d out / d t over the group's
//      rows into a [G, S, F] buffer, then one thread per (softmax, feature) sums the groups
//      in order.
// exp is the device's expf/exp (the CPU kernel uses its polynomial: the last bits differ).
// Products whose rounding the formulas fix (mean * mean of the variance) use the _rn
// intrinsics, so that nvcc does not contract them into an fma.
#include "common.cuh"
#include "../multi_reduce.h"

namespace gnn_kernels {
namespace gpu {

namespace {

constexpr int kMaxReductions = 32;

// MultiPlan and the coefficient layout in a form a kernel takes by value.
struct DevPlan {
  int num, softmaxes, k, a, b, aux_rows, mean_row;
  bool sum, sum_sq, max, min, var_grad, stats;
  int kind[kMaxReductions], slot[kMaxReductions], c[kMaxReductions], w[kMaxReductions], tie[kMaxReductions];
  bool semi[kMaxReductions];
};

DevPlan make_dev_plan(const MultiPlan& p, bool stats) {
  DevPlan d{};
  d.stats = stats;
  d.aux_rows = static_cast<int>(p.aux_rows(stats));
  d.mean_row = static_cast<int>(p.mean_row);
  d.num = static_cast<int>(p.num);
  d.softmaxes = static_cast<int>(p.softmaxes);
  d.sum = p.sum;
  d.sum_sq = p.sum_sq;
  d.max = p.max;
  d.min = p.min;
  d.var_grad = p.var_grad;
  d.k = 0;
  d.a = p.affine ? d.k++ : -1;
  d.b = p.linear ? d.k++ : -1;
  for (int r = 0; r < d.num; ++r) {
    d.kind[r] = static_cast<int>(p.kind[r]);
    d.slot[r] = static_cast<int>(p.slot[r]);
    d.semi[r] = p.semi[r];
    d.tie[r] = static_cast<int>(p.tie_row[r]);
    const bool mm = p.kind[r] == kMultiMax || p.kind[r] == kMultiMin;
    d.c[r] = mm ? d.k++ : -1;
    d.w[r] = p.kind[r] == kMultiSoftmax ? d.k++ : -1;
  }
  return d;
}

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <typename scalar_t>
__device__ __forceinline__ scalar_t load_row(const scalar_t* x, const int64_t* col, int64_t k, int64_t feats,
                                             int64_t f) {
  return x[(col != nullptr ? col[k] : k) * feats + f];
}

template <typename scalar_t>
__global__ void multi_forward_kernel(DevPlan p, const int64_t* __restrict__ rp, const int64_t* __restrict__ col,
                                     const scalar_t* __restrict__ x, const scalar_t* __restrict__ temps,
                                     int64_t groups, int64_t feats, scalar_t* __restrict__ out,
                                     scalar_t* __restrict__ aux) {
  const scalar_t inf = std::numeric_limits<scalar_t>::infinity();
  const scalar_t std_eps = static_cast<scalar_t>(kMultiStdEps);
  const scalar_t std_floor = static_cast<scalar_t>(sqrt(kMultiStdEps));
  const scalar_t soft_eps = static_cast<scalar_t>(kMultiSoftmaxEps);
  const int64_t total = groups * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t g = t / feats, f = t - g * feats;
    const int64_t k0 = rp[g], k1 = rp[g + 1], n = k1 - k0;
    scalar_t* o = out + g * p.num * feats + f;
    scalar_t* a = aux + g * p.aux_rows * feats + f;
    if (n == 0) {
      for (int r = 0; r < p.num; ++r) o[r * feats] = scalar_t(0);
      for (int q = 0; q < p.aux_rows; ++q)  // shifts, statistics 0; denominators eps
        a[q * feats] = q < 2 * p.softmaxes && q % 2 == 1 ? soft_eps : scalar_t(0);
      continue;
    }
    scalar_t sum = 0, sq = 0, mx = -inf, mn = inf;
    for (int64_t k = k0; k < k1; ++k) {
      const scalar_t v = load_row(x, col, k, feats, f);
      if (p.sum) sum += v;
      if (p.sum_sq) sq += mul_rn(v, v);
      if (p.max) mx = v > mx ? v : mx;
      if (p.min) mn = v < mn ? v : mn;
    }
    const scalar_t count = static_cast<scalar_t>(n);
    for (int r = 0; r < p.num; ++r) {
      scalar_t value;
      const int kind = p.kind[r];
      if (kind == kMultiSum) {
        value = sum;
      } else if (kind == kMultiMean) {
        value = sum / count;
      } else if (kind == kMultiMax) {
        value = mx;
      } else if (kind == kMultiMin) {
        value = mn;
      } else if (kind == kMultiVar || kind == kMultiStd) {
        const scalar_t mean = sum / count;
        const scalar_t var = sq / count - mul_rn(mean, mean);
        if (kind == kMultiVar) {
          value = var;
        } else {
          const scalar_t s = sqrt(var > std_eps ? var : std_eps);
          value = s <= std_floor ? scalar_t(0) : s;
        }
      } else {  // softmax
        const int s = p.slot[r];
        const scalar_t tf = temps[s * feats + f];
        scalar_t m = -inf;
        for (int64_t k = k0; k < k1; ++k) {
          const scalar_t score = tf * load_row(x, col, k, feats, f);
          m = score > m ? score : m;
        }
        if (m == -inf) m = scalar_t(0);
        scalar_t z = 0, w = 0;
        for (int64_t k = k0; k < k1; ++k) {
          const scalar_t v = load_row(x, col, k, feats, f);
          const scalar_t e = device_exp(tf * v - m);
          z += e;
          w += e * v;
        }
        z += soft_eps;
        value = w / z;
        a[2 * s * feats] = m;
        a[(2 * s + 1) * feats] = z;
      }
      o[r * feats] = value;
    }
    if (!p.stats) continue;
    if (p.mean_row >= 0) a[p.mean_row * feats] = sum / count;
    for (int r = 0; r < p.num; ++r) {  // the elements tied with each max/min
      if (p.tie[r] < 0) continue;
      const scalar_t m = o[r * feats];
      scalar_t ties = 0;
      for (int64_t k = k0; k < k1; ++k) ties += load_row(x, col, k, feats, f) == m ? scalar_t(1) : scalar_t(0);
      a[p.tie[r] * feats] = ties;
    }
  }
}

// Step 1: the backward coefficients of each (group, feature).
template <typename scalar_t>
__global__ void multi_coef_kernel(DevPlan p, const int64_t* __restrict__ rp, const scalar_t* __restrict__ out,
                                  const scalar_t* __restrict__ aux, const scalar_t* __restrict__ gout,
                                  int64_t groups, int64_t feats, scalar_t* __restrict__ coef) {
  const int64_t total = groups * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t g = t / feats, f = t - g * feats;
    const int64_t k0 = rp[g], k1 = rp[g + 1], n = k1 - k0;
    scalar_t* c = coef + g * p.k * feats + f;
    if (n == 0) {
      for (int q = 0; q < p.k; ++q) c[q * feats] = scalar_t(0);
      continue;
    }
    const scalar_t* o = out + g * p.num * feats + f;
    const scalar_t* a = aux + g * p.aux_rows * feats + f;
    const scalar_t* go = gout + g * p.num * feats + f;
    const scalar_t count = static_cast<scalar_t>(n);
    scalar_t ca = 0, cb = 0;
    for (int r = 0; r < p.num; ++r) {
      const int kind = p.kind[r];
      const scalar_t gr = go[r * feats];
      if (kind == kMultiSum) {
        ca += gr;
      } else if (kind == kMultiMean) {
        ca += gr / count;
      } else if (kind == kMultiVar || kind == kMultiStd) {
        scalar_t gv = gr;
        if (kind == kMultiStd) gv = o[r * feats] > scalar_t(0) ? gr / (scalar_t(2) * o[r * feats]) : scalar_t(0);
        const scalar_t mean = a[p.mean_row * feats];
        ca -= scalar_t(2) * gv * mean / count;
        if (!p.semi[r]) cb += scalar_t(2) * gv / count;
      } else if (kind == kMultiMax || kind == kMultiMin) {
        const scalar_t ties = a[p.tie[r] * feats];
        c[p.c[r] * feats] = ties > scalar_t(0) ? gr / ties : scalar_t(0);
      } else {
        c[p.w[r] * feats] = gr / a[(2 * p.slot[r] + 1) * feats];
      }
    }
    if (p.a >= 0) c[p.a * feats] = ca;
    if (p.b >= 0) c[p.b * feats] = cb;
  }
}

// The gradient one element v of group g receives (coefficients c, outputs o, aux a: all at feature f).
template <typename scalar_t>
__device__ __forceinline__ scalar_t element_grad(const DevPlan& p, const scalar_t* c, const scalar_t* o,
                                                 const scalar_t* a, const scalar_t* temps, int64_t feats,
                                                 int64_t f, scalar_t v) {
  scalar_t gx = 0;
  if (p.a >= 0) gx += c[p.a * feats];
  if (p.b >= 0) gx += c[p.b * feats] * v;
  for (int r = 0; r < p.num; ++r) {
    if (p.c[r] >= 0) {
      if (v == o[r * feats]) gx += c[p.c[r] * feats];
    } else if (p.w[r] >= 0) {
      const int s = p.slot[r];
      const scalar_t tf = temps[s * feats + f];
      const scalar_t e = device_exp(tf * v - a[2 * s * feats]);
      const scalar_t we = c[p.w[r] * feats] * e;
      gx += p.semi[r] ? we : we * (scalar_t(1) + tf * (v - o[r * feats]));
    }
  }
  return gx;
}

// Step 2, elements mode: every element of every group, written once.
template <typename scalar_t>
__global__ void multi_element_grad_kernel(DevPlan p, const int64_t* __restrict__ rp,
                                          const int64_t* __restrict__ col, const scalar_t* __restrict__ x,
                                          const scalar_t* __restrict__ out, const scalar_t* __restrict__ aux,
                                          const scalar_t* __restrict__ temps, const scalar_t* __restrict__ coef,
                                          int64_t groups, int64_t feats, scalar_t* __restrict__ grad_x) {
  const int64_t total = groups * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t g = t / feats, f = t - g * feats;
    const scalar_t* c = coef + g * p.k * feats + f;
    const scalar_t* o = out + g * p.num * feats + f;
    const scalar_t* a = aux + g * p.aux_rows * feats + f;
    for (int64_t k = rp[g]; k < rp[g + 1]; ++k) {
      const int64_t row = col != nullptr ? col[k] : k;
      grad_x[row * feats + f] = element_grad(p, c, o, a, temps, feats, f, x[row * feats + f]);
    }
  }
}

// Step 2, gather mode: each node of x sums what the groups it feeds send back, in transposed order.
template <typename scalar_t>
__global__ void multi_gather_grad_kernel(DevPlan p, const int64_t* __restrict__ t_rowptr,
                                         const int64_t* __restrict__ t_col, const scalar_t* __restrict__ x,
                                         const scalar_t* __restrict__ out, const scalar_t* __restrict__ aux,
                                         const scalar_t* __restrict__ temps, const scalar_t* __restrict__ coef,
                                         int64_t nodes, int64_t feats, scalar_t* __restrict__ grad_x) {
  const int64_t total = nodes * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t j = t / feats, f = t - j * feats;
    const scalar_t v = x[t];
    scalar_t gx = 0;
    for (int64_t q = t_rowptr[j]; q < t_rowptr[j + 1]; ++q) {
      const int64_t g = t_col[q];
      gx += element_grad(p, coef + g * p.k * feats + f, out + g * p.num * feats + f,
                         aux + g * p.aux_rows * feats + f, temps, feats, f, v);
    }
    grad_x[t] = gx;
  }
}

// Step 3: d out / d t of every non-semi softmax, per group, then summed over the groups in order.
template <typename scalar_t>
__global__ void multi_temp_partial_kernel(DevPlan p, const int64_t* __restrict__ rp,
                                          const int64_t* __restrict__ col, const scalar_t* __restrict__ x,
                                          const scalar_t* __restrict__ out, const scalar_t* __restrict__ aux,
                                          const scalar_t* __restrict__ temps, const scalar_t* __restrict__ coef,
                                          int64_t groups, int64_t feats, scalar_t* __restrict__ partial) {
  const int64_t total = groups * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    const int64_t g = t / feats, f = t - g * feats;
    for (int r = 0; r < p.num; ++r) {
      if (p.w[r] < 0) continue;
      const int s = p.slot[r];
      scalar_t d = 0;
      if (!p.semi[r]) {
        const scalar_t tf = temps[s * feats + f];
        const scalar_t m = aux[(g * p.aux_rows + 2 * s) * feats + f];
        const scalar_t o = out[(g * p.num + r) * feats + f];
        const scalar_t cw = coef[(g * p.k + p.w[r]) * feats + f];
        for (int64_t k = rp[g]; k < rp[g + 1]; ++k) {
          const scalar_t v = load_row(x, col, k, feats, f);
          d += cw * device_exp(tf * v - m) * v * (v - o);
        }
      }
      partial[(g * p.softmaxes + s) * feats + f] = d;
    }
  }
}

template <typename scalar_t>
__global__ void multi_temp_sum_kernel(const scalar_t* __restrict__ partial, int64_t groups, int64_t softmaxes,
                                      int64_t feats, scalar_t* __restrict__ grad_temps) {
  const int64_t total = softmaxes * feats;
  for (int64_t t = global_thread(); t < total; t += thread_stride()) {
    scalar_t d = 0;
    for (int64_t g = 0; g < groups; ++g) d += partial[g * total + t];
    grad_temps[t] = d;
  }
}

// Elements mode with a permutation: every row of x must be hit exactly once.
__global__ void count_rows_kernel(const int64_t* __restrict__ col, int64_t n, int* __restrict__ counts) {
  for (int64_t t = global_thread(); t < n; t += thread_stride()) atomicAdd(counts + col[t], 1);
}

__global__ void check_once_kernel(const int* __restrict__ counts, int64_t n, int* flag) {
  for (int64_t t = global_thread(); t < n; t += thread_stride())
    if (counts[t] != 1) atomicOr(flag, kBadIndex);
}

void check_rowptr(const Tensor& rowptr, int64_t entries, const char* name, const CudaContext& ctx) {
  check_long(rowptr, name, ctx.device());
  const int64_t m = rowptr.numel() - 1;
  STD_TORCH_CHECK(m >= 0, "gnn_kernels: '", name, "' must not be empty");
  const int bits = run_index_checks(rowptr, ctx.stream(), rowptr.const_data_ptr<int64_t>(), m, entries, nullptr, 0, 0);
  STD_TORCH_CHECK(!(bits & kBadPtrEnds), "gnn_kernels: '", name, "' must start at 0 and end at ", entries,
                  " (the number of entries)");
  STD_TORCH_CHECK(!(bits & kBadPtrOrder), "gnn_kernels: '", name, "' must be monotonically non-decreasing");
}

MultiPlan check_inputs(const Tensor& rowptr, const std::optional<Tensor>& col, const Tensor& x,
                       const std::vector<int64_t>& codes, const std::optional<Tensor>& temps, const char* op,
                       const CudaContext& ctx) {
  check_cuda_contiguous(x, "x", ctx.device());
  STD_TORCH_CHECK(x.dim() == 2, "gnn_kernels::", op, ": 'x' must be [N, F]");
  MultiPlan p = make_multi_plan(codes);
  STD_TORCH_CHECK(p.num > 0, "gnn_kernels::", op, ": 'codes' must hold at least one reduction");
  STD_TORCH_CHECK(p.ok, "gnn_kernels::", op, ": 'codes' holds an unknown reduction code");
  STD_TORCH_CHECK(p.num <= kMaxReductions, "gnn_kernels::", op, ": at most ", kMaxReductions,
                  " reductions per call on CUDA, got ", p.num);
  if (col.has_value()) {
    check_csr(rowptr, *col, x.size(0), ctx);
  } else {
    check_rowptr(rowptr, x.size(0), "rowptr", ctx);
  }
  if (p.softmaxes > 0) {
    STD_TORCH_CHECK(temps.has_value(), "gnn_kernels::", op, ": a softmax needs 'temps'");
    check_cuda_contiguous(*temps, "temps", ctx.device());
    STD_TORCH_CHECK(temps->scalar_type() == x.scalar_type(), "gnn_kernels::", op,
                    ": 'temps' must have the dtype of 'x'");
    STD_TORCH_CHECK(temps->dim() == 2 && temps->size(0) == p.softmaxes && temps->size(1) == x.size(1),
                    "gnn_kernels::", op, ": 'temps' must be [", p.softmaxes, ", ", x.size(1), "]");
  }
  return p;
}

void check_group_tensor(const Tensor& t, const char* name, int64_t g, int64_t rows, int64_t f, ScalarType type,
                        const CudaContext& ctx) {
  check_cuda_contiguous(t, name, ctx.device());
  STD_TORCH_CHECK(t.scalar_type() == type, "gnn_kernels::multi_reduce_backward: '", name,
                  "' must have the dtype of 'x'");
  STD_TORCH_CHECK(t.dim() == 3 && t.size(0) == g && t.size(1) == rows && t.size(2) == f,
                  "gnn_kernels::multi_reduce_backward: '", name, "' must be [", g, ", ", rows, ", ", f, "]");
}

}  // namespace

std::tuple<Tensor, Tensor> multi_reduce(Tensor rowptr, std::optional<Tensor> col, Tensor x, std::vector<int64_t> codes,
                                        std::optional<Tensor> temps, std::optional<Tensor> t_rowptr,
                                        std::optional<Tensor> t_col, bool stats) {
  (void)t_rowptr;
  (void)t_col;
  check_cuda_tensor(x, "x");
  CudaContext ctx(x);
  const MultiPlan p = check_inputs(rowptr, col, x, codes, temps, "multi_reduce", ctx);
  const int64_t g = rowptr.numel() - 1, feats = x.size(1);
  Tensor out = torch::stable::new_empty(x, {g, p.num, feats});
  Tensor aux = torch::stable::new_empty(x, {g, p.aux_rows(stats), feats});
  const int64_t total = g * feats;
  if (total == 0) return std::make_tuple(out, aux);
  const DevPlan d = make_dev_plan(p, stats);
  dispatch_float(x.scalar_type(), "multi_reduce", [&](auto tag) {
    using scalar_t = decltype(tag);
    multi_forward_kernel<scalar_t><<<grid_threads(total), kThreads, 0, ctx.stream()>>>(
        d, rowptr.const_data_ptr<int64_t>(), col.has_value() ? col->const_data_ptr<int64_t>() : nullptr,
        x.const_data_ptr<scalar_t>(), p.softmaxes > 0 ? temps->const_data_ptr<scalar_t>() : nullptr, g, feats,
        out.mutable_data_ptr<scalar_t>(), aux.mutable_data_ptr<scalar_t>());
    GNN_CUDA_LAUNCH_CHECK();
  });
  return std::make_tuple(out, aux);
}

std::tuple<Tensor, Tensor> multi_reduce_backward(Tensor rowptr, std::optional<Tensor> col, Tensor x,
                                                 std::vector<int64_t> codes, std::optional<Tensor> temps, Tensor out,
                                                 Tensor aux, Tensor grad_out, std::optional<Tensor> t_rowptr,
                                                 std::optional<Tensor> t_col, bool need_x, bool need_temps) {
  check_cuda_tensor(x, "x");
  CudaContext ctx(x);
  const MultiPlan p = check_inputs(rowptr, col, x, codes, temps, "multi_reduce_backward", ctx);
  const int64_t g = rowptr.numel() - 1, feats = x.size(1), n = x.size(0);
  const int64_t entries = col.has_value() ? col->numel() : n;
  check_group_tensor(out, "out", g, p.num, feats, x.scalar_type(), ctx);
  check_group_tensor(aux, "aux (of a forward with stats=True)", g, p.aux_rows(true), feats, x.scalar_type(), ctx);
  check_group_tensor(grad_out, "grad_out", g, p.num, feats, x.scalar_type(), ctx);
  const bool gather = t_rowptr.has_value();
  if (gather) {
    STD_TORCH_CHECK(t_col.has_value(), "gnn_kernels::multi_reduce_backward: 't_col' must come with 't_rowptr'");
    STD_TORCH_CHECK(t_rowptr->numel() == n + 1 && t_col->numel() == entries,
                    "gnn_kernels::multi_reduce_backward: the transposed pattern (t_rowptr, t_col) must have ", n,
                    " rows and ", entries, " entries");
    check_rowptr(*t_rowptr, entries, "t_rowptr", ctx);
    check_index(*t_col, g, "t_col", ctx);
  } else if (need_x) {
    STD_TORCH_CHECK(entries == n, "gnn_kernels::multi_reduce_backward: without the transposed pattern every row of "
                    "'x' must belong to one group ('col' a permutation of [0, ", n, "))");
    if (col.has_value() && n > 0) {
      Tensor counts = torch::stable::new_zeros(x, {n}, ScalarType::Int);
      count_rows_kernel<<<grid_threads(n), kThreads, 0, ctx.stream()>>>(col->const_data_ptr<int64_t>(), n,
                                                                        counts.mutable_data_ptr<int>());
      GNN_CUDA_LAUNCH_CHECK();
      ErrorFlag flag(x, ctx.stream());
      check_once_kernel<<<grid_threads(n), kThreads, 0, ctx.stream()>>>(counts.const_data_ptr<int>(), n,
                                                                        flag.ptr());
      GNN_CUDA_LAUNCH_CHECK();
      STD_TORCH_CHECK(flag.fetch() == 0, "gnn_kernels::multi_reduce_backward: 'col' must be a permutation without "
                      "the transposed pattern (it repeats a row)");
    }
  }
  bool temps_grad = false;
  for (int64_t r = 0; r < p.num; ++r) temps_grad |= p.kind[r] == kMultiSoftmax && !p.semi[r];
  temps_grad = temps_grad && need_temps;
  Tensor grad_x = torch::stable::new_zeros(x, {need_x ? n : 0, feats});
  Tensor grad_temps = torch::stable::new_zeros(x, {temps_grad ? p.softmaxes : 0, feats});
  if ((!need_x && !temps_grad) || g * feats == 0) return std::make_tuple(grad_x, grad_temps);
  const DevPlan d = make_dev_plan(p, true);
  Tensor coef = torch::stable::new_empty(x, {g * d.k * feats});
  dispatch_float(x.scalar_type(), "multi_reduce_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    cudaStream_t stream = ctx.stream();
    const int64_t* rp = rowptr.const_data_ptr<int64_t>();
    const int64_t* cp = col.has_value() ? col->const_data_ptr<int64_t>() : nullptr;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* op = out.const_data_ptr<scalar_t>();
    const scalar_t* ap = aux.const_data_ptr<scalar_t>();
    const scalar_t* tp = p.softmaxes > 0 ? temps->const_data_ptr<scalar_t>() : nullptr;
    scalar_t* cf = coef.mutable_data_ptr<scalar_t>();
    const int64_t total = g * feats;
    multi_coef_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(
        d, rp, op, ap, grad_out.const_data_ptr<scalar_t>(), g, feats, cf);
    GNN_CUDA_LAUNCH_CHECK();
    if (need_x && n * feats > 0) {
      scalar_t* gx = grad_x.mutable_data_ptr<scalar_t>();
      if (gather) {
        multi_gather_grad_kernel<scalar_t><<<grid_threads(n * feats), kThreads, 0, stream>>>(
            d, t_rowptr->const_data_ptr<int64_t>(), t_col->const_data_ptr<int64_t>(), xp, op, ap, tp, cf, n, feats,
            gx);
      } else {
        multi_element_grad_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(d, rp, cp, xp, op, ap,
                                                                                        tp, cf, g, feats, gx);
      }
      GNN_CUDA_LAUNCH_CHECK();
    }
    if (temps_grad) {
      Tensor partial = torch::stable::new_empty(x, {g * p.softmaxes * feats});
      scalar_t* pp = partial.mutable_data_ptr<scalar_t>();
      multi_temp_partial_kernel<scalar_t><<<grid_threads(total), kThreads, 0, stream>>>(d, rp, cp, xp, op, ap, tp,
                                                                                      cf, g, feats, pp);
      GNN_CUDA_LAUNCH_CHECK();
      multi_temp_sum_kernel<scalar_t><<<grid_threads(p.softmaxes * feats), kThreads, 0, stream>>>(
          pp, g, p.softmaxes, feats, grad_temps.mutable_data_ptr<scalar_t>());
      GNN_CUDA_LAUNCH_CHECK();
    }
  });
  return std::make_tuple(grad_x, grad_temps);
}

}  // namespace gpu
}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CUDA, m) {
  m.impl("multi_reduce", TORCH_BOX(&gnn_kernels::gpu::multi_reduce));
  m.impl("multi_reduce_backward", TORCH_BOX(&gnn_kernels::gpu::multi_reduce_backward));
}
