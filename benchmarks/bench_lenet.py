"""LeNet-5 training speed: barenet vs PyTorch, one epoch of MNIST-shaped data.

Each framework runs in its own subprocess (no shared BLAS or allocator state), alternating
barenet / torch, best of ``--repeats``; torch with ``--threads`` (2) threads, barenet's
BLAS with the same unless ``--barenet-threads`` says otherwise. The step is forward,
cross-entropy, backward and an SGD-momentum update, batch 128, float32, on random data of
MNIST's shape (speed does not depend on the values). Like torch's autograd, barenet skips
the gradient w.r.t. the images (``Sequential.backward`` without ``input_grad``) unless
``--full-backward``.

    python benchmarks/bench_lenet.py                 # full epoch, 3 repeats each
    python benchmarks/bench_lenet.py --batches 60 --repeats 2
    python benchmarks/bench_lenet.py --barenet-threads 1
    python benchmarks/bench_lenet.py --profile       # barenet ms per layer, forward/backward
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from barenet import nn
from barenet.optim import SGD

SAMPLES, BATCH = 60000, 128


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random MNIST-shaped inputs (n, 1, 28, 28) float32 and labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def lenet_barenet(first_input_grad: bool = False) -> nn.Sequential:
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, rng=rng),
        nn.ReLU(),
        nn.Linear(120, 84, rng=rng),
        nn.ReLU(),
        nn.Linear(84, 10, rng=rng),
    )
    # torch's autograd never computes the gradient w.r.t. the data; neither does Sequential
    # unless asked.
    model.input_grad = first_input_grad
    return model


def run_barenet(batches: int, threads: int, profile: bool, full_backward: bool) -> float:
    import barenet

    barenet.set_num_threads(threads)  # barenet's own threads (BLAS stays at one)
    model = lenet_barenet(full_backward)
    loss_fn = nn.CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = data(batches * BATCH)
    times = _instrument(model) if profile else None

    def step(i: int) -> None:
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        opt.zero_grad()
        loss_fn(model.forward(xb), yb)
        model.backward(loss_fn.backward())
        opt.step()

    step(0)  # warm-up: first-touch allocations, BLAS thread start
    if times is not None:
        for v in times.values():
            v[:] = [0.0, 0.0]
    t0 = time.perf_counter()
    for i in range(batches):
        step(i)
    total = time.perf_counter() - t0
    if times is not None:
        _report(model, times, total, batches)
    return total


def _instrument(model: nn.Sequential) -> dict[int, list[float]]:
    """Wrap each layer's forward/backward with timers: {layer index: [fwd s, bwd s]}."""
    times: dict[int, list[float]] = {}
    for k, layer in enumerate(model.layers):
        times[k] = [0.0, 0.0]
        for slot, name in ((0, "forward"), (1, "backward")):
            fn = getattr(layer, name)

            def timed(a, _fn=fn, _acc=times[k], _slot=slot):
                t = time.perf_counter()
                out = _fn(a)
                _acc[_slot] += time.perf_counter() - t
                return out

            setattr(layer, name, timed)
    return times


def _report(
    model: nn.Sequential, times: dict[int, list[float]], total: float, batches: int
) -> None:
    ms = 1e3 / batches
    print(f"{'layer':40s} {'fwd ms':>8s} {'bwd ms':>8s}  (per batch)", file=sys.stderr)
    for k, layer in enumerate(model.layers):
        f, b = times[k]
        print(f"{k:2d} {repr(layer)[:37]:37s} {f * ms:8.3f} {b * ms:8.3f}", file=sys.stderr)
    layers = sum(f + b for f, b in times.values())
    print(
        f"layers {layers * ms:.3f} ms, loss+optimizer {(total - layers) * ms:.3f} ms, "
        f"step {total * ms:.3f} ms",
        file=sys.stderr,
    )


def run_torch(batches: int, threads: int) -> float:
    import torch
    from torch import nn as tnn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(400, 120),
        tnn.ReLU(),
        tnn.Linear(120, 84),
        tnn.ReLU(),
        tnn.Linear(84, 10),
    )
    loss_fn = tnn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xn, yn = data(batches * BATCH)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)

    def step(i: int) -> None:
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()

    step(0)
    t0 = time.perf_counter()
    for i in range(batches):
        step(i)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    full = -(-SAMPLES // BATCH)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="runs per framework (best is kept)")
    p.add_argument("--batches", type=int, default=full, help=f"batches per run (epoch = {full})")
    p.add_argument("--threads", type=int, default=2, help="torch threads (and barenet's BLAS)")
    p.add_argument(
        "--barenet-threads",
        type=int,
        help="barenet's BLAS threads if different: OpenBLAS threading of these small GEMMs "
        "collapses when other jobs occupy the cores",
    )
    p.add_argument("--profile", action="store_true", help="per-layer barenet timings, then exit")
    p.add_argument(
        "--full-backward",
        action="store_true",
        help="barenet also computes the (unused) gradient w.r.t. the input images",
    )
    p.add_argument("--worker", choices=("barenet", "torch"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker or a.profile:
        if a.worker == "torch":
            secs = run_torch(a.batches, a.threads)
        else:
            secs = run_barenet(a.batches, a.threads, a.profile, a.full_backward)
        print(json.dumps({"seconds": secs}))
        return
    best = {"barenet": float("inf"), "torch": float("inf")}
    scale = full / a.batches
    threads = {"barenet": a.barenet_threads or a.threads, "torch": a.threads}
    for r in range(a.repeats):
        for fw in best:
            cmd = [sys.executable, __file__, "--worker", fw]
            cmd += ["--batches", str(a.batches), "--threads", str(threads[fw])]
            cmd += ["--full-backward"] if a.full_backward else []
            env = dict(os.environ, OMP_NUM_THREADS=str(threads[fw]))
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            secs = json.loads(out.stdout.strip().splitlines()[-1])["seconds"] * scale
            best[fw] = min(best[fw], secs)
            print(f"run {r + 1}: {fw:8s} {secs:7.2f} s/epoch", flush=True)
    # Other jobs on a shared machine slow both sides (multi-threaded BLAS/OpenMP badly so
    # when cores are oversubscribed): the load average says how far to trust the ratio.
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"LeNet-5, batch {BATCH}, threads barenet {threads['barenet']} / torch {a.threads}, "
        f"best of {a.repeats} (load {load}): "
        f"barenet {best['barenet']:.2f} s/epoch, torch {best['torch']:.2f} s/epoch, "
        f"barenet/torch = {best['barenet'] / best['torch']:.2f}"
    )


if __name__ == "__main__":
    main()
