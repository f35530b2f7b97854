// Typed matmul of gathered rows (FastRGCNConv): out[e] = inputs[index[e]] @ other[types[e]]
// (inputs[e] without an index), never forming the [E, F_in, F_out] tensor of per-row matrices.
//
// Two routes, chosen from the sizes alone (the rule of gnn-core's pure-torch reference):
//   table   (an index is given and N * T <= E): one product of every row with every type,
//           table = inputs @ [other_0 | ... | other_{T-1}] ([N, T * F_out]), then one row copy
//           per output row (row index[e] * T + types[e] of the table);
//   grouped (otherwise): the rows are gathered in type order (a stable counting sort), one
//           `aten::mm.out` per type writes the products, and the rows go back in place.
// Gradients follow the same routes. Every sum over several rows (the table's rows, a node read
// by several edges) runs over rows grouped by a stable counting sort, in edge order, so the
// results are deterministic; the matrix products are torch's BLAS calls.
#include "common.h"

#include <array>

namespace gnn_kernels {
namespace {

// out = a @ b, written into `out`.
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

struct Sizes {
  int64_t rows, in, types, out, entries;
  bool indexed;
  bool table() const { return indexed && rows * types <= entries; }
};

Sizes check_gather_matmul(const Tensor& inputs, const Tensor& types, const Tensor& other,
                          const std::optional<Tensor>& index) {
  STD_TORCH_CHECK(inputs.dim() == 2, "gnn_kernels::gather_matmul: 'inputs' must be 2-D [N, F_in]");
  STD_TORCH_CHECK(other.dim() == 3, "gnn_kernels::gather_matmul: 'other' must be 3-D [T, F_in, F_out]");
  STD_TORCH_CHECK(is_float_type(inputs.scalar_type()) && inputs.scalar_type() == other.scalar_type(),
                  "gnn_kernels::gather_matmul: 'inputs' and 'other' must share a float32/float64 dtype");
  STD_TORCH_CHECK(other.size(1) == inputs.size(1), "gnn_kernels::gather_matmul: 'other' expects ", other.size(1),
                  " input features, 'inputs' has ", inputs.size(1));
  STD_TORCH_CHECK(inputs.is_cpu() && other.is_cpu(), "gnn_kernels::gather_matmul: 'inputs' and 'other' must be CPU tensors");
  Sizes s{inputs.size(0), inputs.size(1), other.size(0), other.size(2), types.numel(), index.has_value()};
  check_index(types, s.types, "types");
  if (index.has_value()) {
    STD_TORCH_CHECK(index->numel() == s.entries, "gnn_kernels::gather_matmul: 'index' has ", index->numel(),
                    " entries but 'types' has ", s.entries);
    check_index(*index, s.rows, "index");
  } else {
    STD_TORCH_CHECK(s.entries == s.rows, "gnn_kernels::gather_matmul: without 'index', 'types' needs one entry per row of "
                    "'inputs' (", s.rows, "), got ", s.entries);
  }
  return s;
}

// Stable counting sort of `key` [n] (values in [0, groups)): ptr [groups + 1] and order [n] with
// the positions of group g at order[ptr[g]:ptr[g + 1]], in increasing position.
void counting_sort(const int64_t* key, int64_t n, int64_t groups, std::vector<int64_t>& ptr,
                   std::vector<int64_t>& order) {
  ptr.assign(groups + 1, 0);
  for (int64_t e = 0; e < n; ++e) ++ptr[key[e] + 1];
  for (int64_t g = 0; g < groups; ++g) ptr[g + 1] += ptr[g];
  std::vector<int64_t> next(ptr.begin(), ptr.end() - 1);
  order.resize(n);
  for (int64_t e = 0; e < n; ++e) order[next[key[e]]++] = e;
}

// dst[k] = src[rows[k]] for rows of `width` contiguous values.
template <typename T>
void gather_rows(const T* src, const int64_t* rows, int64_t n, int64_t width, T* dst) {
  parallel_rows(n, 1024, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) std::memcpy(dst + k * width, src + rows[k] * width, width * sizeof(T));
  });
}

// dst[rows[k]] = src[k] (distinct rows).
template <typename T>
void scatter_rows(const T* src, const int64_t* rows, int64_t n, int64_t width, T* dst) {
  parallel_rows(n, 1024, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) std::memcpy(dst + rows[k] * width, src + k * width, width * sizeof(T));
  });
}

// dst[g] = sum of src[order[k]] for k in [ptr[g], ptr[g + 1]) in that order (0 for an empty group).
template <typename T>
void group_sums(const T* src, const std::vector<int64_t>& ptr, const std::vector<int64_t>& order, int64_t width,
                T* dst) {
  const int64_t groups = static_cast<int64_t>(ptr.size()) - 1;
  parallel_rows(groups, 256, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      T* acc = dst + g * width;
      for (int64_t f = 0; f < width; ++f) acc[f] = T(0);
      for (int64_t k = ptr[g]; k < ptr[g + 1]; ++k) {
        const T* row = src + order[k] * width;
#pragma omp simd
        for (int64_t f = 0; f < width; ++f) acc[f] += row[f];
      }
    }
  });
}

// The output row of position k of the type order: index[order[k]] or order[k].
std::vector<int64_t> source_rows(const std::vector<int64_t>& order, const std::optional<Tensor>& index) {
  std::vector<int64_t> rows(order);
  if (index.has_value()) {
    const int64_t* idx = index->const_data_ptr<int64_t>();
    for (auto& r : rows) r = idx[r];
  }
  return rows;
}

// [K, T * M] and [T * M, K] views of the weights for the table route.
Tensor wide_weights(const Tensor& other) {
  Tensor t = torch::stable::contiguous(torch::stable::transpose(other, 0, 1));  // [K, T, M]
  return torch::stable::reshape(t, {other.size(1), other.size(0) * other.size(2)});
}

Tensor wide_weights_t(const Tensor& other) {
  Tensor t = torch::stable::contiguous(torch::stable::transpose(other, 1, 2));  // [T, M, K]
  return torch::stable::reshape(t, {other.size(0) * other.size(2), other.size(1)});
}

std::vector<int64_t> table_keys(const Tensor& types, const Tensor& index, int64_t num_types) {
  const int64_t n = types.numel();
  const int64_t* t = types.const_data_ptr<int64_t>();
  const int64_t* i = index.const_data_ptr<int64_t>();
  std::vector<int64_t> key(n);
  for (int64_t e = 0; e < n; ++e) key[e] = i[e] * num_types + t[e];
  return key;
}

}  // namespace

Tensor gather_matmul(Tensor inputs, Tensor types, Tensor other, std::optional<Tensor> index) {
  const Sizes s = check_gather_matmul(inputs, types, other, index);
  Tensor out = torch::stable::new_empty(inputs, {s.entries, s.out});
  if (s.entries == 0 || s.out == 0) return out;
  if (s.table()) {
    Tensor table = mm(inputs, wide_weights(other));  // [N, T * M]
    const std::vector<int64_t> key = table_keys(types, *index, s.types);
    dispatch_float(inputs.scalar_type(), "gather_matmul", [&](auto tag) {
      using scalar_t = decltype(tag);
      gather_rows(table.const_data_ptr<scalar_t>(), key.data(), s.entries, s.out, out.mutable_data_ptr<scalar_t>());
    });
    return out;
  }
  std::vector<int64_t> ptr, order;
  counting_sort(types.const_data_ptr<int64_t>(), s.entries, s.types, ptr, order);
  const std::vector<int64_t> rows = source_rows(order, index);
  Tensor x = torch::stable::contiguous(inputs);
  Tensor sorted_in = torch::stable::new_empty(inputs, {s.entries, s.in});
  Tensor sorted_out = torch::stable::new_empty(inputs, {s.entries, s.out});
  dispatch_float(inputs.scalar_type(), "gather_matmul", [&](auto tag) {
    using scalar_t = decltype(tag);
    gather_rows(x.const_data_ptr<scalar_t>(), rows.data(), s.entries, s.in, sorted_in.mutable_data_ptr<scalar_t>());
  });
  for (int64_t t = 0; t < s.types; ++t) {
    const int64_t len = ptr[t + 1] - ptr[t];
    if (len == 0) continue;
    Tensor block = torch::stable::narrow(sorted_out, 0, ptr[t], len);
    mm_into(torch::stable::narrow(sorted_in, 0, ptr[t], len), torch::stable::select(other, 0, t), block);
  }
  dispatch_float(inputs.scalar_type(), "gather_matmul", [&](auto tag) {
    using scalar_t = decltype(tag);
    scatter_rows(sorted_out.const_data_ptr<scalar_t>(), order.data(), s.entries, s.out,
                 out.mutable_data_ptr<scalar_t>());
  });
  return out;
}

// Gradients of gather_matmul with respect to `inputs` and `other` (an empty [0, ...] tensor for
// the one not asked for).
std::tuple<Tensor, Tensor> gather_matmul_backward(Tensor inputs, Tensor types, Tensor other,
                                                  std::optional<Tensor> index, Tensor grad, bool need_inputs,
                                                  bool need_other) {
  const Sizes s = check_gather_matmul(inputs, types, other, index);
  STD_TORCH_CHECK(grad.dim() == 2 && grad.size(0) == s.entries && grad.size(1) == s.out,
                  "gnn_kernels::gather_matmul_backward: 'grad' must have shape [", s.entries, ", ", s.out, "]");
  Tensor g = torch::stable::contiguous(grad);
  Tensor grad_inputs = torch::stable::new_zeros(inputs, {need_inputs ? s.rows : 0, s.in});
  Tensor grad_other = torch::stable::new_zeros(other, {need_other ? s.types : 0, s.in, s.out});
  if (s.entries == 0 || s.out == 0 || !(need_inputs || need_other)) return {grad_inputs, grad_other};

  if (s.table()) {
    // grad of the table: the sum of the output rows that read each table row
    const std::vector<int64_t> key = table_keys(types, *index, s.types);
    std::vector<int64_t> ptr, order;
    counting_sort(key.data(), s.entries, s.rows * s.types, ptr, order);
    Tensor grad_table = torch::stable::new_empty(inputs, {s.rows, s.types * s.out});
    dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
      using scalar_t = decltype(tag);
      group_sums(g.const_data_ptr<scalar_t>(), ptr, order, s.out, grad_table.mutable_data_ptr<scalar_t>());
    });
    if (need_inputs) mm_into(grad_table, wide_weights_t(other), grad_inputs);
    if (need_other) {
      Tensor wide = mm(torch::stable::transpose(inputs, 0, 1), grad_table);  // [K, T * M]
      Tensor view = torch::stable::view(wide, {s.in, s.types, s.out});
      grad_other = torch::stable::contiguous(torch::stable::transpose(view, 0, 1));
    }
    return {grad_inputs, grad_other};
  }

  std::vector<int64_t> ptr, order;
  counting_sort(types.const_data_ptr<int64_t>(), s.entries, s.types, ptr, order);
  Tensor sorted_grad = torch::stable::new_empty(grad, {s.entries, s.out});
  dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
    using scalar_t = decltype(tag);
    gather_rows(g.const_data_ptr<scalar_t>(), order.data(), s.entries, s.out, sorted_grad.mutable_data_ptr<scalar_t>());
  });
  const std::vector<int64_t> rows = source_rows(order, index);
  if (need_other) {
    Tensor x = torch::stable::contiguous(inputs);
    Tensor sorted_in = torch::stable::new_empty(inputs, {s.entries, s.in});
    dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
      using scalar_t = decltype(tag);
      gather_rows(x.const_data_ptr<scalar_t>(), rows.data(), s.entries, s.in, sorted_in.mutable_data_ptr<scalar_t>());
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
    dispatch_float(inputs.scalar_type(), "gather_matmul_backward", [&](auto tag) {
      using scalar_t = decltype(tag);
      if (!index.has_value()) {  // each row of `inputs` is read once
        scatter_rows(sorted_gin.const_data_ptr<scalar_t>(), order.data(), s.entries, s.in,
                     grad_inputs.mutable_data_ptr<scalar_t>());
        return;
      }
      std::vector<int64_t> row_ptr, row_order;  // the sorted positions that read each row
      counting_sort(rows.data(), s.entries, s.rows, row_ptr, row_order);
      group_sums(sorted_gin.const_data_ptr<scalar_t>(), row_ptr, row_order, s.in,
                 grad_inputs.mutable_data_ptr<scalar_t>());
    });
  }
  return {grad_inputs, grad_other};
}

}  // namespace gnn_kernels

STABLE_TORCH_LIBRARY_FRAGMENT(gnn_kernels, m) {
  m.def("gather_matmul(Tensor inputs, Tensor types, Tensor other, Tensor? index) -> Tensor");
  m.def(
      "gather_matmul_backward(Tensor inputs, Tensor types, Tensor other, Tensor? index, Tensor grad, "
      "bool need_inputs, bool need_other) -> (Tensor, Tensor)");
}

STABLE_TORCH_LIBRARY_IMPL(gnn_kernels, CPU, m) {
  m.impl("gather_matmul", TORCH_BOX(&gnn_kernels::gather_matmul));
  m.impl("gather_matmul_backward", TORCH_BOX(&gnn_kernels::gather_matmul_backward));
}
