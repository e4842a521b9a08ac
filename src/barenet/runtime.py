"""Process-wide speed setting: how the C allocator treats the arrays a step frees.

Every forward and backward pass allocates fresh activation and gradient arrays of the
same sizes as the step before. glibc's malloc hands large freed blocks back to the
kernel (``munmap``, or trimming the heap top), so each step page-faults its megabytes in
again: on LeNet-5 that was 3.5 of 13.3 ms per training step. Keeping freed blocks for
reuse removes it; peak memory is unchanged, the process just does not shrink after a peak.

``import barenet`` applies this once; set ``BARENET_KEEP_FREED_MEMORY=0`` to opt out.
Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import os

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Blocks up to this size come from the heap and are reused (32 MiB is glibc's ceiling on
# 64-bit); larger ones, such as whole datasets, are still mapped and unmapped.
MMAP_THRESHOLD = 32 << 20
# Free memory the heap may keep at its top before giving it back.
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory(
    mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD
) -> bool:
    """Make glibc's malloc keep freed blocks below ``mmap_threshold`` bytes for reuse and
    trim the heap only when more than ``trim_threshold`` bytes are free at its top.
    True if applied, False where there is no glibc ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    return mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok


def apply_defaults() -> None:
    """What ``import barenet`` does: ``keep_freed_memory()`` unless the environment says
    ``BARENET_KEEP_FREED_MEMORY=0``."""
    if os.environ.get("BARENET_KEEP_FREED_MEMORY", "1") != "0":
        keep_freed_memory()
