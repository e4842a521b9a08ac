"""A study journal that is not what a search wrote: a device, a FIFO, a huge sparse file,
garbage, hand-edited or impossible records. Each is refused with a FileError naming the file
(one line, exit 2 in the CLI), without reading without bound and without rewriting a file
that never was a journal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from barenet.errors import UserError
from barenet.search import SearchJob, make_storage, resolve_search, run_search

BASE = {"seed": 3, "model": {"sizes": [784, 16, 10]}, "train": {"epochs": 1, "batch_size": 64}}


def quick_train(cfg, out_dir, data_dir=None, extra_callbacks=(), progress=False, **kw):
    for cb in extra_callbacks:
        cb.on_epoch_end(None, 1, {"val_accuracy": cfg.optim.lr, "val_loss": 1.0})
    return {}


def quick_search(out: Path):
    s = resolve_search(
        {"base_config": BASE, "study": "q", "sampler": "grid", "space": {"optim.lr": [0.1, 0.2]}}
    )
    return run_search(SearchJob(s, out, train_fn=quick_train))


def refused(out: Path, *needles: str) -> str:
    with pytest.raises(UserError) as info:
        quick_search(out)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse-2-GiB"])
def test_a_journal_that_is_not_a_regular_file_of_sane_size(tmp_path, kind):
    # before: the FIFO hung the search, /dev/zero was read until the OOM killer came
    journal = tmp_path / "study.journal"
    if kind == "fifo":
        os.mkfifo(journal)
    elif kind == "dev-zero":
        journal.symlink_to("/dev/zero")
    else:
        with open(journal, "wb") as f:
            f.truncate(2 << 30)
    refused(tmp_path, "not a regular file" if kind != "sparse-2-GiB" else "bytes")


def test_a_file_without_one_valid_record_is_left_alone(tmp_path):
    # before: every line was "repaired" away and the file replaced by a new, empty study
    journal = tmp_path / "study.journal"
    journal.write_bytes(b"my notes, not a journal\n" * 3)
    refused(tmp_path, "not a study journal")
    assert journal.read_bytes() == b"my notes, not a journal\n" * 3


def test_a_deeply_nested_record_is_dropped_like_a_torn_one(tmp_path, capsys):
    # before: RecursionError, an internal error
    quick_search(tmp_path)
    journal = tmp_path / "study.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    result = quick_search(tmp_path)
    assert "removed 1 torn record(s)" in capsys.readouterr().err
    after = journal.read_bytes()
    assert after.startswith(whole) and b"[[[" not in after and result.states == {"COMPLETE": 2}


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: {k: v for k, v in r.items() if k != "study_id"} if r["op_code"] == 4 else r,
        lambda r: {**r, "op_code": 99} if r["op_code"] == 4 else r,
        lambda r: (
            {**r, "user_attr": {k: "{x" for k in r["user_attr"]}} if r["op_code"] == 2 else r
        ),  # fmt: skip
    ],
    ids=["missing-key", "unknown-op-code", "malformed-fingerprint"],
)
def test_impossible_records_name_the_journal(tmp_path, edit):
    # before: KeyError, AssertionError, JSONDecodeError from deep inside Optuna: exit 1
    quick_search(tmp_path)
    journal = tmp_path / "study.journal"
    records = [edit(json.loads(line)) for line in journal.read_bytes().splitlines()]
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))
    msg = refused(tmp_path, "corrupt")
    assert "journal" in msg or "study 'q'" in msg


def test_make_storage_refuses_a_device_given_as_storage(tmp_path):
    with pytest.raises(UserError, match="not a regular file"):
        make_storage("/dev/zero", tmp_path)


@pytest.mark.parametrize("values", ["[NaN, 0.1]", "[NaN]", "[]"])
def test_a_complete_trial_with_impossible_values_is_refused(tmp_path, values):
    # before: two values (or NaN) replayed fine, then the leaderboard died inside Optuna
    # ("not available during multi-objective optimization"), an internal error
    quick_search(tmp_path)
    journal = tmp_path / "study.journal"
    text = journal.read_text()
    assert '"values":[0.1]' in text.replace(" ", "")
    journal.write_text(
        text.replace('"values": [0.1]', f'"values": {values}', 1).replace(
            '"values":[0.1]', f'"values":{values}', 1
        )
    )
    refused(tmp_path, "study 'q' is corrupt: trial", "complete with values")


LOCK_AFTER_CTRL_C = """
import sys
from barenet.search.journal import JournalLock

lock = JournalLock(sys.argv[1])
lock.acquire()
real = lock._lock.release


def released_then_interrupted(*a, **k):
    real(*a, **k)
    raise KeyboardInterrupt  # Ctrl-C between the file lock and the thread lock


lock._lock.release = released_then_interrupted
try:
    lock.release()
except KeyboardInterrupt:
    pass
lock._lock.release = real
lock.acquire()  # the cleanup after an interrupt writes the leaderboard: locks again
lock.release()
print("ok")
"""


def test_ctrl_c_inside_the_journal_lock_does_not_hang_the_cleanup(tmp_path):
    # Before: the thread lock stayed held and the main thread's next acquire (the
    # leaderboard written after Ctrl-C) waited for itself forever.
    import subprocess
    import sys

    script = [sys.executable, "-c", LOCK_AFTER_CTRL_C, str(tmp_path / "j.lock")]
    try:
        p = subprocess.run(script, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the journal lock waited for itself")
    assert p.stdout == "ok\n", p.stderr
