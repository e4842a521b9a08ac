"""MNIST and Fashion-MNIST: locate the four IDX files, download and verify if absent, decode.

An explicit ``data_dir`` (``--data-dir`` or ``data.data_dir``) is authoritative: only
``data_dir/<name>`` and ``data_dir`` itself are searched, and if the files are not there
(or the folder does not exist) the error names it; nothing else is tried, nothing is
downloaded. Without one, the lookup order for the folder holding a split's two files
(``.gz`` or uncompressed) is:

1. ``$BARENET_DATA/<name>``;
2. ``~/.cache/barenet/<name>``;
3. system folders (``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST, Debian's package).

If none holds the files, they are downloaded from the public mirrors into the cache folder
(temporary file, md5 of the uncompressed content checked, then ``os.replace``).
A file whose header declares more than ``MAX_SAMPLES`` images is refused before it is read.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import math
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ..errors import FileError
from ..fileio import file_mode, open_regular
from .idx import GZIP_MAGIC, DataError, read_idx

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
MAX_SAMPLES = 100_000  # per file; MNIST has 60,000 (bounds what a hostile header can ask for)
DATASETS = ("mnist", "fashion-mnist")
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}
# md5 of the UNCOMPRESSED files (mirrors recompress, so the .gz bytes may differ).
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
SYSTEM_DIRS: dict[str, list[Path]] = {
    "mnist": [],
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}
ENV_VAR = "BARENET_DATA"


def canonical_name(name: str) -> str:
    """'mnist' / 'fashion-mnist' (also accepts 'fashion_mnist', any case)."""
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return key


def cache_dir(name: str) -> Path:
    """``~/.cache/barenet/<name>``: where downloads go."""
    return Path.home() / ".cache" / "barenet" / canonical_name(name)


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The candidate folders for ``name``, in lookup order (see the module docstring).

    With ``data_dir``, only ``data_dir/<name>`` and ``data_dir`` itself (an explicit folder
    is authoritative).
    """
    name = canonical_name(name)
    dirs: list[Path] = []
    if data_dir is not None:
        own = Path(data_dir).expanduser()
        # The folder itself may be the dataset's folder, unless it is named for the other one
        # (asking for fashion-mnist with --data-dir .../mnist must not return MNIST).
        key = own.name.lower().replace("_", "-")
        return [own / name] + ([] if key in DATASETS and key != name else [own])
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append(Path(env) / name)
    dirs.append(cache_dir(name))
    dirs += SYSTEM_DIRS.get(name, [])
    return [d.expanduser() for d in dirs]


def _find_file(folder: Path, stem: str) -> Path | None:
    # Uncompressed first: it decodes faster when both are present.
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_split(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = [_find_file(folder, stem) for stem in SPLITS[split]]
    return (found[0], found[1]) if found[0] and found[1] else None


def file_md5(path: str | os.PathLike) -> str:
    """md5 hex digest of the uncompressed content of ``path`` (gunzipped if gzip magic)."""
    path = Path(path)
    h = hashlib.md5()
    try:
        fd, _ = open_regular(path, "data file")
    except FileError as e:
        raise DataError(str(e)) from None
    try:
        with os.fdopen(fd, "rb") as raw:
            gz = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gz else raw
            while chunk := stream.read(1 << 20):
                h.update(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read for md5 check: {e}") from e
    return h.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` with a progress bar on stderr (tests monkeypatch this)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with (
        urllib.request.urlopen(url, timeout=60) as resp,
        open(dest, "wb") as out,
        Progress(*columns, console=Console(stderr=True), transient=True) as progress,
    ):
        total = int(resp.headers.get("Content-Length") or 0) or None
        task = progress.add_task(url.rsplit("/", 1)[-1], total=total)
        while chunk := resp.read(1 << 16):
            out.write(chunk)
            progress.update(task, advance=len(chunk))


def _download_file(name: str, stem: str, folder: Path, errors: list[str]) -> bool:
    """Try each mirror for ``stem``; on a verified copy move it into ``folder``."""
    expected = MD5[name][stem]
    for mirror in MIRRORS[name]:
        url = f"{mirror}{stem}.gz"
        tmp: Path | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".part")
            os.close(fd)
            tmp = Path(tmp_name)
            _fetch(url, tmp)
            got = file_md5(tmp)
            if got != expected:
                errors.append(
                    f"{url}: md5 mismatch (uncompressed content {got}, expected {expected})"
                )
                continue
            with open(tmp, "rb") as f:
                gz = f.read(2) == GZIP_MAGIC
            os.chmod(tmp, file_mode())  # mkstemp's 0o600 would hide the cache from others
            os.replace(tmp, folder / (f"{stem}.gz" if gz else stem))
            return True
        except Exception as e:  # network, HTTP, disk, corrupt gzip: try the next mirror
            errors.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    return False


def _download(name: str, split: str, errors: list[str]) -> tuple[Path, Path] | None:
    folder = cache_dir(name)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        errors.append(f"cannot create {folder}: {e}")
        return None
    for stem in SPLITS[split]:
        if _find_file(folder, stem) is None and not _download_file(name, stem, folder, errors):
            if created:  # leave no empty cache folder behind a failed download
                with contextlib.suppress(OSError):  # not empty: another process uses it
                    folder.rmdir()
            return None
    return _find_split(folder, split)


def locate(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[Path, Path]:
    """Paths of the (images, labels) files of ``name``/``split``; downloads if needed.

    Raises ``DataError`` listing every folder searched and how to fix it.
    """
    name = canonical_name(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    dirs = search_dirs(name, data_dir)
    for folder in dirs:
        found = _find_split(folder, split)
        if found:
            return found
    files = " and ".join(f"{stem}[.gz]" for stem in SPLITS[split])
    if data_dir is not None:
        own = Path(data_dir).expanduser()
        problem = "does not exist" if not own.is_dir() else "does not hold the files"
        raise DataError(
            f"data folder {own} (from --data-dir or data.data_dir) {problem}: looked for "
            f"{files} in {', '.join(str(d) for d in dirs)}. Fix the path, or leave it out to "
            f"use ${ENV_VAR}, the cache or a download."
        )
    errors: list[str] = []
    if download:
        found = _download(name, split, errors)
        if found:
            return found
    how = f"download failed: {'; '.join(errors)}" if download else "download disabled"
    raise DataError(
        f"{name} {split} data not found: looked for {files} in "
        f"{', '.join(str(d) for d in dirs)}; {how}. "
        f"Fix: set {ENV_VAR} to a folder holding {name}/ with these files "
        f"(or pass --data-dir / data.data_dir)."
    )


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=8)
def _decode(images_key: tuple, labels_key: tuple) -> tuple[np.ndarray, np.ndarray]:
    # Keys include mtime and size, so a file rewritten in place is decoded afresh.
    images_path, labels_path = images_key[0], labels_key[0]
    images = read_idx(images_path, max_bytes=MAX_SAMPLES * math.prod(IMAGE_SHAPE))
    labels = read_idx(labels_path, max_bytes=MAX_SAMPLES * 8)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{labels_path}: expected a 1-D integer label vector, got {labels.dtype} {labels.shape}"
        )
    if not len(images):  # nothing to train or score on (the loaders would yield no batch)
        raise DataError(f"{images_path}: holds no images (0 of shape 28x28)")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} and {labels_path}: count mismatch: "
            f"{len(images)} images but {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        bad = labels[(labels < 0) | (labels >= NUM_CLASSES)]
        raise DataError(
            f"{labels_path}: {bad.size} labels out of range [0, {NUM_CLASSES}), e.g. {int(bad[0])}"
        )
    labels = labels.astype(np.int64)
    labels.flags.writeable = False
    return images, labels


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``name`` ('mnist' or 'fashion-mnist') ``split`` ('train' or 'test').

    Returns ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``. Both are
    READ-ONLY arrays shared by every caller (decoded once per process per file, cached by
    resolved path, mtime and size): ``.copy()`` them before modifying; ``preprocess`` already
    returns a new array.
    """
    images_path, labels_path = locate(name, split, data_dir, download)
    return _decode(_stamp(images_path), _stamp(labels_path))
