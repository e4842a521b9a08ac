"""Dataset lookup, validation, download (fetch monkeypatched: no network) and the real data."""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from barenet.data import CLASS_NAMES, DataError, datasets, load, search_dirs, write_idx

REAL_FETCH = datasets._fetch  # before any monkeypatching
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def make_split(folder: Path, split="train", n=20, label=None, gz=True, seed=0):
    """Write a small synthetic split; ``label`` fixes every label (to tell folders apart)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.full(n, label, np.uint8) if label is not None else np.arange(n, dtype=np.uint8) % 10
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{STEMS[split][0]}{suffix}", images)
    write_idx(folder / f"{STEMS[split][1]}{suffix}", labels)
    return images, labels


def _no_network(url, dest):
    raise OSError(f"network disabled in tests ({url})")


@pytest.fixture
def iso(tmp_path, monkeypatch):
    """Isolated lookup: fake HOME, no BARENET_DATA, no system folders, no network."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("BARENET_DATA", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"mnist": [], "fashion-mnist": []})
    monkeypatch.setattr(datasets, "_fetch", _no_network)
    return tmp_path


def test_load_from_dataset_folder_and_parent(iso):
    images, labels = make_split(iso / "parent" / "mnist", "test", n=13)
    for data_dir in (iso / "parent", iso / "parent" / "mnist", str(iso / "parent")):
        x, y = load("mnist", "test", data_dir=data_dir)
        assert x.dtype == np.uint8 and x.shape == (13, 28, 28)
        assert y.dtype == np.int64 and y.shape == (13,)
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, labels)
        assert not x.flags.writeable and not y.flags.writeable
        with pytest.raises(ValueError):
            x[0, 0, 0] = 1


def test_uncompressed_files_and_name_alias(iso):
    images, _ = make_split(iso / "fashion-mnist", gz=False)
    x, _ = load("fashion_mnist", data_dir=iso)
    np.testing.assert_array_equal(x, images)
    x, _ = load("Fashion-MNIST", data_dir=iso)
    np.testing.assert_array_equal(x, images)
    with pytest.raises(ValueError, match="unknown dataset"):
        load("cifar10", data_dir=iso)
    with pytest.raises(ValueError, match="unknown split"):
        load("mnist", "val", data_dir=iso)


def test_lookup_order(iso, monkeypatch):
    explicit, env, system = iso / "explicit", iso / "env", iso / "system"
    make_split(explicit / "fashion-mnist", label=1)
    make_split(env / "fashion-mnist", label=2)
    make_split(Path(os.environ["HOME"]) / ".cache" / "barenet" / "fashion-mnist", label=3)
    make_split(system, label=4)
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"mnist": [], "fashion-mnist": [system]})
    monkeypatch.setenv("BARENET_DATA", str(env))

    assert load("fashion-mnist", data_dir=explicit)[1][0] == 1  # explicit beats env
    assert load("fashion-mnist")[1][0] == 2  # env beats cache
    monkeypatch.delenv("BARENET_DATA")
    assert load("fashion-mnist")[1][0] == 3  # cache beats system
    for f in (Path(os.environ["HOME"]) / ".cache" / "barenet" / "fashion-mnist").iterdir():
        f.unlink()
    assert load("fashion-mnist")[1][0] == 4  # system folder last


@pytest.mark.parametrize("exists", [False, True])
def test_explicit_data_dir_is_authoritative(iso, monkeypatch, exists):
    """Data elsewhere (env, cache) is never used in place of an explicit folder."""
    env = iso / "env"
    make_split(env / "mnist", label=2)
    make_split(Path(os.environ["HOME"]) / ".cache" / "barenet" / "mnist", label=3)
    monkeypatch.setenv("BARENET_DATA", str(env))
    calls: list[str] = []
    monkeypatch.setattr(datasets, "_fetch", lambda url, dest: calls.append(url))
    explicit = iso / "explicit"
    if exists:
        explicit.mkdir()
    with pytest.raises(DataError) as exc:
        load("mnist", data_dir=explicit)
    msg = str(exc.value)
    assert msg.startswith(f"data folder {explicit} ")
    assert ("does not exist" if not exists else "does not hold the files") in msg
    assert str(env) not in msg and ".cache" not in msg and "\n" not in msg
    assert calls == []  # no download either


def test_search_dirs_order(iso, monkeypatch):
    monkeypatch.setenv("BARENET_DATA", "/env")
    home = Path(os.environ["HOME"])
    assert [str(d) for d in search_dirs("mnist")] == [
        "/env/mnist",
        str(home / ".cache/barenet/mnist"),
    ]
    assert [str(d) for d in search_dirs("mnist", "/explicit")] == ["/explicit/mnist", "/explicit"]


def test_not_found_message_lists_every_place(iso, monkeypatch):
    monkeypatch.setenv("BARENET_DATA", str(iso / "env"))
    with pytest.raises(DataError) as exc:
        load("mnist", "test", download=False)
    msg = str(exc.value)
    for d in search_dirs("mnist"):
        assert str(d) in msg
    assert "t10k-images-idx3-ubyte" in msg and "download disabled" in msg
    assert "BARENET_DATA" in msg and "--data-dir" in msg and "\n" not in msg

    # Downloads attempted but failing: same places, plus each URL tried and why.
    with pytest.raises(DataError) as exc:
        load("mnist", "test")
    msg = str(exc.value)
    assert str(iso / "env" / "mnist") in msg and "download failed" in msg
    assert datasets.MIRRORS["mnist"][0] in msg and datasets.MIRRORS["mnist"][1] in msg
    assert "network disabled" in msg and "BARENET_DATA" in msg


def test_fashion_not_found_lists_system_dir(iso, monkeypatch):
    sysdir = iso / "usr-share"
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"mnist": [], "fashion-mnist": [sysdir]})
    with pytest.raises(DataError, match=str(sysdir)):
        load("fashion-mnist", download=False)


def test_default_system_dir_is_debian_path():
    assert Path("/usr/share/datasets/fashion-mnist") in datasets.SYSTEM_DIRS["fashion-mnist"]


def test_count_mismatch(iso):
    folder = iso / "mnist"
    make_split(folder, n=20)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(DataError) as exc:
        load("mnist", data_dir=iso, download=False)
    msg = str(exc.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert "20 images but 19 labels" in msg


def test_label_out_of_range(iso):
    folder = iso / "mnist"
    make_split(folder, n=20)
    labels = np.arange(20, dtype=np.uint8) % 10
    labels[7] = 10
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: 1 labels out of range"):
        load("mnist", data_dir=iso, download=False)


def test_wrong_image_shape(iso):
    folder = iso / "mnist"
    make_split(folder, n=4)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 27), np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: expected uint8 images"):
        load("mnist", data_dir=iso, download=False)


def test_malformed_file_found_by_lookup_names_file(iso):
    folder = iso / "mnist"
    make_split(folder, n=4)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: corrupt gzip"):
        load("mnist", data_dir=iso, download=False)


def test_decoded_arrays_cached_and_refreshed_on_change(iso):
    make_split(iso / "mnist", n=10, seed=0)
    a = load("mnist", data_dir=iso)
    b = load("mnist", data_dir=iso)
    assert a[0] is b[0] and a[1] is b[1]
    images, _ = make_split(iso / "mnist", n=11, seed=1)  # rewritten: new size and mtime
    c = load("mnist", data_dir=iso)
    np.testing.assert_array_equal(c[0], images)


def _fake_server(files: dict[str, bytes], calls: list[str], bad_first_mirror=False):
    def fetch(url, dest):
        calls.append(url)
        name = url.rsplit("/", 1)[-1]
        if bad_first_mirror and url.startswith(datasets.MIRRORS["mnist"][0]):
            Path(dest).write_bytes(gzip.compress(b"not the right content"))
            return
        Path(dest).write_bytes(files[name])

    return fetch


def _synthetic_files(split="train", n=12):
    """Gzipped IDX bytes per served file name, and the md5 table of their uncompressed form."""
    rng = np.random.default_rng(5)
    arrays = {
        STEMS[split][0]: rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
        STEMS[split][1]: rng.integers(0, 10, size=n).astype(np.uint8),
    }
    served, md5 = {}, {}
    for stem, arr in arrays.items():
        header = bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
        raw = header + arr.tobytes()
        served[f"{stem}.gz"] = gzip.compress(raw)
        md5[stem] = hashlib.md5(raw).hexdigest()
    return arrays, served, md5


def test_download_with_patched_fetch(iso, monkeypatch):
    arrays, served, md5 = _synthetic_files("test")
    monkeypatch.setitem(datasets.MD5, "mnist", md5)
    calls: list[str] = []
    monkeypatch.setattr(datasets, "_fetch", _fake_server(served, calls))
    x, y = load("mnist", "test")
    np.testing.assert_array_equal(x, arrays[STEMS["test"][0]])
    np.testing.assert_array_equal(y, arrays[STEMS["test"][1]])
    cache = Path(os.environ["HOME"]) / ".cache" / "barenet" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(served)  # no temp files left
    assert calls == [datasets.MIRRORS["mnist"][0] + name for name in served]
    load("mnist", "test")
    assert len(calls) == 2  # found in the cache: no second download


def test_download_only_missing_file(iso, monkeypatch):
    arrays, served, md5 = _synthetic_files("train")
    monkeypatch.setitem(datasets.MD5, "mnist", md5)
    cache = Path(os.environ["HOME"]) / ".cache" / "barenet" / "mnist"
    cache.mkdir(parents=True)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(served["train-images-idx3-ubyte.gz"])
    calls: list[str] = []
    monkeypatch.setattr(datasets, "_fetch", _fake_server(served, calls))
    load("mnist")
    assert [c.rsplit("/", 1)[-1] for c in calls] == ["train-labels-idx1-ubyte.gz"]


def test_download_checksum_mismatch_falls_back_then_fails(iso, monkeypatch):
    arrays, served, md5 = _synthetic_files("train")
    monkeypatch.setitem(datasets.MD5, "mnist", md5)
    calls: list[str] = []
    monkeypatch.setattr(datasets, "_fetch", _fake_server(served, calls, bad_first_mirror=True))
    x, _ = load("mnist")  # first mirror's bytes fail the md5 check; second mirror's pass
    np.testing.assert_array_equal(x, arrays[STEMS["train"][0]])
    assert len(calls) == 4

    # Real MD5 table: the synthetic content matches nowhere -> error, nothing left in cache.
    monkeypatch.setitem(datasets.MD5, "mnist", dict(datasets.MD5["mnist"]))
    monkeypatch.setitem(datasets.MD5["mnist"], STEMS["test"][0], "0" * 32)
    _, served_test, _ = _synthetic_files("test")
    monkeypatch.setattr(datasets, "_fetch", _fake_server(served_test, []))
    with pytest.raises(DataError) as exc:
        load("mnist", "test")
    assert "md5 mismatch" in str(exc.value) and "0" * 32 in str(exc.value)
    cache = Path(os.environ["HOME"]) / ".cache" / "barenet" / "mnist"
    assert not any(p.name.startswith(("t10k-images", ".")) for p in cache.iterdir())


def test_real_fetch_via_file_url(iso, monkeypatch):
    """The unpatched _fetch (urllib + progress bar) end to end, served from file:// URLs."""
    arrays, served, md5 = _synthetic_files("test")
    mirror = iso / "mirror"
    mirror.mkdir()
    for name, data in served.items():
        (mirror / name).write_bytes(data)
    monkeypatch.setattr(datasets, "_fetch", REAL_FETCH)
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [mirror.as_uri() + "/"])
    monkeypatch.setitem(datasets.MD5, "mnist", md5)
    x, y = load("mnist", "test")
    np.testing.assert_array_equal(y, arrays[STEMS["test"][1]])


# ---- the real data (CI sets BARENET_DATA to the shared folder) ----

REAL_COUNTS = {
    ("mnist", "train"): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ("mnist", "test"): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ("fashion-mnist", "train"): [6000] * 10,
    ("fashion-mnist", "test"): [1000] * 10,
}
REAL_MD5 = {  # from the data README, independent of the table in datasets.py
    "mnist/train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "mnist/train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "mnist/t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "mnist/t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    "fashion-mnist/train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "fashion-mnist/train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "fashion-mnist/t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "fashion-mnist/t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


@pytest.mark.parametrize("name,split", list(REAL_COUNTS))
def test_real_data(name, split, monkeypatch):
    monkeypatch.setattr(datasets, "_fetch", _no_network)
    x, y = load(name, split, download=False)  # found through BARENET_DATA
    n = 60000 if split == "train" else 10000
    assert x.shape == (n, 28, 28) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == REAL_COUNTS[(name, split)]
    assert len(CLASS_NAMES[name]) == 10
    assert x.max() == 255 and x.min() == 0
    # The loaded pixels are exactly the verified file's payload.
    stem = STEMS[split][0]
    raw = gzip.decompress((Path(os.environ["BARENET_DATA"]) / name / f"{stem}.gz").read_bytes())
    assert raw[16:] == x.tobytes()


@pytest.mark.parametrize("key", list(REAL_MD5))
def test_real_md5_of_uncompressed_files(key):
    path = Path(os.environ["BARENET_DATA"]) / f"{key}.gz"
    assert hashlib.md5(gzip.decompress(path.read_bytes())).hexdigest() == REAL_MD5[key]
    assert datasets.file_md5(path) == REAL_MD5[key]
    name, stem = key.split("/")
    assert datasets.MD5[name][stem] == REAL_MD5[key]


def test_real_mean_pixel():
    for name, mean in (("mnist", 0.1307), ("fashion-mnist", 0.2860)):
        x, _ = load(name, "train", download=False)
        assert abs(x.mean() / 255 - mean) < 5e-5


def test_dataset_folder_named_for_the_other_dataset_is_not_used(tmp_path):
    from barenet.data.datasets import search_dirs

    mnist_dir = tmp_path / "mnist"
    assert mnist_dir not in search_dirs("fashion-mnist", mnist_dir)
    assert mnist_dir in search_dirs("mnist", mnist_dir)
    plain = tmp_path / "mydata"
    assert plain in search_dirs("fashion-mnist", plain)


def test_failed_download_leaves_no_empty_cache_folder(iso):
    cache = Path(os.environ["HOME"]) / ".cache" / "barenet" / "fashion-mnist"
    with pytest.raises(DataError, match="download failed"):
        load("fashion-mnist", "test")  # iso's _fetch: no network
    assert not cache.exists()
