"""Pixel preprocessing and seeded, stratified index splits."""

from __future__ import annotations

import hashlib

import numpy as np

from .datasets import canonical_name

# (mean, std) of pixel/255 over each TRAIN set (computed once from the 60,000 images; the
# MNIST pair is the customary 0.1307/0.3081). Use the train statistics for val/test too.
DATASET_STATS: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
}
METHODS = ("standardize", "scale", "center")


def _lut(method: str, mean: float | None, std: float | None, dataset: str | None) -> np.ndarray:
    """float64 value of each of the 256 pixel levels under ``method``."""
    x = np.arange(256, dtype=np.float64) / 255.0
    if method == "scale":
        return x
    if method == "center":
        return x - 0.5
    if method != "standardize":
        raise ValueError(f"unknown preprocess method {method!r}; expected one of {METHODS}")
    if dataset is not None:
        d_mean, d_std = DATASET_STATS[canonical_name(dataset)]
        mean = d_mean if mean is None else mean
        std = d_std if std is None else std
    if mean is None or std is None:
        raise ValueError(
            "standardize needs mean and std: pass dataset='mnist'/'fashion-mnist' "
            "or mean=, std= (e.g. from DATASET_STATS)"
        )
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return (x - mean) / std


def preprocess(
    images: np.ndarray,
    method: str = "standardize",
    dtype: np.dtype | type = np.float32,
    mean: float | None = None,
    std: float | None = None,
    dataset: str | None = None,
) -> np.ndarray:
    """Map uint8 pixels to floats, same shape, new array of ``dtype``.

    - ``scale``:       x/255            in [0, 1]
    - ``center``:      x/255 - 0.5      in [-0.5, 0.5]
    - ``standardize``: (x/255 - mean)/std, with ``mean``/``std`` given or taken from
      ``DATASET_STATS[dataset]`` (explicit ``mean``/``std`` win); missing both is an error.

    One pass: a 256-entry lookup table computed in float64 then indexed, so every value is
    the correctly rounded result in ``dtype``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"preprocess expects uint8 pixels, got {images.dtype}")
    lut = _lut(method, mean, std, dataset).astype(dtype)
    return lut[images]


def background_value(
    method: str = "standardize",
    mean: float | None = None,
    std: float | None = None,
    dataset: str | None = None,
) -> float:
    """What a 0 (black) pixel maps to under ``preprocess``: the fill for ``RandomAffine``."""
    return float(_lut(method, mean, std, dataset)[0])


def _check_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None:
        raise TypeError("rng is required (a np.random.Generator or an int seed)")
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _stratified_mask(
    labels: np.ndarray, fraction: float, rng: np.random.Generator, pool: bool = True
) -> np.ndarray:
    """Boolean mask picking round(fraction * n_c) random samples of each class c.

    A class too small for that (it would give none or all of its samples) joins one pool
    with the other such classes, split as one class: regression targets (every value its
    own class) then get a plain random split instead of none at all. Rows of an (N, ...)
    target are the classes. ``pool=False``: every class alone, as barenet split before
    pooling (a run's state saved then is checked against it).
    """
    labels = np.asarray(labels)
    if labels.ndim == 0:
        raise ValueError("labels must be an array with one entry per sample, got a scalar")
    keys = labels.reshape(len(labels), -1) if labels.ndim > 1 else labels
    axis = 0 if keys.ndim > 1 else None
    _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True, axis=axis)
    inv = inv.reshape(-1)
    take = np.floor(fraction * counts + 0.5).astype(np.int64)
    small = (take == 0) | (take == counts)
    if pool and small.any():  # one more class: the pool (its members' own counts become 0)
        inv = np.where(small[inv], len(counts), inv)
        counts = np.append(np.where(small, 0, counts), counts[small].sum())
        take = np.floor(fraction * counts + 0.5).astype(np.int64)
    # Random order, then a stable sort by class: within each class the order stays random.
    perm = rng.permutation(len(labels))
    order = perm[np.argsort(inv[perm], kind="stable")]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    cls = inv[order]
    rank = np.arange(len(labels)) - starts[cls]
    mask = np.zeros(len(labels), dtype=bool)
    mask[order] = rank < take[cls]
    return mask


def train_val_split(
    labels: np.ndarray,
    val_fraction: float = 0.1,
    rng: np.random.Generator | int | None = None,
    *,
    pool: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: ``round(val_fraction * n_c)`` samples of each class to val
    (classes too small for that are pooled; continuous targets: a random split).

    ``rng`` is required (Generator or int seed). Returns ``(train_idx, val_idx)``, int64,
    each SORTED ascending (shuffling is the loader's job); together they partition
    ``range(len(labels))``. ``val_fraction`` 0 gives an empty val set. ``pool=False``:
    small classes are not pooled (each gives none or all), as before pooling.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    mask = _stratified_mask(labels, val_fraction, _check_rng(rng), pool)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def subset(
    labels: np.ndarray,
    fraction: float,
    rng: np.random.Generator | int | None = None,
    *,
    pool: bool = True,
) -> np.ndarray:
    """Seeded stratified subset: ``round(fraction * n_c)`` samples of each class (classes
    too small for that are pooled, as in ``train_val_split``).

    ``rng`` is required. Returns sorted int64 indices; ``fraction`` 1.0 gives every index.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return np.flatnonzero(_stratified_mask(labels, fraction, _check_rng(rng), pool))


def split_id(train_idx: np.ndarray, val_idx: np.ndarray) -> str:
    """``"n_train/n_val/hash"`` naming a split's indices (a resumed run checks that it
    trains on the samples it was saved with)."""
    digest = hashlib.sha256(np.asarray(train_idx, np.int64).tobytes() + b"/")
    digest.update(np.asarray(val_idx, np.int64).tobytes())
    return f"{len(train_idx)}/{len(val_idx)}/{digest.hexdigest()[:16]}"
