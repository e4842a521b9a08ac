"""`barenet doctor`: the default config passes every check; each broken example config fails
on the check that names its cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from barenet.cli import main
from barenet.config import load_config
from barenet.diagnose.doctor import run_doctor

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [
    "input",
    "init_loss",
    "symmetry",
    "activations",
    "saturation",
    "dead_relu",
    "grad_norm",
    "update_ratio",
    "overfit_batch",
    "lr_range",
]


def test_default_config_passes_every_check(capsys) -> None:
    assert main(["doctor", str(ROOT / "configs" / "mnist_mlp.yaml"), "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert [c["check"] for c in checks] == CHECKS
    for c in checks:
        assert set(c) == {"check", "status", "detail", "value"}
        assert c["status"] == "ok", c
        assert isinstance(c["detail"], str) and c["detail"]
        assert c["value"] is None or isinstance(c["value"], float | int)
    lr = next(c for c in checks if c["check"] == "lr_range")
    assert 0.01 < lr["value"] < 0.1  # the suggested lr


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # every weight zero: identical units, no gradient below the output
        ("zero_init", {"symmetry": "fail", "grad_norm": "fail", "overfit_batch": "fail"}),
        # lr 10 instead of 0.1: diverges
        ("lr_too_high", {"lr_range": "fail", "update_ratio": "fail", "grad_norm": "fail"}),
        # six sigmoid layers, normal(0, 0.01) init: the gradient vanishes
        ("deep_sigmoid", {"grad_norm": "fail", "activations": "fail"}),
    ],
)
def test_broken_configs_fail_on_the_right_check(name: str, expected: dict[str, str]) -> None:
    cfg = load_config(ROOT / "examples" / "broken" / f"{name}.yaml")
    status = {c.check: c.status for c in run_doctor(cfg)}
    assert list(status) == CHECKS
    for check, want in expected.items():
        assert status[check] == want, (check, status)
    # the checks unrelated to the cause stay quiet
    assert status["input"] == "ok"
    if name != "zero_init":
        assert status["symmetry"] == "ok"


def test_doctor_prints_a_line_per_check_and_exits_1_on_a_fail(capsys) -> None:
    code = main(["doctor", str(ROOT / "configs" / "mnist_mlp.yaml"), "--set", "model.init=zeros"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("doctor: mnist-mlp")
    rows = out[1:-1]
    assert [r.split()[1] for r in rows] == CHECKS
    assert all(r.split()[0] in ("ok", "warn", "fail") for r in rows)
    assert out[-1].endswith("fail") and "0 fail" not in out[-1]


def test_doctor_bad_config_is_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("optim: {lr: -1}\n")
    assert main(["doctor", str(bad)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_update_ratio_healthy_means_the_band_the_watch_plot_shades():
    """One rule: 'healthy' only inside UPDATE_RATIO_HEALTHY (the watch plot's band); a
    1.2e-2 step is acceptable, not called healthy above a plot that shades up to 1e-2."""
    from barenet.diagnose.doctor import Steps, check_updates
    from barenet.diagnose.probe import UPDATE_RATIO_HEALTHY

    assert UPDATE_RATIO_HEALTHY == (1e-4, 1e-2)
    inside = check_updates(Steps([[1.0]], [[1e-3, 2e-3]], []))
    outside = check_updates(Steps([[1.0]], [[1.2e-2]], []))
    assert inside.status == outside.status == "ok"
    assert "healthy (~1e-3)" in inside.detail
    assert "acceptable" in outside.detail and "healthy (" not in outside.detail
