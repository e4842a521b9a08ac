"""Property-based tests: any bytes given to a reader give a valid result or the project's own
error (a UserError subclass), within bounded time and memory.

Memory is bounded by construction in these tests: every reader is given (or defaults to) a
cap far below what a hostile header could ask for, and hypothesis' deadline bounds the time
of each example. The CLI-level probes with measured RSS are in test_hostile.py.
"""

from __future__ import annotations

import gzip
import json
import math
import struct

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barenet import checkpoint
from barenet.builders import build_model
from barenet.checkpoint import CheckpointError, load_model_file, read_header, save_model
from barenet.config import ConfigError, load_config, safe_name, to_dict, validate
from barenet.data.idx import IDX_DTYPES, DataError, parse_idx, read_idx
from barenet.errors import UserError
from barenet.runner import load_run, model_metadata

SETTINGS = settings(
    max_examples=150,
    deadline=2000,  # ms per example: a reader that decompresses or allocates too much fails
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure is reproducible
    database=None,  # and nothing written to .hypothesis/
)
CAP = 1 << 20  # what the readers may allocate in these tests


# -- IDX ----------------------------------------------------------------------------------------
@st.composite
def idx_files(draw) -> bytes:
    """Plausible IDX files: a real header (sometimes broken), dims up to 2**32, any payload."""
    code = draw(st.sampled_from([*IDX_DTYPES, 0x07, 0x00]))
    dims = draw(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), min_size=0, max_size=5))
    ndim = draw(st.sampled_from([len(dims), len(dims) + 1, 255]) if dims else st.just(0))
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x1f\x8b"]))
    header = magic + bytes([code, ndim % 256]) + b"".join(struct.pack(">I", d) for d in dims)
    itemsize = IDX_DTYPES[code].itemsize if code in IDX_DTYPES else 1
    want = math.prod(dims) * itemsize if dims else 0
    extra = draw(st.integers(-8, 8))
    n = max(0, min(want, 4096) + extra) if want <= 4096 else draw(st.integers(0, 64))
    return header + draw(st.binary(min_size=n, max_size=n))


def _check_idx(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        arr = read_idx(path, max_bytes=CAP)
    except DataError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert isinstance(arr, np.ndarray) and arr.nbytes <= CAP and not arr.flags.writeable
    # A file that reads must decode the same way from memory.
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    np.testing.assert_array_equal(parse_idx(raw, max_bytes=CAP), arr)


@SETTINGS
@given(data=st.binary(max_size=512))
def test_idx_any_bytes(tmp_path, data):
    _check_idx(tmp_path / "f", data)


@SETTINGS
@given(data=idx_files(), compress=st.booleans(), cut=st.integers(0, 30))
def test_idx_mutated_headers_raw_and_gzip(tmp_path, data, compress, cut):
    if compress:
        data = gzip.compress(data, mtime=0)
        data = data[: len(data) - cut] if cut < 10 else data  # sometimes a cut stream
    _check_idx(tmp_path / "f.gz", data)


def test_idx_gzip_bomb_is_refused_after_the_declared_size(tmp_path):
    """A valid 10-byte header then 64 MiB of zeros (in a 64 kB gzip) is refused, and the
    refusal costs no more than the declared 784 bytes plus a chunk."""
    header = b"\x00\x00\x08\x03" + struct.pack(">III", 1, 28, 28)
    body = gzip.compress(header + bytes(64 << 20), compresslevel=9, mtime=0)
    path = tmp_path / "bomb.gz"
    path.write_bytes(body)
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


# -- checkpoints ------------------------------------------------------------------------------
def _good_file(tmp_path) -> bytes:
    cfg = load_config(None, ["model.sizes=[784, 8, 10]"])
    model = build_model(cfg.model, 0)
    path = tmp_path / "good.safetensors"
    save_model(path, model, model_metadata(cfg, epoch=1))
    return path.read_bytes()


def _check_checkpoint(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        state, meta = load_model_file(path, max_bytes=CAP)
    except CheckpointError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert isinstance(meta, dict)
    assert all(isinstance(v, np.ndarray) and v.flags.writeable for v in state.values())
    head = read_header(path)
    assert {k: (v.dtype, v.shape) for k, v in state.items()} == head.tensors


@SETTINGS
@given(data=st.binary(max_size=512))
def test_checkpoint_any_bytes(tmp_path, data):
    _check_checkpoint(tmp_path / "m.safetensors", data)


@SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), max_size=6))
def test_checkpoint_byte_flips_in_header(tmp_path, flips):
    data = bytearray(_good_file(tmp_path))
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    _check_checkpoint(tmp_path / "m.safetensors", bytes(data))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def header_mutations(draw):
    """(field path, new value) edits of a real safetensors header's JSON."""
    target = draw(st.sampled_from(["shape", "dtype", "data_offsets", "entry", "metadata"]))
    huge = st.integers(0, 2**64) | st.sampled_from([10_000_000, 2**40])
    value = {
        "shape": st.lists(huge | st.integers(-3, 40), max_size=4) | JSONISH,
        "dtype": st.sampled_from(["F32", "F64", "I64", "U8", "BF16", "F8_E4M3", "x"]) | JSONISH,
        "data_offsets": st.lists(huge | st.integers(-3, 4000), max_size=3) | JSONISH,
        "entry": JSONISH,
        "metadata": JSONISH,
    }[target]
    return target, draw(value), draw(st.integers(0, 3)), draw(st.integers(-16, 16))


@SETTINGS
@given(edit=header_mutations())
def test_checkpoint_header_mutations(tmp_path, edit):
    target, value, which, length_delta = edit
    good = _good_file(tmp_path)
    (n,) = struct.unpack("<Q", good[:8])
    table = json.loads(good[8 : 8 + n])
    names = sorted(k for k in table if k != "__metadata__")
    name = names[which % len(names)]
    if target == "entry":
        table[name] = value
    elif target == "metadata":
        table["__metadata__"] = value
    else:
        table[name][target] = value
    text = json.dumps(table).encode()
    data = struct.pack("<Q", max(0, len(text) + (length_delta if which == 0 else 0)))
    _check_checkpoint(tmp_path / "m.safetensors", data + text + good[8 + n :])


@SETTINGS
@given(sizes=st.lists(st.integers(1, 2**31), min_size=2, max_size=4), keep=st.booleans())
def test_load_run_with_any_config_in_the_metadata(tmp_path, sizes, keep):
    """Whatever architecture a (small) weights file's metadata claims, load_run refuses it
    with a UserError before allocating it, or loads it."""
    good = _good_file(tmp_path)
    (n,) = struct.unpack("<Q", good[:8])
    table = json.loads(good[8 : 8 + n])
    meta = json.loads(table["__metadata__"][checkpoint.METADATA_KEY])
    meta["config"]["model"]["sizes"] = [784, 8, 10] if keep else [784, *sizes[1:-1], 10]
    table["__metadata__"][checkpoint.METADATA_KEY] = json.dumps(meta)
    text = json.dumps(table).encode()
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + good[8 + n :])
    try:
        cfg, model = load_run(run)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert cfg.model.sizes == [784, 8, 10] and model.num_parameters() == 784 * 8 + 8 + 8 * 10 + 10


# -- configs ----------------------------------------------------------------------------------
SECTIONS = {
    "data": ["dataset", "data_dir", "val_fraction", "subset", "augment", "preprocess"],
    "model": ["type", "sizes", "blocks", "dense", "input_shape", "dropout", "batch_norm"],
    "optim": ["name", "lr", "momentum", "betas", "eps", "weight_decay"],
    "schedule": ["name", "milestones", "gamma", "warmup_epochs", "patience"],
    "train": ["epochs", "batch_size", "clip_grad_norm", "early_stopping", "dtype"],
}
VALUES = (
    JSONISH
    | st.lists(st.integers(-5, 2**40), max_size=4)
    | st.sampled_from([".inf", "-.inf", ".nan", "1e-3", "1e400", "true", "../..", "/abs"])
    | st.lists(st.fixed_dictionaries({"channels": st.integers(-1, 10**6)}), max_size=3)
)


@st.composite
def configs(draw) -> dict:
    data: dict = {}
    for section, keys in SECTIONS.items():
        if draw(st.booleans()):
            data[section] = {k: draw(VALUES) for k in draw(st.lists(st.sampled_from(keys)))}
    if draw(st.booleans()):
        data[draw(st.sampled_from(["name", "seed", "bogus"]))] = draw(VALUES)
    return data


def _check_config(path, text: str) -> None:
    path.write_text(text)
    try:
        cfg = load_config(path)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert validate(to_dict(cfg)) == cfg  # what loads is a fixed point of the round trip
    safe_name(cfg.name)


@SETTINGS
@given(data=configs())
def test_config_any_values_at_real_keys(tmp_path, data):
    _check_config(tmp_path / "c.yaml", yaml.safe_dump(data))


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("{}[]:,-&*!|>'\"#%@ \n\tab01.~?")), max_size=200))
def test_config_any_yaml_text(tmp_path, text):
    _check_config(tmp_path / "c.yaml", text)


@pytest.mark.parametrize(
    "text, needle",
    [
        (
            "a: &a [1,1,1,1,1,1,1,1,1]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "too large",
        ),
        ("a: &a [*a]\n", "too large"),  # a list that contains itself
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("optim:\n  lr: 0.1\n  lr: 0.2\n", "duplicate key 'lr'"),
        ("optim: {lr: 0.1}\noptim: {lr: 0.2}\n", "duplicate key 'optim'"),
        ("!!python/object/apply:os.system ['true']\n", "malformed YAML"),
    ],
)
def test_config_hostile_yaml(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)
    assert needle in str(exc.value)
