"""A run's data: the config's dataset, split (seeded, stratified) into the samples it trains
and validates on, preprocessed and shaped for its model, and the loaders over them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checkpoint
from .builders import input_shape
from .config import Config, ConfigError
from .data import (
    CLASS_NAMES,
    DataLoader,
    RandomAffine,
    load,
    preprocess,
    split_id,
    subset,
    train_val_split,
)


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Data:
    train: Split
    val: Split | None
    classes: list[str]
    split_id: str = ""  # which samples: saved with the training state, checked on resume


def check_same_split(
    cfg: Config, data: Data, saved: str | None, state: Path, data_dir: str | None
) -> None:
    """CheckpointError unless the state was saved training on ``data``'s samples; a state
    without the record (older) against the split of its day (no pooled classes)."""
    if saved is None:
        saved = split_id(*split_indices(cfg, raw_split(cfg, "train", data_dir)[1], pool=False))
    if saved != data.split_id:
        was, now = [*str(saved).split("/"), "?", "?"][:2], data.split_id.split("/")[:2]
        raise checkpoint.CheckpointError(
            f"{state}: saved training on other samples ({was[0]} to train, {was[1]} to "
            f"validate) than this barenet picks ({now[0]}, {now[1]}: classes too small for "
            f"data.subset/val_fraction are pooled now); train the run again"
        )


def seeds(cfg: Config) -> dict[str, np.random.Generator]:
    """Independent generators for each source of randomness, all from ``cfg.seed``."""
    names = ("init", "split", "shuffle", "augment")
    children = np.random.SeedSequence(cfg.seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, children, strict=True)}


def _shape(x: np.ndarray, cfg: Config) -> np.ndarray:
    """Flat for an MLP, NCHW for a CNN (a view)."""
    return x.reshape((x.shape[0], *input_shape(cfg.model)))


def _split(cfg: Config, images: np.ndarray, labels: np.ndarray) -> Split:
    """Preprocessed images shaped for the model, with their labels."""
    x = preprocess(
        images, cfg.data.preprocess, dtype=np.dtype(cfg.train.dtype).type, dataset=cfg.data.dataset
    )
    return Split(_shape(x, cfg), np.asarray(labels))


def raw_split(cfg: Config, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    return load(cfg.data.dataset, split=split, data_dir=data_dir or cfg.data.data_dir)


def load_split(cfg: Config, split: str, data_dir: str | None = None) -> Split:
    """A whole preprocessed split shaped for the model: ``train``, ``test``, or ``val``: the
    validation samples the run held out of ``train`` (the same seeded split as in training)."""
    if split == "val":
        images, labels = raw_split(cfg, "train", data_dir)
        tr, va = split_indices(cfg, labels)
        if not len(va):
            raise ConfigError(
                f"this run has no validation samples (data.val_fraction "
                f"{cfg.data.val_fraction:g} of its {len(tr):,} images rounds to none)"
            )
        return _split(cfg, images[va], labels[va])
    return _split(cfg, *raw_split(cfg, split, data_dir))


def split_indices(
    cfg: Config, labels: np.ndarray, pool: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation samples: a seeded stratified subset, then a
    seeded stratified validation split (both drawn from the config's seed). ``pool=False``:
    the split of barenet before classes too small to split were pooled."""
    rng = seeds(cfg)["split"]
    idx = np.arange(len(labels))
    if cfg.data.subset < 1.0:
        idx = subset(labels, cfg.data.subset, rng, pool=pool)
    tr, va = train_val_split(labels[idx], cfg.data.val_fraction, rng, pool=pool)
    if len(labels) and not len(tr):  # round(fraction * class size) is 0 (or all to val)
        raise ConfigError(
            f"no training sample left: data.subset {cfg.data.subset:g} and data.val_fraction "
            f"{cfg.data.val_fraction:g} of {len(labels):,} images, per class, leave none to "
            f"train on; raise data.subset"
        )
    return idx[tr], idx[va]


def prepare_data(cfg: Config, data_dir: str | None = None) -> Data:
    """The training and validation splits, preprocessed and shaped for the model."""
    images, labels = raw_split(cfg, "train", data_dir)
    tr, va = split_indices(cfg, labels)
    # Preprocess only what is used (a 10% search subset converts 10% of the images).
    val = _split(cfg, images[va], labels[va]) if len(va) else None
    train = _split(cfg, images[tr], labels[tr])
    return Data(train, val, CLASS_NAMES[cfg.data.dataset], split_id(tr, va))


def make_loader(
    split: Split, batch_size: int, shuffle: bool = False, rng=None, transform=None
) -> DataLoader:
    return DataLoader(
        split.x, split.y, batch_size=batch_size, shuffle=shuffle, rng=rng, transform=transform
    )


def augmenter(cfg: Config) -> RandomAffine | None:
    a = cfg.data.augment
    if not a.enabled:
        return None
    c, h, w = cfg.model.input_shape
    # the background is what a 0 pixel becomes after preprocessing
    fill = float(
        preprocess(np.zeros((1, 1), np.uint8), cfg.data.preprocess, dataset=cfg.data.dataset)[0, 0]
    )
    return RandomAffine(
        degrees=a.degrees,
        translate=a.translate,
        scale=tuple(a.scale),
        image_shape=(h, w),
        fill=fill,
    )
