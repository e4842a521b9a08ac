"""runtime: the allocator setting applied at import, and its opt-out."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from barenet import runtime


def test_keep_freed_memory_applies_on_glibc_only():
    # True exactly where glibc's mallopt exists (the Linux CI); False, never an error,
    # elsewhere.
    assert runtime.keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize(
    ("env", "calls"), [(None, 1), ("1", 1), ("yes", 1), ("0", 0), ("false", 0), (" Off ", 0)]
)
def test_apply_defaults_honours_the_opt_out(monkeypatch, env, calls):
    seen = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: seen.append(1) or True)
    if env is None:
        monkeypatch.delenv("BARENET_KEEP_FREED_MEMORY", raising=False)
    else:
        monkeypatch.setenv("BARENET_KEEP_FREED_MEMORY", env)
    runtime.apply_defaults()
    assert len(seen) == calls


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_are_reused_after_import():
    # After `import barenet`, a freed 8 MB block comes back at the same address instead of
    # being unmapped and mapped afresh (each time page-faulting its memory in again).
    code = (
        "import numpy as np, barenet\n"
        "a = np.ones(2 << 20, np.float32); p = a.ctypes.data; del a\n"
        "b = np.ones(2 << 20, np.float32); print(int(b.ctypes.data == p))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
