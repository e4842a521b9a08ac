"""``train.tensorboard: true``: the event files hold the scalars, histograms and images."""

from __future__ import annotations

import struct
from collections import defaultdict

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from barenet.config import load_config
from barenet.rundir import TENSORBOARD_DIR
from barenet.runner import train_run
from barenet.train.tensorboard import SCALARS, first_layer_images


def read_events(log_dir):
    """Every Event in the folder's event files, parsed from the TFRecord framing
    (u64 length, u32 crc, payload, u32 crc)."""
    events = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack_from("<Q", data, pos)
            payload = data[pos + 12 : pos + 12 + length]
            events.append(event_pb2.Event.FromString(payload))
            pos += 12 + length + 4
    return events


def by_tag(events):
    """tag -> [(step, summary value)]."""
    out = defaultdict(list)
    for e in events:
        for v in e.summary.value:
            out[v.tag].append((e.step, v))
    return out


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("tb") / "run"
    cfg = load_config(
        None,
        [
            "data.subset=0.03",
            "train.epochs=2",
            "model.sizes=[784, 16, 10]",
            "train.tensorboard=true",
        ],
    )
    train_run(cfg, out, progress=False, evaluate_test=False)
    return out


def test_scalars_match_the_history(tb_run):
    tags = by_tag(read_events(tb_run / TENSORBOARD_DIR))
    rows = (tb_run / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    history = [dict(zip(header, r.split(","), strict=True)) for r in rows[1:]]
    for key in SCALARS:
        steps = [s for s, _ in tags[key]]
        assert steps == [1, 2], key
        logged = [v.simple_value for _, v in tags[key]]
        np.testing.assert_allclose(logged, [float(h[key]) for h in history], rtol=1e-5)


def test_weight_and_gradient_histograms(tb_run):
    tags = by_tag(read_events(tb_run / TENSORBOARD_DIR))
    for name, size in (("0.weight", 16 * 784), ("0.bias", 16), ("2.weight", 160), ("2.bias", 10)):
        for kind in ("weights", "gradients"):
            hist = [v.histo for _, v in tags[f"{kind}/{name}"]]
            assert len(hist) == 2 and all(h.num == size for h in hist), (kind, name)
            assert hist[0].min <= hist[0].max
        grads = tags[f"gradients/{name}"][-1][1].histo
        assert grads.sum_squares > 0  # a real gradient, not the zeroed buffer
    img = tags["first_layer"][-1][1].image
    assert (img.height, img.width) != (0, 0)


def test_training_unchanged_by_tensorboard(tb_run, tmp_path):
    """The gradient probe runs in eval mode and leaves grads zero: same history without it."""
    cfg = load_config(None, ["data.subset=0.03", "train.epochs=2", "model.sizes=[784, 16, 10]"])
    train_run(cfg, tmp_path / "plain", progress=False, evaluate_test=False)
    a = (tb_run / "history.csv").read_text().splitlines()
    b = (tmp_path / "plain" / "history.csv").read_text().splitlines()
    time_col = a[0].split(",").index("time")

    def drop_time(rows):
        return [[c for i, c in enumerate(r.split(",")) if i != time_col] for r in rows]

    assert drop_time(a) == drop_time(b)


def test_first_layer_images_for_conv_and_dense():
    from barenet.nn import Conv2d, Linear, Sequential

    rng = np.random.default_rng(0)
    conv = Sequential(Conv2d(1, 6, 5, rng=rng))
    img = first_layer_images(conv, None)
    assert img.shape == (6, 1, 5, 5) and img.min() == 0 and np.allclose(img.max(axis=(1, 2, 3)), 1)
    dense = Sequential(Linear(784, 100, rng=rng))
    assert first_layer_images(dense, (28, 28)).shape == (64, 1, 28, 28)
    assert first_layer_images(dense, None) is None


def test_missing_tensorboardx_is_one_clear_user_error(monkeypatch, tmp_path):
    import sys

    from barenet.errors import UserError
    from barenet.train.tensorboard import TensorBoard

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    # "in barenet's folder": `-e .` means the current folder, which may be any other
    with pytest.raises(UserError, match=r"pip install -e '\.\[tensorboard\]' in barenet's folder"):
        TensorBoard(tmp_path)


def test_missing_tensorboardx_said_before_training_starts(monkeypatch, tmp_path, capsys):
    """barenet train with train.tensorboard: true and no tensorboardX stops before it says
    'training ...', makes a run folder or loads data."""
    import sys

    from barenet.cli import main

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    out = tmp_path / "run"
    assert main(["train", "--set", "train.tensorboard=true", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "training" not in captured.out and "tensorboardX" in captured.err
    assert not out.exists()
