"""ProgressBar: the terminal bar (throttled), plain per-epoch lines for logs, the notebook bar."""

from __future__ import annotations

import io
import subprocess
import sys
from types import SimpleNamespace

from rich.console import Console

from barenet.train import progress as progress_mod
from barenet.train.progress import ProgressBar, in_notebook

LOGS = {"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.6, "val_accuracy": 0.85}


def run_bar(bar, n_batches=1000, clock_step=0.01, monkeypatch=None, epochs=1):
    t = [0.0]

    def clock():
        t[0] += clock_step
        return t[0]

    if monkeypatch is not None:
        monkeypatch.setattr(progress_mod, "_clock", clock)
    trainer = SimpleNamespace(epochs=epochs, steps_per_epoch=n_batches)
    bar.on_train_begin(trainer)
    for epoch in range(1, epochs + 1):
        bar.on_epoch_begin(trainer, epoch)
        for b in range(1, n_batches + 1):
            logs = {"loss": 0.5, "accuracy": 0.9, "batch_loss": 0.4, "size": 8}
            bar.on_batch_end(trainer, b, logs)
        bar.on_epoch_end(trainer, epoch, LOGS | {"epoch": epoch, "lr": 0.01, "time": 2.25})
    bar.on_train_end(trainer, {})
    return bar


def test_terminal_bar_is_throttled_and_prints_the_epoch_line(monkeypatch):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    bar = run_bar(
        ProgressBar(console=console, stream=out, notebook=False),
        clock_step=0.01,
        monkeypatch=monkeypatch,
    )
    # 1000 batches over a fake 10 s: about one refresh per 0.1 s, not one per batch.
    assert 90 <= bar.refreshes <= 110
    text = out.getvalue()
    assert "epoch 1/1" in text and "loss 0.5 " in text and "accuracy 0.9000" in text
    assert "lr 1.00e-02" in text


def test_plain_lines_when_not_a_terminal():
    """No bar (nothing drawn on the console), one flushed plain line per epoch on the stream."""
    console_out, log = io.StringIO(), io.StringIO()
    bar = ProgressBar(console=Console(file=console_out, force_terminal=False), stream=log)
    run_bar(bar, n_batches=50, epochs=3)
    assert console_out.getvalue() == "" and bar.refreshes == 0
    lines = log.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1] == (
        "epoch 2/3  loss 0.5  accuracy 0.9000  val_loss 0.6  val_accuracy 0.8500  lr 1.00e-02  2.2s"
    )
    assert "\x1b" not in log.getvalue()  # no terminal escapes in a log file


def test_notebook_bar_uses_tqdm(monkeypatch):
    out = io.StringIO()
    bar = run_bar(
        ProgressBar(stream=out, notebook=True),
        n_batches=100,
        clock_step=0.06,
        monkeypatch=monkeypatch,
    )
    assert 25 <= bar.refreshes <= 55 and bar._tqdm is None  # throttled, closed at the end
    assert out.getvalue().startswith("epoch 1/1  loss 0.5")


def test_not_a_notebook_outside_a_kernel():
    assert not in_notebook()


def test_cli_train_redirected_prints_one_line_per_epoch(tmp_path, data_dir):
    """``barenet train > log``: a flushed line per epoch; ``--quiet`` silences them."""
    args = [
        sys.executable,
        "-m",
        "barenet.cli",
        "train",
        "--set",
        "data.subset=0.02",
        "--set",
        "train.epochs=2",
        "--set",
        "model.sizes=[784, 8, 10]",
    ]
    loud = subprocess.run(args + ["--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert loud.returncode == 0, loud.stderr
    epoch_lines = [ln for ln in loud.stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epoch_lines] == ["1/2", "2/2"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert f"  {key} " in epoch_lines[0]
    assert epoch_lines[0].endswith("s")
    quiet = subprocess.run(
        args + ["--quiet", "--out", str(tmp_path / "b")], capture_output=True, text=True
    )
    assert quiet.returncode == 0 and not any(
        ln.startswith("epoch ") for ln in quiet.stdout.splitlines()
    )
