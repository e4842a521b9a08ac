"""`barenet lr-find`: the range test's plot and files, an unchanged config, and a suggestion
that trains the default MLP to >= 97.5% test accuracy in 3 epochs."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from barenet import fileio
from barenet.cli import main
from barenet.config import load_config
from barenet.diagnose.lrfind import LRFindResult
from barenet.rundir import LR_FIND_JSON, LR_FIND_PNG
from barenet.runner import train_run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist_mlp.yaml"


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    out = tmp_path_factory.mktemp("lrfind") / "find"
    before = hashlib.sha256(CONFIG.read_bytes()).hexdigest()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["lr-find", str(CONFIG), "--out", str(out)])
    assert code == 0
    assert hashlib.sha256(CONFIG.read_bytes()).hexdigest() == before  # config untouched
    return out, buf.getvalue()


def test_lr_find_writes_plot_and_record_and_prints_the_command(found) -> None:
    out, text = found
    png = (out / LR_FIND_PNG).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    rec = fileio.load_json(out / LR_FIND_JSON)
    lrs = np.array(rec["lrs"])
    assert np.all(np.diff(np.log(lrs)) > 0)  # exponential, increasing
    assert np.allclose(np.diff(np.log(lrs)), np.log(lrs[1] / lrs[0]))
    assert rec["diverged_at"] is not None  # the default range goes far enough to blow up
    m = re.search(r"^suggested lr: (\S+)$", text, re.M)
    assert m and float(m.group(1)) == rec["suggested_lr"]
    cmd = re.search(r"^train with: (.+)$", text, re.M).group(1)
    assert shlex.split(cmd) == [
        "barenet",
        "train",
        str(CONFIG),
        "--set",
        f"optim.lr={m.group(1)}",
    ]


def test_suggested_lr_trains_the_default_mlp_to_975_in_3_epochs(found, tmp_path) -> None:
    lr = fileio.load_json(found[0] / LR_FIND_JSON)["suggested_lr"]
    cfg = load_config(CONFIG, [f"optim.lr={lr}", "train.epochs=3"])
    with threadpool_limits(1):  # one BLAS thread: a busy machine cannot make it crawl
        metrics = train_run(cfg, tmp_path / "run", progress=False)
    assert metrics["test_accuracy"] >= 0.975, (lr, metrics["test_accuracy"])


def test_verdicts_cover_the_range() -> None:
    lrs = list(np.geomspace(1e-4, 1.0, 40))
    loss = [2.3 - 2.0 * np.exp(-((np.log10(x) + 1.5) ** 2)) for x in lrs]  # min at lr ~0.03
    res = LRFindResult(lrs, loss, loss, configured_lr=0.01, diverged_at=0.5)
    assert res.min_loss_lr == pytest.approx(0.0316, rel=0.15)
    assert res.verdict()[0] == "ok"
    for lr, status in ((0.1, "warn"), (0.6, "fail"), (1e-4, "warn"), (1e-6, "fail")):
        res.configured_lr = lr
        assert res.verdict()[0] == status, lr
    flat = LRFindResult(lrs, [2.3] * 40, [2.3] * 40, configured_lr=0.1)
    assert flat.verdict()[0] == "warn" and "not the problem" in flat.verdict()[1]


def test_lr_find_refuses_to_overwrite_and_bad_steps(found, capsys) -> None:
    assert main(["lr-find", str(CONFIG), "--out", str(found[0])]) == 2
    assert main(["lr-find", str(CONFIG), "--steps", "2"]) == 2
    assert main(["lr-find", str(CONFIG), "--lr-min", "1", "--lr-max", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("barenet: error:") for e in err)
