"""barenet.checkpoint and barenet.fileio: atomic writes, weights round trips, loud failures."""

from __future__ import annotations

import os

import numpy as np
import pytest

from barenet import fileio
from barenet.checkpoint import CheckpointError, load_into, load_model_file, save_model
from barenet.errors import FileError
from barenet.fileio import (
    atomic_write_bytes,
    atomic_write_text,
    load_json,
    load_yaml,
    save_json,
    save_yaml,
)
from barenet.nn import Linear, ReLU, Sequential


def mlp(sizes, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Linear(a, b, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def only_file(folder):
    return sorted(p.name for p in folder.iterdir())


# -- atomic writes --------------------------------------------------------------
def test_atomic_write_creates_parents_and_overwrites(tmp_path):
    target = tmp_path / "a" / "b" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert only_file(target.parent) == ["f.txt"]


@pytest.mark.parametrize("writer", ["bytes", "model"])
def test_crash_during_replace_keeps_old_file_and_no_temp(tmp_path, monkeypatch, writer):
    target = tmp_path / "w.safetensors"
    model = mlp([3, 4, 2])
    save_model(target, model, {"epoch": 1})
    before = target.read_bytes()

    def boom(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        if writer == "bytes":
            atomic_write_bytes(target, b"new contents")
        else:
            save_model(target, mlp([3, 4, 2], seed=1), {"epoch": 2})
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert only_file(tmp_path) == ["w.safetensors"]
    _, meta = load_model_file(target)
    assert meta["epoch"] == 1


def test_crash_during_write_cleans_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    save_json(target, {"a": 1})

    def bad_fsync(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", bad_fsync)
    with pytest.raises(OSError):
        save_json(target, {"a": 2})
    monkeypatch.undo()
    assert load_json(target) == {"a": 1}
    assert only_file(tmp_path) == ["x.json"]


# -- model files ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_round_trip_weights_and_metadata(tmp_path, dtype, suffix):
    model = mlp([5, 7, 3], seed=3, dtype=dtype)
    meta = {
        "epoch": np.int64(4),
        "val_accuracy": np.float32(0.75),
        "config": {"model": {"hidden": [7]}, "lr": 0.1, "name": "mlp"},
        "diverged": float("nan"),
    }
    path = save_model(tmp_path / f"m{suffix}", model, meta)
    state, got = load_model_file(path)
    ref = model.state_dict()
    assert sorted(state) == sorted(ref)
    for k in ref:
        assert state[k].dtype == np.dtype(dtype)
        assert state[k].flags.writeable
        np.testing.assert_array_equal(state[k], ref[k])
    assert got["epoch"] == 4
    assert got["val_accuracy"] == pytest.approx(0.75)
    assert got["config"] == {"model": {"hidden": [7]}, "lr": 0.1, "name": "mlp"}
    assert got["diverged"] is None  # strict JSON: NaN stored as null


def test_load_into_copies_weights(tmp_path):
    src, dst = mlp([4, 6, 2], seed=1), mlp([4, 6, 2], seed=2)
    save_model(tmp_path / "m.safetensors", src, {"epoch": 9})
    meta = load_into(dst, tmp_path / "m.safetensors")
    assert meta["epoch"] == 9
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(dst(x), src(x))


def test_state_dict_input_and_foreign_metadata(tmp_path):
    import safetensors.numpy

    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_model(tmp_path / "d.safetensors", state)
    got, meta = load_model_file(tmp_path / "d.safetensors")
    np.testing.assert_array_equal(got["w"], state["w"])
    assert meta == {}
    # A file from another tool: plain string metadata is passed through.
    (tmp_path / "o.safetensors").write_bytes(
        safetensors.numpy.save(state, metadata={"format": "np"})
    )
    assert load_model_file(tmp_path / "o.safetensors")[1] == {"format": "np"}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda good: None, id="missing"),
        pytest.param(lambda good: b"", id="empty"),
        pytest.param(lambda good: b"this is not a checkpoint at all", id="garbage"),
        pytest.param(lambda good: good[: len(good) - 5], id="truncated-data"),
        pytest.param(lambda good: good[:20], id="truncated-header"),
        pytest.param(lambda good: good[:8] + b"[" + good[9:], id="corrupt-header"),
        pytest.param(lambda good: b"\xff" * 8 + good[8:], id="corrupt-length"),
        pytest.param(lambda good: b"PK\x03\x04" + good, id="fake-zip"),
    ],
)
def test_bad_files_raise_checkpoint_error_naming_file(tmp_path, make):
    save_model(tmp_path / "good.safetensors", mlp([3, 2]), {"epoch": 1})
    good = (tmp_path / "good.safetensors").read_bytes()
    path = tmp_path / "bad_file.safetensors"
    data = make(good)
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        load_model_file(path)
    msg = str(info.value)
    assert "bad_file.safetensors" in msg
    assert "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_npz_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, w=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="obj.npz"):
        load_model_file(path)


def test_load_into_other_architecture_names_the_key(tmp_path):
    save_model(tmp_path / "a.safetensors", mlp([4, 6, 2]))
    dst = mlp([4, 8, 2])
    before = {k: v.copy() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_into(dst, tmp_path / "a.safetensors")
    msg = str(info.value)
    assert "a.safetensors" in msg and ("'0.weight'" in msg or "'0.bias'" in msg)
    for k, v in dst.state_dict().items():  # nothing copied
        np.testing.assert_array_equal(v, before[k])
    # Different depth: missing / unexpected names.
    with pytest.raises(CheckpointError, match=r"missing.*4\.weight"):
        load_into(mlp([4, 6, 5, 2]), tmp_path / "a.safetensors")


def test_load_into_dtype_mismatch(tmp_path):
    save_model(tmp_path / "f64.safetensors", mlp([3, 2], dtype=np.float64))
    with pytest.raises(CheckpointError, match=r"f64\.safetensors.*dtype.*'0\.(weight|bias)'"):
        load_into(mlp([3, 2], dtype=np.float32), tmp_path / "f64.safetensors")
    load_into(mlp([3, 2]), tmp_path / "f64.safetensors", check_dtype=False)  # opt-out casts


# -- JSON / YAML ----------------------------------------------------------------
def test_json_yaml_round_trip(tmp_path):
    obj = {"b": [1, 2.5, None], "a": {"x": np.float64(0.5), "y": "s"}, "p": tmp_path / "q"}
    save_json(tmp_path / "o.json", obj)
    save_yaml(tmp_path / "o.yaml", obj)
    expect = {"b": [1, 2.5, None], "a": {"x": 0.5, "y": "s"}, "p": str(tmp_path / "q")}
    assert load_json(tmp_path / "o.json") == expect
    assert load_yaml(tmp_path / "o.yaml") == expect
    assert list(load_yaml(tmp_path / "o.yaml")) == ["b", "a", "p"]  # order kept


def test_json_strict_and_unsupported_types(tmp_path):
    save_json(tmp_path / "n.json", {"v": float("inf"), "w": np.array([1.0, np.nan])})
    assert "Infinity" not in (tmp_path / "n.json").read_text()
    assert load_json(tmp_path / "n.json") == {"v": None, "w": [1.0, None]}
    with pytest.raises(TypeError):
        fileio.to_jsonable({"f": object()})


@pytest.mark.parametrize(
    "loader,name,text",
    [
        (load_json, "broken.json", '{"a": 1,'),
        (load_yaml, "broken.yaml", "a: [1, 2\nb: : :"),
        (load_json, "missing.json", None),
        (load_yaml, "missing.yaml", None),
    ],
)
def test_malformed_side_files(tmp_path, loader, name, text):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(FileError) as info:
        loader(tmp_path / name)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_load_state_from_memory_names_source(tmp_path):
    from barenet.checkpoint import load_state

    state, _ = load_model_file(save_model(tmp_path / "s.safetensors", mlp([3, 5, 2], seed=4)))
    dst = mlp([3, 5, 2], seed=5)
    load_state(dst, state, tmp_path / "s.safetensors")
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    del state["2.bias"]
    with pytest.raises(CheckpointError, match=r"s\.safetensors.*missing.*2\.bias"):
        load_state(dst, state, tmp_path / "s.safetensors")


def test_zero_dim_buffers_keep_their_shape(tmp_path):
    from barenet.nn import BatchNorm2d

    bn = BatchNorm2d(3)
    bn.forward(np.random.default_rng(0).random((4, 3, 5, 5)).astype(np.float32))
    save_model(tmp_path / "bn.safetensors", bn, {})
    state, _ = load_model_file(tmp_path / "bn.safetensors")
    assert state["num_batches_tracked"].shape == ()
    fresh = BatchNorm2d(3)
    load_into(fresh, tmp_path / "bn.safetensors")
    assert int(fresh.state_dict()["num_batches_tracked"]) == 1
    np.testing.assert_array_equal(
        fresh.state_dict()["running_mean"], bn.state_dict()["running_mean"]
    )


# -- bounded reads --------------------------------------------------------------------------
def test_read_header_reads_no_data(tmp_path):
    from barenet.checkpoint import read_header

    for suffix in (".safetensors", ".npz"):
        path = tmp_path / f"m{suffix}"
        save_model(path, mlp([5, 4, 3], dtype=np.float64), {"epoch": 7, "nested": {"a": [1]}})
        head = read_header(path)
        assert head.tensors == {
            "0.weight": (np.dtype("float64"), (4, 5)),
            "0.bias": (np.dtype("float64"), (4,)),
            "2.weight": (np.dtype("float64"), (3, 4)),
            "2.bias": (np.dtype("float64"), (3,)),
        }
        assert head.metadata == {"epoch": 7, "nested": {"a": [1]}}
        assert head.data_bytes == 8 * (20 + 4 + 12 + 3) and head.file_size == path.stat().st_size


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder"])
def test_not_a_regular_file_is_refused_without_reading(tmp_path, kind):
    path = tmp_path / "model.safetensors"
    {"dev-zero": lambda: path.symlink_to("/dev/zero"), "fifo": lambda: os.mkfifo(path),
     "folder": path.mkdir}[kind]()  # fmt: skip
    with pytest.raises(CheckpointError, match="model.safetensors.*(not a regular file|a folder)"):
        load_model_file(path)


def test_file_larger_or_smaller_than_its_header_or_the_cap(tmp_path):
    import struct

    path = tmp_path / "m.safetensors"
    save_model(path, mlp([30, 20]))
    good = path.read_bytes()
    path.write_bytes(good + b"\0")
    with pytest.raises(CheckpointError, match="declares .* bytes but the file holds"):
        load_model_file(path)
    path.write_bytes(struct.pack("<Q", 1 << 30) + good[8:])
    with pytest.raises(CheckpointError, match="header length 1,073,741,824 is impossible"):
        load_model_file(path)
    path.write_bytes(good)
    with pytest.raises(CheckpointError, match="more than the 100 allowed"):
        load_model_file(path, max_bytes=100)
    assert load_model_file(path, max_bytes=len(good))[0]["0.weight"].shape == (20, 30)


def test_check_count_before_building(tmp_path):
    from barenet.checkpoint import check_count

    state = mlp([3, 2]).state_dict()
    check_count(state, 8, "w.safetensors")
    with pytest.raises(CheckpointError, match="holds 8 values but the model its config"):
        check_count(state, 9, "w.safetensors")


def test_full_disk_names_the_target_not_its_temporary(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        save_model(tmp_path / "m.safetensors", mlp([3, 2]))
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(tmp_path / "m.safetensors")
    assert only_file(tmp_path) == []
