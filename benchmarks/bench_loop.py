"""The README loop, barenet vs PyTorch: one MNIST epoch per model, idle or with a busy process.

barenet runs EXACTLY the loop of the README's "Use it from Python" (DataLoader, forward,
``loss_fn``, ``model.backward(loss_fn.backward())``, ``opt.step(); opt.zero_grad()``, SGD
lr 0.1 momentum 0.9 weight decay 1e-4, batch 128) with the model swapped; PyTorch the same
loop as a PyTorch user writes it (seeded ``randperm``, ``x[idx]``, ``loss.backward()``).
``--trainer`` adds barenet's trainer path (``Trainer.fit``, one epoch) beside it. Models:
``mlp`` 784-256-10, ``lenet`` LeNet-5, ``convnet`` Keras' mnist_convnet without dropout
(Conv2d(1,32,3) ReLU MaxPool2d(2) Conv2d(32,64,3) ReLU MaxPool2d(2) Flatten Linear(1600,10)).

Each run is its own subprocess; frameworks alternate; the best of ``--repeats`` is kept.
``--busy`` starts one CPU-bound process (``while True: pass``) for the whole measurement.

    python benchmarks/bench_loop.py                       # 3 models, 1 and 2 threads, idle
    python benchmarks/bench_loop.py --models mlp --threads 2 --busy
    python benchmarks/bench_loop.py --quick               # 1/10 epoch, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

BATCH, LR, MOMENTUM, WD = 128, 0.1, 0.9, 1e-4
TARGETS = {"mlp": 0.8, "lenet": 1.0, "convnet": 1.0}  # README loop, 2 threads, idle
WARMUP = 5  # batches run before the clock starts (threads, allocator, first touches)


def barenet_model(name: str):
    from barenet import nn

    if name == "mlp":
        return nn.Sequential(nn.Linear(784, 256, rng=1), nn.ReLU(), nn.Linear(256, 10, rng=2))
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2, rng=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, rng=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120, rng=3), nn.ReLU(), nn.Linear(120, 84, rng=4), nn.ReLU(),
            nn.Linear(84, 10, rng=5),
        )  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, rng=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, rng=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(1600, 10, rng=3),
    )  # fmt: skip


def torch_model(name: str):
    from torch import nn

    if name == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 10),
    )  # fmt: skip


def mnist(n: int, flat: bool) -> tuple[np.ndarray, np.ndarray]:
    """The README's data: standardized MNIST training images, (n, 784) or (n, 1, 28, 28)."""
    from barenet.data import load, preprocess

    images, labels = load("mnist", split="train")
    x = preprocess(images, "standardize", dataset="mnist")
    x = x.reshape(len(images), -1) if flat else x.reshape(len(images), 1, 28, 28)
    return x[:n], labels[:n]


def run_barenet(model_name: str, n: int, threads: str, trainer: bool) -> dict:
    import barenet
    from barenet import nn, optim
    from barenet.data import DataLoader

    barenet.set_num_threads(threads if threads == "auto" else int(threads))
    x, labels = mnist(n, model_name == "mlp")
    model = barenet_model(model_name)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    warm = DataLoader(x[: WARMUP * BATCH], labels[: WARMUP * BATCH], batch_size=BATCH)
    loader = DataLoader(x, labels, batch_size=BATCH, shuffle=True, rng=np.random.default_rng(0))
    if trainer:
        from barenet.train import Trainer

        fit = Trainer(model, loss_fn, opt, progress=False)
        fit.fit(warm, epochs=1)
        t0, c0 = time.perf_counter(), time.process_time()
        history = fit.fit(loader, epochs=1)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"seconds": seconds, "cpu": cpu, "loss": history.epochs[-1]["loss"]}
    for xb, yb in warm:
        loss_fn(model(xb), yb)
        model.backward(loss_fn.backward())
        opt.step(); opt.zero_grad()  # noqa: E702  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    for xb, yb in loader:  # the README loop
        loss = loss_fn(model(xb), yb)  # float
        model.backward(loss_fn.backward())  # fills p.grad
        opt.step(); opt.zero_grad()  # noqa: E702  # fmt: skip
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu": cpu, "loss": loss, "threads_used": barenet.threads.usage()}


def run_torch(model_name: str, n: int, threads: str) -> dict:
    import torch

    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    xn, yn = mnist(n, model_name == "mlp")
    x, y = torch.from_numpy(np.ascontiguousarray(xn)), torch.from_numpy(yn.astype(np.int64))
    model = torch_model(model_name)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    gen = torch.Generator().manual_seed(0)

    def epoch(idx_all: torch.Tensor) -> float:
        for i in range(0, len(idx_all), BATCH):
            idx = idx_all[i : i + BATCH]
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            opt.zero_grad()
        return loss.item()

    epoch(torch.arange(WARMUP * BATCH))
    t0, c0 = time.perf_counter(), time.process_time()
    loss = epoch(torch.randperm(len(x), generator=gen))
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "loss": loss}


@contextmanager
def busy_process(on: bool):
    """One CPU-bound competitor (a second job, a browser tab) while the block runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def spawn(kind: str, model: str, n: int, threads: str) -> dict:
    """One measurement in a fresh process: kind is barenet, trainer or torch."""
    cmd = [sys.executable, __file__, "--worker", kind, "--models", model, "--n", str(n)]
    cmd += ["--threads", threads]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # each side sets its own count
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} {model} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(kinds: list[str], model: str, n: int, threads: str, repeats: int) -> dict:
    """Best wall seconds per kind over ``repeats`` alternating rounds, scaled to a full
    epoch; also the best CPU seconds (``kind + " cpu"``), a steadier measure of the work
    done when other jobs share the machine."""
    best = {k: float("inf") for k in kinds} | {k + " cpu": float("inf") for k in kinds}
    for r in range(repeats):
        for kind in kinds:
            d = spawn(kind, model, n, threads)
            secs, cpu = d["seconds"] * 60_000 / n, d["cpu"] * 60_000 / n
            best[kind], best[kind + " cpu"] = min(best[kind], secs), min(best[kind + " cpu"], cpu)
            extra = f" threads used {d['threads_used']}" if d.get("threads_used") else ""
            print(
                f"  {model:8s} {threads:>4s} thr round {r + 1}: {kind:8s} {secs:7.2f} s/epoch "
                f"(CPU {cpu:.2f} s, loss {d['loss']:.3f}){extra}",
                flush=True,
            )
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="mlp,lenet,convnet", help="comma-separated")
    p.add_argument("--threads", default="1,2", help="comma-separated counts, both frameworks")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n", type=int, default=60_000, help="training images per epoch")
    p.add_argument("--busy", action="store_true", help="one busy competing process")
    p.add_argument("--trainer", action="store_true", help="also barenet's Trainer.fit path")
    p.add_argument("--quick", action="store_true", help="6,000 images, 1 repeat")
    p.add_argument("--worker", choices=("barenet", "trainer", "torch"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.repeats = 6_000, 1
    if a.worker:
        if a.worker == "torch":
            result = run_torch(a.models, a.n, a.threads)
        else:
            result = run_barenet(a.models, a.n, a.threads, a.worker == "trainer")
        print(json.dumps(result))
        return 0
    kinds = ["barenet", "torch"] + (["trainer"] if a.trainer else [])
    rows = []
    with busy_process(a.busy):
        for model in a.models.split(","):
            for threads in a.threads.split(","):
                rows.append((model, threads, measure(kinds, model, a.n, threads, a.repeats)))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    cond = "one busy competing process" if a.busy else "no competing process of ours"
    print(f"\nOne MNIST epoch, batch {BATCH}, best of {a.repeats}; {cond}; load avg {load}")
    head = f"{'model':8s} {'threads':>7s} {'barenet s':>9s} {'torch s':>8s} {'ratio':>6s}"
    head += f" {'trainer s':>9s} {'ratio':>6s}" if a.trainer else ""
    print(head + f" {'CPU ratio':>9s}  target (README loop; at 2 threads: idle)")
    for model, threads, best in rows:
        line = f"{model:8s} {threads:>7s} {best['barenet']:9.2f} {best['torch']:8.2f} "
        line += f"{best['barenet'] / best['torch']:6.2f}"
        if a.trainer:
            line += f" {best['trainer']:9.2f} {best['trainer'] / best['torch']:6.2f}"
        line += f" {best['barenet cpu'] / best['torch cpu']:9.2f}"
        target = TARGETS[model] if threads == "2" else 1.0
        print(f"{line}  <= {target:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
