"""Benchmark ``barenet search`` (a benchmark, not a test; prints numbers, asserts nothing).

1. The reference 27-point grid (configs/search/mnist_grid.yaml: lr x hidden x L2 on a 10%
   subset) with 2 workers: wall time (target < 3 min on a 2-core machine).
2. Throughput: trials per minute with 1 and with 2 workers on the same smaller grid, and
   their ratio (target >= 1.7x).
3. Reproducibility: the 27-point grid run a second time into a fresh folder; the leaderboards
   (every column but seconds, host and folder) must be identical.

Each search runs as its own ``barenet search`` command, so the timings are what a user sees
(process start, data loading, worker spawn included). Every worker uses one BLAS thread.

    python benchmarks/bench_search.py [--data-dir DIR] [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "configs" / "search" / "mnist_grid.yaml"
VOLATILE = {"seconds", "host", "run_dir"}


def run(search: Path, out: Path, workers: int, data_dir: str | None) -> float:
    """Wall seconds of one ``barenet search`` command."""
    cmd = [
        sys.executable,
        "-m",
        "barenet.cli",
        "search",
        str(search),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--quiet",
    ]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def leaderboard(out: Path) -> list[dict[str, str]]:
    with open(out / "leaderboard.csv", newline="") as f:
        return list(csv.DictReader(f))


def stable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def variant(tmp: Path, name: str, **changes) -> Path:
    """A copy of the grid config with some options changed (base path made absolute)."""
    data = yaml.safe_load(GRID.read_text())
    data["base"] = str((GRID.parent / data["base"]).resolve())
    data.update(changes)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("BARENET_DATA"))
    ap.add_argument("--epochs", type=int, default=None, help="override the grid's epochs")
    ap.add_argument("--small-epochs", type=int, default=8, help="epochs of the smaller search")
    ap.add_argument("--quick", action="store_true", help="skip the second 27-point run")
    ap.add_argument("--no-grid", action="store_true", help="only the 1 vs 2 worker throughput")
    ap.add_argument("--keep", default=None, help="keep the output folders here")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench-search-"))
    tmp.mkdir(parents=True, exist_ok=True)
    grid_cfg = yaml.safe_load(GRID.read_text())
    epochs = args.epochs or grid_cfg["epochs"]
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; outputs in {tmp}")

    # 1. the reference grid with 2 workers
    grid = variant(tmp, "grid", epochs=epochs)
    if not args.no_grid:
        wall = run(grid, tmp / "grid-a", 2, args.data_dir)
        rows = leaderboard(tmp / "grid-a")
        done = sum(r["state"] == "COMPLETE" for r in rows)
        print(
            f"27-point grid, {epochs} epochs/trial, 10% subset, 2 workers: {wall:.1f} s "
            f"({wall / 60:.2f} min; target < 3 min); {done}/{len(rows)} complete"
        )
        print("top 3:")
        for r in rows[:3]:
            print(
                f"  lr={r['optim.lr']:<6} hidden={r['model.hidden']:<5} "
                f"wd={r['optim.weight_decay']:<7} val_accuracy {float(r['val_accuracy']):.4f}"
            )

    # 2. trials per minute, 1 vs 2 workers, same smaller search
    small = variant(
        tmp,
        "small",
        epochs=args.small_epochs,
        study="throughput",
        space={
            "optim.lr": [0.1, 0.01, 0.001],
            "model.hidden": [500, 1000],
            "optim.weight_decay": [1.0e-3, 1.0e-4],
        },
    )
    small_epochs = args.small_epochs
    rates = {}
    for workers in (1, 2):
        out = tmp / f"small-{workers}w"
        secs = run(small, out, workers, args.data_dir)
        n = len(leaderboard(out))
        rates[workers] = n / secs * 60
        print(
            f"{n} trials ({small_epochs} epochs each), {workers} worker(s): {secs:.1f} s "
            f"= {rates[workers]:.1f} trials/min"
        )
    print(f"speed-up 2 vs 1 worker: {rates[2] / rates[1]:.2f}x (target >= 1.7x)")
    same = stable(leaderboard(tmp / "small-1w")) == stable(leaderboard(tmp / "small-2w"))
    print(f"1-worker and 2-worker leaderboards identical: {same}")

    # 3. reproducibility of the 27-point leaderboard from its seed
    if not (args.quick or args.no_grid):
        wall_b = run(grid, tmp / "grid-b", 2, args.data_dir)
        same = stable(leaderboard(tmp / "grid-a")) == stable(leaderboard(tmp / "grid-b"))
        print(f"27-point grid again ({wall_b:.1f} s): leaderboard identical: {same}")


if __name__ == "__main__":
    main()
