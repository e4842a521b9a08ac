"""From a config to a finished run folder, and back.

A run folder holds ``config.yaml`` (the resolved config), ``model.safetensors`` (weights, with
the config and training state as JSON metadata), ``history.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint, fileio, nn, threads
from .builders import build_model, build_optimizer, build_schedule_from_config, input_shape
from .config import Config, ConfigError, to_dict, validate
from .data import (
    CLASS_NAMES,
    DataLoader,
    RandomAffine,
    load,
    preprocess,
    subset,
    train_val_split,
)
from .rundir import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE
from .train import callbacks as cb
from .train.trainer import Trainer


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


def _raw(cfg: Config, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    return load(cfg.data.dataset, split=split, data_dir=data_dir or cfg.data.data_dir)


def load_split(cfg: Config, split: str, data_dir: str | None = None) -> Split:
    """A whole preprocessed split (``train`` or ``test``) shaped for the model."""
    return _split(cfg, *_raw(cfg, split, data_dir))


def split_indices(cfg: Config, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation samples: a seeded stratified subset, then a
    seeded stratified validation split (both drawn from the config's seed)."""
    rng = seeds(cfg)["split"]
    idx = np.arange(len(labels))
    if cfg.data.subset < 1.0:
        idx = subset(labels, cfg.data.subset, rng)
    tr, va = train_val_split(labels[idx], cfg.data.val_fraction, rng)
    return idx[tr], idx[va]


def prepare_data(cfg: Config, data_dir: str | None = None) -> Data:
    """The training and validation splits, preprocessed and shaped for the model."""
    images, labels = _raw(cfg, "train", data_dir)
    tr, va = split_indices(cfg, labels)
    # Preprocess only what is used (a 10% search subset converts 10% of the images).
    val = _split(cfg, images[va], labels[va]) if len(va) else None
    return Data(_split(cfg, images[tr], labels[tr]), val, CLASS_NAMES[cfg.data.dataset])


def make_loader(
    split: Split, batch_size: int, shuffle: bool = False, rng=None, transform=None
) -> DataLoader:
    return DataLoader(
        split.x, split.y, batch_size=batch_size, shuffle=shuffle, rng=rng, transform=transform
    )


def _augmenter(cfg: Config) -> RandomAffine | None:
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


def model_metadata(cfg: Config, **extra: Any) -> dict[str, Any]:
    return {"config": to_dict(cfg), "format": "barenet-run-1", **extra}


def train_run(
    cfg: Config,
    out_dir: str | Path,
    data_dir: str | None = None,
    extra_callbacks: tuple[cb.Callback, ...] = (),
    progress: bool = True,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train ``cfg`` and write the run folder. Returns the metrics written to metrics.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fileio.save_yaml(out / CONFIG_FILE, to_dict(cfg))
    rngs = seeds(cfg)
    data = prepare_data(cfg, data_dir)
    threads.set_num_threads(cfg.train.threads)  # the weights' bits do not depend on it
    model = build_model(cfg.model, rngs["init"], cfg.train.dtype)
    steps_per_epoch = -(-len(data.train) // cfg.train.batch_size)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    schedule = build_schedule_from_config(
        optimizer, cfg.schedule, steps_per_epoch, cfg.train.epochs
    )
    train_loader = make_loader(
        data.train,
        cfg.train.batch_size,
        shuffle=True,
        rng=rngs["shuffle"],
        transform=_augmenter(cfg),
    )
    val_loader = make_loader(data.val, 1024) if data.val is not None else None

    monitor = "val_accuracy" if val_loader is not None else "accuracy"

    def save_fn(path: str | Path, m: nn.Module, meta: dict[str, Any]) -> None:
        checkpoint.save_model(path, m, model_metadata(cfg, **meta))

    callbacks: list[cb.Callback] = [
        cb.CSVLogger(out / HISTORY_FILE),
        cb.ModelCheckpoint(out / MODEL_FILE, monitor=monitor, save_best_only=True, save_fn=save_fn),
    ]
    if cfg.train.checkpoint_every_epoch:
        callbacks.append(
            cb.ModelCheckpoint(
                out / "checkpoints" / "epoch_{epoch}.safetensors",
                monitor=monitor,
                save_best_only=False,
                save_fn=save_fn,
            )
        )
    es = cfg.train.early_stopping
    if es.enabled and val_loader is not None:
        callbacks.append(
            cb.EarlyStopping(
                monitor=es.monitor,
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best_weights=es.restore_best,
            )
        )
    callbacks.extend(extra_callbacks)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
    trainer = Trainer(
        model,
        loss_fn,
        optimizer,
        schedule=schedule,
        callbacks=callbacks,
        clip_grad_norm=cfg.train.clip_grad_norm,
        progress=progress,
    )
    start = time.perf_counter()
    history = trainer.fit(train_loader, val_loader, epochs=cfg.train.epochs)
    seconds = time.perf_counter() - start

    # Report the weights that were kept (best on validation), not the last epoch's.
    checkpoint.load_into(model, out / MODEL_FILE)
    epochs = history.epochs
    metrics: dict[str, Any] = {
        "name": cfg.name,
        "dataset": cfg.data.dataset,
        "parameters": model.num_parameters(),
        "epochs_run": len(epochs),
        "steps_per_epoch": steps_per_epoch,
        "train_seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / max(len(epochs), 1), 3),
        "train_loss": epochs[-1]["loss"],
        "train_accuracy": epochs[-1]["accuracy"],
        # what train.threads asked for and, with auto, training steps run at each count
        "threads": threads.get_setting(),
        "threads_used": {str(k): v for k, v in sorted(threads.usage().items())}
        or {str(threads.get_num_threads()): len(epochs) * steps_per_epoch},
    }
    if val_loader is not None:
        best = max(epochs, key=lambda e: e["val_accuracy"])
        metrics.update(
            best_epoch=best["epoch"],
            val_accuracy=best["val_accuracy"],
            val_loss=best["val_loss"],
            final_val_accuracy=epochs[-1]["val_accuracy"],
        )
    if evaluate_test:
        test = load_split(cfg, "test", data_dir)
        result = trainer.evaluate(make_loader(test, 1024))
        metrics["test"] = _jsonable(result)
        metrics["test_accuracy"] = metrics["test"]["accuracy"]
    fileio.save_json(out / METRICS_FILE, metrics)
    return metrics


def _jsonable(result: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (np.asarray(v).tolist() if isinstance(v, np.ndarray | list) else v)
        for k, v in result.items()
    }


def load_run(run_dir: str | Path) -> tuple[Config, nn.Sequential]:
    """The config and the trained model of a run folder; every name and shape is checked."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run folder not found: {run}")
    weights = run / MODEL_FILE
    state, meta = checkpoint.load_model_file(weights)
    raw = meta.get("config")
    if raw is None:
        raw = fileio.load_yaml(run / CONFIG_FILE)
    cfg = validate(raw)
    model = build_model(cfg.model, 0, cfg.train.dtype)
    checkpoint.load_state(model, state, weights)
    model.eval()
    return cfg, model


def evaluate_run(
    run_dir: str | Path, split: str = "test", data_dir: str | None = None
) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy and confusion matrix of a saved run on a split."""
    cfg, model = load_run(run_dir)
    data = load_split(cfg, split, data_dir)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer=None, progress=False)
    result = _jsonable(trainer.evaluate(make_loader(data, 1024)))
    result["classes"] = CLASS_NAMES[cfg.data.dataset]
    result["split"] = split
    return result
