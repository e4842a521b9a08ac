"""How many threads barenet computes with: fixed, or ``"auto"`` (measured while training).

barenet runs BLAS single-threaded and splits its layers' work into tasks itself
(``barenet.nn.parallel``), so the thread count changes speed, never the bits. That makes it
safe to choose the count while a run is going, which ``"auto"`` (the default) does:

- every optimizer step is timed (``Optimizer.step`` calls ``tick``); the count is tried at
  each candidate (``2, 1`` on two cores) for a few steps and the fastest median kept;
- it re-checks when the median step time of the last WINDOW steps rises above SLOWDOWN x
  what the chosen count measured (the machine got busier) and every RECHECK steps anyway
  (it may have become idle again).

``set_num_threads(n)`` fixes the count (torch's name); ``cap(n)`` sets a ceiling that later
settings cannot exceed (search and experiment worker processes call ``cap(1)`` so N workers
share N cores). The environment sets the default: ``BARENET_NUM_THREADS`` (a number or
``auto``), else ``OMP_NUM_THREADS`` as a fixed count, else ``auto``.
"""

from __future__ import annotations

import os
import statistics
import time

from .nn import parallel

TRIAL_STEPS = 5  # timed steps per candidate (after one untimed step to settle)
WINDOW = 30  # steps whose median is compared with the chosen count's
SLOWDOWN = 1.3
RECHECK = 1000  # steps between re-checks on a steady machine

Setting = int | str


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class AutoThreads:
    """The ``"auto"`` policy: explore the candidate counts, keep the fastest, re-check."""

    def __init__(self, candidates: list[int]) -> None:
        self.candidates = candidates
        self.used: dict[int, int] = {}  # thread count -> steps run with it
        self._last: float | None = None
        self._explore()

    def _explore(self) -> None:
        self._queue = list(self.candidates)  # counts still to try, then exploit
        self._trial: dict[int, float] = {}
        self._times: list[float] = []
        self._skip = 1
        self._since_check = 0
        parallel.set_threads(self._queue[0])

    def tick(self, now: float | None = None) -> None:
        """One training step ended (call once per step)."""
        now = time.perf_counter() if now is None else now
        last, self._last = self._last, now
        n = parallel.get_threads()
        self.used[n] = self.used.get(n, 0) + 1
        if last is None:
            return
        if self._skip:  # first step at a new count: threads start, caches refill
            self._skip -= 1
            return
        self._times.append(now - last)
        if self._queue:
            if len(self._times) >= TRIAL_STEPS:
                self._trial[self._queue.pop(0)] = statistics.median(self._times)
                self._times, self._skip = [], 1
                if self._queue:
                    parallel.set_threads(self._queue[0])
                else:
                    best = min(self._trial, key=self._trial.__getitem__)
                    self.best_time = self._trial[best]
                    parallel.set_threads(best)
            return
        self._since_check += 1
        if len(self._times) >= WINDOW:
            slower = statistics.median(self._times) > SLOWDOWN * self.best_time
            self._times = []
            if slower or self._since_check >= RECHECK:
                self._explore()


_ceiling: int | None = None  # cap(n); None: any count asked for
_setting: Setting = "auto"
_auto: AutoThreads | None = None


def _candidates() -> list[int]:
    top = max(1, min(cpu_count(), _ceiling or cpu_count()))
    counts = {top, 1} | {2**i for i in range(1, top.bit_length()) if 2**i < top}
    return sorted(counts, reverse=True)


def set_num_threads(n: Setting) -> None:
    """Compute with ``n`` threads (an int >= 1, at most ``cap``), or ``"auto"``."""
    global _setting, _auto
    if n == "auto":
        _setting, _auto = "auto", AutoThreads(_candidates())
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be 'auto' or an int >= 1, got {n!r}")
    _setting, _auto = n, None
    parallel.set_threads(min(n, _ceiling or n))


def get_num_threads() -> int:
    """The number of threads barenet computes with right now."""
    return parallel.get_threads()


def get_setting() -> Setting:
    """What was asked for: ``"auto"`` or the fixed count."""
    return _setting


def cap(n: int | None) -> None:
    """Never use more than ``n`` threads from now on (worker processes call ``cap(1)``);
    ``None`` lifts the cap."""
    global _ceiling
    if n is not None and n < 1:
        raise ValueError(f"cap must be >= 1, got {n}")
    _ceiling = None if n is None else int(n)
    set_num_threads(_setting)


def tick() -> None:
    """One training step ended: lets ``"auto"`` time it (``Optimizer.step`` calls this)."""
    if _auto is not None:
        _auto.tick()


def usage() -> dict[int, int]:
    """Steps run at each thread count since the setting was last made (auto only)."""
    return dict(_auto.used) if _auto is not None else {}


def apply_defaults() -> None:
    """What ``import barenet`` does: BLAS single-threaded, the count from the environment."""
    parallel.pin_blas()
    value = os.environ.get("BARENET_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    value = (value or "auto").strip().lower()
    try:
        set_num_threads("auto" if value == "auto" else int(value))
    except ValueError:
        set_num_threads("auto")
