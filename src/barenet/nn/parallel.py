"""barenet's own threads: heavy layer work split into tasks fixed by the shapes alone.

OpenBLAS runs single-threaded inside barenet (``pin_blas``, applied by ``import barenet``)
and the layers cut their GEMMs and im2col blocks into tasks whose boundaries depend only
on the array shapes. ``run(tasks)`` executes them on ``get_num_threads()`` threads (the
calling one included) that claim tasks one at a time. Two consequences, both measured:

- **Bits do not depend on the thread count.** Every task does the same arithmetic on the
  same slice whoever runs it, and partial sums are combined in task order, so 1, 2 or 8
  threads give bit-identical weights. (OpenBLAS's own threading does not: its results for
  the same product differ between 1 and 2 threads.)
- **No collapse on a busy machine.** OpenBLAS's threads spin in lock-step, so with another
  busy process a 2-thread GEMM waits for whichever thread lost its core (LeNet-5: 2-7x
  slower). Here a thread that gets no CPU simply claims fewer tasks; the caller runs the
  rest itself.
"""

from __future__ import annotations

import _thread
import itertools
import os
import queue
import threading
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

# A GEMM below this many multiply-adds (m*n*k) is one task: ~0.05 ms of single-core work,
# where waking a second thread costs about as much as it saves.
SERIAL_MNK = 1 << 21
# Target multiply-adds per task above it: ~0.3 ms single-core, so a thread that loses its
# core holds back little work while each block stays large enough for OpenBLAS's full
# speed. (The MLP's 128x784x256 GEMMs in 2 blocks rather than 4: the README loop 3% faster
# at one thread, 1% at two; 4 blocks of 64 columns ran at ~80 against ~100 GFLOP/s.)
TASK_MNK = 1 << 24
MAX_TASKS = 16

_threads = 1
_workers: list[queue.SimpleQueue] = []
_lock = threading.Lock()


def _reset_after_fork() -> None:  # the child has no worker threads, only their queues
    global _workers, _lock
    _workers, _lock = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def pin_blas() -> bool:
    """Run BLAS single-threaded in this process (barenet parallelises itself). True if a
    BLAS library was found and set."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    controller = ThreadpoolController()
    controller.limit(limits=1, user_api="blas")
    return bool(controller.select(user_api="blas").lib_controllers)


def set_threads(n: int) -> None:
    """Use ``n`` >= 1 threads (the caller plus n - 1 workers, started on first use)."""
    global _threads
    n = int(n)
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    _threads = n


def get_threads() -> int:
    return _threads


class _Job:
    """Tasks claimed one at a time by whichever thread asks next.

    Claiming and counting use ``itertools.count`` (one atomic step under the GIL) and the
    end is signalled by releasing a plain lock: no Lock/Event objects built per job, which
    measured as a visible share of the GIL time of a LeNet-5 step (~40 runs per step)."""

    __slots__ = ("tasks", "claim", "finish", "done", "error")

    def __init__(self, tasks: Sequence[Callable[[], object]]) -> None:
        self.tasks = tasks
        self.claim, self.finish = itertools.count().__next__, itertools.count(1).__next__
        self.done = _thread.allocate_lock()
        self.done.acquire()  # released by whoever finishes the last task
        self.error: BaseException | None = None

    def work(self) -> None:
        tasks, n = self.tasks, len(self.tasks)
        while (i := self.claim()) < n:
            try:
                tasks[i]()
            except BaseException as e:  # re-raised in the calling thread
                self.error = e
            if self.finish() == n:
                self.done.release()


def _worker(jobs: queue.SimpleQueue) -> None:
    while True:
        jobs.get().work()


def run(tasks: Sequence[Callable[[], object]]) -> None:
    """Run every task once, on up to ``get_threads()`` threads; returns when all are done."""
    helpers = min(_threads, len(tasks)) - 1
    if helpers <= 0:
        for task in tasks:
            task()
        return
    with _lock:
        while len(_workers) < helpers:
            q: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=_worker, args=(q,), daemon=True, name="barenet").start()
            _workers.append(q)
    job = _Job(tasks)
    for q in _workers[:helpers]:
        q.put(job)
    job.work()
    job.done.acquire()
    if job.error is not None:
        raise job.error


def split(total: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering [0, total), boundaries multiples of ``align``."""
    step = -(-total // max(1, parts))
    step = -(-step // align) * align
    return [(lo, min(total, lo + step)) for lo in range(0, total, step)]


def n_tasks(work: int, max_tasks: int = MAX_TASKS) -> int:
    """Tasks for ``work`` multiply-adds: 1 below SERIAL_MNK, else ~work / TASK_MNK (>= 2)."""
    if work < SERIAL_MNK:
        return 1
    parts = max(2, min(max_tasks, work // TASK_MNK))
    # an even count: two threads (the common laptop and CI case) get equal shares; 3 tasks
    # on 2 threads keep one idle for a third of the GEMM (MLP 128x784x256: 4 tasks ~1.3 ms
    # against 3 tasks ~1.4-2.1 ms at 2 threads, the same at 1 thread).
    return parts + 1 if parts % 2 and parts < max_tasks else parts


# Element-wise work on arrays this large (elements) is split between threads.
ELEMENTWISE_MIN = 1 << 18


def outer_slices(
    a: np.ndarray, axis: int | None = None, work: int | None = None
) -> list[tuple[slice, ...]]:
    """Index tuples cutting ``a`` along ``axis`` (default: its outermost axis in memory)
    into one part per thread, or one whole part at one thread or below ELEMENTWISE_MIN
    elements of ``work`` (default ``a.size``; e.g. a pooling's backward writes its input's
    size from a gradient a quarter of it). Only for exact work (comparisons, copies,
    products of two numbers): the split may then follow the thread count without changing
    a bit."""
    if axis is None:
        axis = max(range(a.ndim), key=lambda ax: abs(a.strides[ax])) if a.ndim else 0
    if _threads == 1 or (a.size if work is None else work) < ELEMENTWISE_MIN or a.ndim == 0:
        return [(slice(None),)]
    lead = (slice(None),) * axis
    return [(*lead, slice(lo, hi)) for lo, hi in split(a.shape[axis], min(a.shape[axis], _threads))]


def matmul(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    acc: np.ndarray | None = None,
    rows: bool | None = None,
    defer: list | None = None,
) -> np.ndarray:
    """``a @ b`` for 2-D arrays, cut into row (or column) blocks fixed by the shapes and run
    by ``run``: the same bits on any number of threads. ``rows`` cuts rows (True) or
    columns (False); by default the longer side. Row blocks of a C-ordered ``out`` are
    written in place, with no temporary.

    ``bias`` (n,) is added to every row, and with ``acc`` (m, n) the product is added into
    ``acc`` (``acc += a @ b``, returned): both inside each block's task, while the block
    is still in cache, and bit for bit what the separate additions would give.

    With ``defer`` (a list), the tasks are appended to it instead of run, and the array
    returned is filled once the caller runs them: two products in one ``run``, one
    wake-up of the threads instead of two.
    """
    m, k = a.shape
    n = b.shape[1]
    if out is None and acc is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))

    # np.dot, not np.matmul: NumPy's matmul keeps the GIL for some 2-D products, which
    # serialises the tasks (see conv.py); np.dot always releases it around the GEMM.
    def block(a: np.ndarray, b: np.ndarray, dst: np.ndarray, vec: np.ndarray | None) -> None:
        if acc is not None:
            dst += np.dot(a, b)
            if vec is not None:
                dst += vec
        elif vec is None and dst.flags.c_contiguous:
            np.dot(a, b, out=dst)
        elif vec is None:
            dst[...] = np.dot(a, b)
        else:
            np.add(np.dot(a, b), vec, out=dst)

    dst_all = out if acc is None else acc
    parts = n_tasks(m * n * k)
    if parts == 1:
        if defer is None:
            block(a, b, dst_all, bias)
        else:
            defer.append(partial(block, a, b, dst_all, bias))
        return dst_all
    rows = m >= n if rows is None else rows

    def part(lo: int, hi: int) -> None:
        if rows:
            block(a[lo:hi], b, dst_all[lo:hi], bias)
        else:
            block(a, b[:, lo:hi], dst_all[:, lo:hi], None if bias is None else bias[lo:hi])

    tasks = [partial(part, lo, hi) for lo, hi in split(m if rows else n, parts, 16)]
    if defer is None:
        run(tasks)
    else:
        defer += tasks
    return dst_all
