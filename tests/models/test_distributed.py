"""Scale-out: DistributedDataParallel with two processes on loopback (gloo) equals one process on
all the data; PyG's legacy DataParallel is kept (and says clearly that it needs CUDA)."""

from __future__ import annotations

import importlib.util
import inspect
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnn.models import DataParallel
from gnn.models.data_parallel import device_split

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_train.py"


def load_example():
    spec = importlib.util.spec_from_file_location("ddp_train_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_train_like_one_process_on_all_data(tmp_path):
    steps, graphs = 6, 16
    out = tmp_path / "rank0.pt"
    env = dict(
        os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2", OMP_NUM_THREADS="1"
    )
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [sys.executable, str(EXAMPLE), "--steps", str(steps), "--graphs", str(graphs), "--out", str(out)]
    procs = [
        subprocess.Popen(
            cmd,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for r in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=120)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    assert "rank 0/2" in logs[0] and "rank 1/2" in logs[1]
    distributed = torch.load(out, weights_only=True)

    example = load_example()
    data = example.make_graphs(graphs)
    alone = example.make_model()
    example.train(alone, data, steps)
    for key, value in alone.state_dict().items():
        torch.testing.assert_close(distributed[key], value, rtol=0, atol=1e-12, msg=key)
    # and the processes did share their gradients: rank 0's shard alone trains elsewhere
    shard_only = example.make_model()
    example.train(shard_only, data[0::2], steps)
    assert max((distributed[k] - v).abs().max().item() for k, v in shard_only.state_dict().items()) > 1e-6


def test_data_parallel_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="CUDA.*DistributedDataParallel"):
        DataParallel(torch.nn.Linear(2, 2))


def test_data_parallel_signature_and_split():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward", "scatter"):
        ours = [
            (p.name, p.default) for p in inspect.signature(getattr(DataParallel, name)).parameters.values()
        ]
        theirs = [
            (p.name, p.default)
            for p in inspect.signature(getattr(pyg.DataParallel, name)).parameters.values()
        ]
        assert ours == theirs, name


@pytest.mark.parametrize(
    "counts,devices,expected",
    [
        ([10, 10, 10, 10], 2, [0, 2, 4]),
        ([1, 1, 1, 30], 2, [0, 3, 4]),  # the big graph fills device 1 alone
        ([5, 5, 5], 4, [0, 1, 2, 3]),  # fewer graphs than devices: one device stays idle
        ([7], 3, [0, 1]),
        ([3, 9, 2, 8, 4], 1, [0, 5]),
    ],
)
def test_device_split_balances_node_counts(counts, devices, expected):
    assert device_split(counts, devices) == expected
    # the definition: graph i goes to floor(devices * midpoint_i / total), groups are consecutive
    total, start, owner = sum(counts), 0, []
    for n in counts:
        owner.append(int(devices * (start + n / 2) / total))
        start += n
    got = [owner[a] for a in expected[:-1]]
    assert got == sorted(set(owner))
