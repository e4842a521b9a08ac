"""MLP training speed and memory: barenet vs PyTorch CPU, measured in the same run.

Model 784-256-ReLU-10, cross-entropy, SGD(lr=0.1, momentum=0.9), batch 128, float32, one
shuffled epoch of the 60,000 MNIST training images. Target: barenet no slower than PyTorch
with 2 threads; peak RSS of the barenet training process (dataset included) under 1 GB.

Each measurement runs in its own subprocess (so neither framework's thread pools, caches or
allocator state affect the other), alternating barenet / torch / barenet / torch ... and
keeping the best of ``--repeats``. A float32 matmul (sgemm) peak is measured in the same
run, also in subprocesses, and each epoch is reported as a fraction of it.

    BARENET_DATA=/work/shared/data python benchmarks/bench_mlp.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SIZES = (784, 256, 10)
BATCH, LR, MOMENTUM = 128, 0.1, 0.9


def load_mnist(data_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``n`` training images as float32 in [0, 1], shape (n, 784), and int64 labels."""
    folder = data_dir / "mnist"
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16)  # IDX header: 16 bytes for images
    with gzip.open(folder / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)  # 8 for labels
    x = raw.reshape(-1, SIZES[0])[:n].astype(np.float32)
    x *= np.float32(1 / 255)
    return x, labels[:n]


def epoch_flops(n: int) -> float:
    """Nominal FLOPs of one epoch: forward GEMMs 2*n*sum(in*out), backward twice that."""
    macs = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=False))
    return 3 * 2 * n * macs


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat; (0, 0) where unavailable."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


class Timed:
    """Times a section; also how busy the machine was with *other* processes meanwhile
    (all busy CPU time minus this process's own), as a fraction of all cores."""

    def __enter__(self) -> Timed:
        self.ticks = cpu_ticks()
        self.own = self._own()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        busy, total = (b - a for a, b in zip(self.ticks, cpu_ticks(), strict=True))
        hz = os.sysconf("SC_CLK_TCK")
        self.cpu_seconds = self._own() - self.own
        other = busy / hz - self.cpu_seconds
        self.background = max(0.0, other / (total / hz)) if total else float("nan")

    @staticmethod
    def _own() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime


def summary(timer: Timed, batch_times: list[float], losses: list[float], dtype: str) -> dict:
    return {
        "seconds": timer.seconds,
        # median batch x number of batches: robust to bursts of load from other processes
        "median_epoch": float(np.median(batch_times)) * len(batch_times),
        "cpu_seconds": timer.cpu_seconds,
        "background": timer.background,
        "final_loss": float(np.mean(losses[-50:])),
        "dtype": dtype,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -- workers (each runs in its own subprocess and prints one JSON line) ------------------------


def timed_batches(step: Callable[[Any], float], perm: Any) -> tuple[list[float], list[float]]:
    """Run ``step(batch indices)`` over ``perm`` in batches of BATCH: (losses, seconds each)."""
    losses, times = [], []
    for start in range(0, len(perm), BATCH):
        t0 = time.perf_counter()
        losses.append(step(perm[start : start + BATCH]))
        times.append(time.perf_counter() - t0)
    return losses, times


def worker_barenet(args: argparse.Namespace) -> dict:
    import barenet
    from barenet import nn
    from barenet.optim import SGD

    x, y = load_mnist(Path(args.data), args.n)
    rng = np.random.default_rng(args.seed)
    model = nn.Sequential(
        nn.Linear(SIZES[0], SIZES[1], init="default", rng=rng),
        nn.ReLU(),
        nn.Linear(SIZES[1], SIZES[2], init="default", rng=rng),
    )
    # The input is data: Sequential skips dL/dx of the first layer, as torch does for a
    # tensor that doesn't require grad (--input-grad asks for it, to measure its cost).
    model.input_grad = args.input_grad
    loss_fn = nn.CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step(idx: np.ndarray) -> float:
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        return loss

    barenet.set_num_threads(args.threads)  # barenet's own threads (BLAS stays at one)
    timed_batches(step, rng.permutation(len(x))[: 10 * BATCH])  # warm-up: threads, allocator
    perm = rng.permutation(len(x))
    with Timed() as timer:
        losses, times = timed_batches(step, perm)
    return summary(timer, times, losses, str(model[0].weight.data.dtype))


def worker_torch(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xn, yn = load_mnist(Path(args.data), args.n)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    model = torch.nn.Sequential(
        torch.nn.Linear(SIZES[0], SIZES[1]),
        torch.nn.ReLU(),
        torch.nn.Linear(SIZES[1], SIZES[2]),
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    gen = torch.Generator().manual_seed(args.seed)

    def step(idx: torch.Tensor) -> float:
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    timed_batches(step, torch.randperm(len(x), generator=gen)[: 10 * BATCH])
    perm = torch.randperm(len(x), generator=gen)
    with Timed() as timer:
        losses, times = timed_batches(step, perm)
    return summary(timer, times, losses, str(model[0].weight.dtype))


def worker_peak(args: argparse.Namespace) -> dict:
    """Best-of-k float32 square matmul GFLOP/s, NumPy's BLAS and torch's, both at --threads."""
    import torch
    from threadpoolctl import threadpool_limits

    n = args.gemm_size
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    out = np.empty_like(a)

    def best(f) -> float:
        f()
        times = []
        for _ in range(args.gemm_repeats):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return 2 * n**3 / min(times) / 1e9

    with threadpool_limits(args.threads):
        numpy_gflops = best(lambda: np.matmul(a, b, out=out))
    torch.set_num_threads(args.threads)
    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
    torch_gflops = best(lambda: torch.mm(ta, tb, out=tout))
    return {"numpy_gflops": numpy_gflops, "torch_gflops": torch_gflops}


WORKERS = {"barenet": worker_barenet, "torch": worker_torch, "peak": worker_peak}


# -- driver ------------------------------------------------------------------------------------


def spawn(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--data", args.data]
    cmd += ["--n", str(args.n), "--threads", str(args.threads), "--seed", str(args.seed)]
    cmd += ["--gemm-size", str(args.gemm_size), "--gemm-repeats", str(args.gemm_repeats)]
    cmd += ["--input-grad"] if args.input_grad else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.environ.get("BARENET_DATA"), help="default $BARENET_DATA")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs per framework")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads")
    p.add_argument("--n", type=int, default=60_000, help="training samples per epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gemm-size", type=int, default=2048)
    p.add_argument("--gemm-repeats", type=int, default=8)
    p.add_argument(
        "--input-grad", action="store_true", help="barenet: also compute dL/dx of the first layer"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 6,000 samples, 1 repeat")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.data is None:
        p.error("set BARENET_DATA or pass --data (folder holding mnist/*.gz)")
    if args.quick:
        args.n, args.repeats, args.gemm_size, args.gemm_repeats = 6_000, 1, 1024, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    runs: dict[str, list[dict]] = {"barenet": [], "torch": [], "peak": []}
    for r in range(args.repeats):
        for kind in ("peak", "barenet", "torch"):
            runs[kind].append(spawn(kind, args))
            if kind != "peak":
                d = runs[kind][-1]
                print(
                    f"repeat {r + 1}/{args.repeats} {kind:8s} {d['seconds']:7.3f} s "
                    f"(median batch x batches {d['median_epoch']:.3f} s, "
                    f"CPU time {d['cpu_seconds']:.3f} s, "
                    f"other processes {100 * d['background']:.0f}% of the CPUs)"
                )
    np_peak = max(p["numpy_gflops"] for p in runs["peak"])
    torch_peak = max(p["torch_gflops"] for p in runs["peak"])
    peak = max(np_peak, torch_peak)
    flops = epoch_flops(args.n)
    best = {k: min(runs[k], key=lambda d: d["seconds"]) for k in ("barenet", "torch")}
    best_median = {k: min(d["median_epoch"] for d in runs[k]) for k in ("barenet", "torch")}
    ratio = best["barenet"]["seconds"] / best["torch"]["seconds"]
    ratio_median = best_median["barenet"] / best_median["torch"]

    print(
        f"\nMLP {'-'.join(map(str, SIZES))}, batch {BATCH}, SGD momentum {MOMENTUM}, "
        f"{args.n} samples, {args.threads} threads, best of {args.repeats}"
    )
    print(
        f"float32 sgemm peak ({args.gemm_size}^3): numpy {np_peak:.1f} GFLOP/s, "
        f"torch {torch_peak:.1f} GFLOP/s; epoch = {flops / 1e9:.1f} GFLOP (3x forward)"
    )
    header = f"{'framework':10s} {'epoch s':>8s} {'median s':>8s} {'GFLOP/s':>8s} {'% peak':>7s} "
    header += f"{'others':>6s} {'RSS MB':>7s} {'loss':>6s} dtype"
    print(header)
    for name, d in best.items():
        gflops = flops / d["seconds"] / 1e9
        print(
            f"{name:10s} {d['seconds']:8.3f} {best_median[name]:8.3f} {gflops:8.1f} "
            f"{100 * gflops / peak:6.1f}% {100 * d['background']:5.0f}% "
            f"{d['peak_rss_mb']:7.0f} {d['final_loss']:6.3f} {d['dtype']}"
        )
    print(
        "(epoch s: best wall time; median s: best of median batch time x batches; "
        "others: CPU share used by other processes during that best epoch)"
    )
    rss = best["barenet"]["peak_rss_mb"]
    print(
        f"barenet / torch time ratio: {ratio:.2f} (median-based {ratio_median:.2f}; "
        f"target <= 1.00: {'met' if ratio <= 1.0 else 'NOT met'}); barenet peak RSS {rss:.0f} MB "
        f"(target < 1024 MB: {'met' if rss < 1024 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
