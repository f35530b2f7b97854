"""The fused segment softmax kernel (softmax_forward/backward) against a loop reference."""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(not gnn.kernels.load(), reason="gnn-kernels did not build")
K = torch.ops.gnn_kernels


def loop_softmax(src: torch.Tensor, index: torch.Tensor, groups: int) -> torch.Tensor:
    """Per group and column: exp(s - max) / (sum exp(s - max) + 1e-16); an all -inf group has max 0."""
    out = torch.zeros_like(src)
    for g in range(groups):
        rows = (index == g).nonzero().flatten()
        if len(rows) == 0:
            continue
        block = src[rows]
        top = block.max(0).values
        top = torch.where(torch.isinf(top) & (top < 0), torch.zeros_like(top), top)
        e = (block - top).exp()
        out[rows] = e / (e.sum(0) + 1e-16)
    return out


def inputs(num, feats, groups, sorted_index, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(num, feats, generator=g, dtype=dtype) * 4
    index = torch.randint(0, groups, (num,), generator=g)
    index[index == 2] = 3  # an empty group inside; the last groups are empty too
    if sorted_index:
        index = index.sort().values
    return src, index


# feats 1 and 3 split the groups between threads, 40 splits the feature columns
@pytest.mark.parametrize("feats", [1, 3, 40])
@pytest.mark.parametrize("sorted_index", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_matches_loop(feats, sorted_index, dtype):
    src, index = inputs(300, feats, 20, sorted_index, dtype, seed=feats)
    src[5, 0] = float("-inf")  # one masked score
    out = K.softmax_forward(src, index, 24)
    tol = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(out, loop_softmax(src, index, 24), **tol)
    sums = torch.zeros(24, feats, dtype=dtype).index_add_(0, index, out)
    present = torch.bincount(index, minlength=24) > 0
    torch.testing.assert_close(sums[present], torch.ones_like(sums[present]), **tol)


def test_all_masked_group_gives_zeros_not_nan():
    src = torch.tensor([[float("-inf")], [float("-inf")], [1.0], [2.0]])
    out = K.softmax_forward(src, torch.tensor([0, 0, 1, 1]), 2)
    torch.testing.assert_close(out[:2], torch.zeros(2, 1))
    torch.testing.assert_close(out[2:, 0], torch.softmax(torch.tensor([1.0, 2.0]), 0))


@pytest.mark.parametrize("feats", [1, 40])
@pytest.mark.parametrize("sorted_index", [False, True])
def test_gradcheck(feats, sorted_index):
    src, index = inputs(60, feats, 9, sorted_index, torch.float64, seed=3)
    src.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: K.softmax_forward(s, index, 11), (src,))


def test_result_does_not_depend_on_the_thread_count():
    src, index = inputs(2000, 3, 50, False, torch.float32, seed=4)
    grad = torch.randn_like(src)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out = K.softmax_forward(src, index, 50)
            results.append((out, K.softmax_backward(out, grad, index, 50)))
    finally:
        torch.set_num_threads(before)
    for out, back in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(back, results[0][1])


def test_compiles_without_graph_breaks():
    src, index = inputs(50, 4, 6, False, torch.float32, seed=5)

    def fn(s):
        return K.softmax_forward(s, index, 6) * 2

    explained = torch._dynamo.explain(fn)(src)
    assert explained.graph_break_count == 0
    torch.testing.assert_close(torch.compile(fn)(src), fn(src))


def test_bad_input_raises():
    src = torch.randn(3, 2)
    with pytest.raises(RuntimeError, match="out of range"):
        K.softmax_forward(src, torch.tensor([0, 5, 1]), 3)
    with pytest.raises(RuntimeError, match="E entries"):
        K.softmax_forward(src, torch.tensor([0, 1]), 3)
    with pytest.raises(RuntimeError, match="float32/float64"):
        K.softmax_forward(src.half(), torch.tensor([0, 1, 1]), 3)
    with pytest.raises(RuntimeError, match="shape of 'out'"):
        K.softmax_backward(src, torch.randn(3, 3), torch.tensor([0, 1, 1]), 3)
