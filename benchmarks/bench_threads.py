"""Thread choice: the default (``auto``) against every fixed count, idle and with a busy process.

The README loop (see ``bench_loop.py``) runs one MNIST epoch per measurement, each in its own
process, with ``barenet.set_num_threads("auto")`` (what ``import barenet`` does) and with each
fixed count, alternating, best of ``--repeats``; then again while one CPU-bound process
(``while True: pass``) competes for the cores. Target: auto within 1.2x of the best fixed
count in both conditions.

    python benchmarks/bench_threads.py                  # lenet and mlp, idle and busy
    python benchmarks/bench_threads.py --models lenet --quick
"""

from __future__ import annotations

import argparse
import os
import sys

from bench_loop import busy_process, spawn

TARGET = 1.2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="lenet,mlp", help="comma-separated (see bench_loop.py)")
    p.add_argument("--counts", default=f"1,{os.cpu_count() or 1}", help="fixed counts to try")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n", type=int, default=60_000, help="training images per epoch")
    p.add_argument("--quick", action="store_true", help="12,800 images, 2 repeats")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.repeats = 12_800, 2
    settings = ["auto", *dict.fromkeys(a.counts.split(","))]
    rows = []
    for busy in (False, True):
        with busy_process(busy):
            for model in a.models.split(","):
                best = {s: float("inf") for s in settings}
                used = {}
                for r in range(a.repeats):
                    for s in settings:
                        d = spawn("barenet", model, a.n, s)
                        secs = d["seconds"] * 60_000 / a.n
                        if secs < best[s]:
                            best[s], used[s] = secs, d.get("threads_used") or {}
                        print(
                            f"  {'busy' if busy else 'idle'} {model:8s} round {r + 1} "
                            f"threads {s:>4s}: {secs:7.2f} s/epoch {d.get('threads_used') or ''}",
                            flush=True,
                        )
                rows.append((busy, model, best, used["auto"]))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nREADME loop, one MNIST epoch, best of {a.repeats}; load avg now {load}")
    fixed = settings[1:]
    print(
        f"{'condition':9s} {'model':8s} "
        + " ".join(f"{'t=' + s:>8s}" for s in settings)
        + f" {'auto/best':>9s}  auto's steps per count"
    )
    for busy, model, best, used in rows:
        ratio = best["auto"] / min(best[s] for s in fixed)
        cond = "busy" if busy else "idle"
        line = f"{cond:9s} {model:8s} " + " ".join(f"{best[s]:8.2f}" for s in settings)
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"{line} {ratio:9.2f}  {used} (target <= {TARGET}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
