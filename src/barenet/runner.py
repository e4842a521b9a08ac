"""From a config to a finished run folder (fresh or resumed), and back.

The folder's layout, readers and lock are ``rundir``'s; the training state that makes a
resume exact is ``train/resume.py``'s; the data a run trains on is ``run_data``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint, fileio, nn, rundir, threads
from .builders import build_model, build_optimizer, build_schedule_from_config
from .config import Config, to_dict
from .data import CLASS_NAMES
from .memory import model_size
from .run_data import (
    Data,  # noqa: F401 - re-exported (it lived here)
    Split,  # noqa: F401 - re-exported
    augmenter,
    check_same_split,
    load_split,
    make_loader,
    prepare_data,
    raw_split,
    seeds,
    split_indices,  # noqa: F401 - re-exported
)
from .run_metrics import RunMetrics
from .rundir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    TENSORBOARD_DIR,
    WATCH_FILE,
)
from .train import callbacks as cb
from .train.trainer import Trainer


def model_metadata(cfg: Config, **extra: Any) -> dict[str, Any]:
    return {"config": to_dict(cfg), "format": "barenet-run-1", **extra}


def train_run(
    cfg: Config,
    out_dir: str | Path,
    data_dir: str | None = None,
    extra_callbacks: tuple[cb.Callback, ...] = (),
    progress: bool = True,
    evaluate_test: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Train ``cfg`` into the run folder ``out_dir``; returns ``metrics.json`` as a dict.

    The folder is locked meanwhile (``FolderBusy`` if another process trains into it).
    After every epoch ``state.safetensors`` holds the full training state; with ``resume``
    training continues from it (or starts over if no epoch ended) and ends bit-identical to
    an uninterrupted run. Without ``resume`` whatever an earlier attempt left is replaced.
    ``metrics.json`` is written last (the run is then complete) and the state removed. A
    run that fails (raises an Exception) before its first epoch ends removes what it
    wrote, so a retry is free; an interrupted one keeps it, resumable.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with rundir.lock(out):
        resume_from, saved_split = None, None
        meta = rundir.read_state_metadata(out) if resume else None
        if meta is not None:
            resume_from = out / STATE_FILE
            saved_split = (meta.get("extra") or {}).get("split")
            config = (meta.get("extra") or {}).get("config")
            rundir.check_same_config(cfg, config, out / CONFIG_FILE, resume_from)
            rundir.clear(out, keep=(CONFIG_FILE, MODEL_FILE, HISTORY_FILE, STATE_FILE))
        else:  # a fresh start, or a resume of a run that never finished an epoch
            rundir.clear(out, keep=(CONFIG_FILE,) if resume else ())
        if not resume or not (out / CONFIG_FILE).is_file():
            fileio.save_yaml(out / CONFIG_FILE, to_dict(cfg))
        try:
            args = (extra_callbacks, progress, evaluate_test, resume_from, saved_split)
            return _train(cfg, out, data_dir, *args)
        except Exception:  # an interrupt keeps its stub: ``--resume`` starts it over
            if not resume and not (out / STATE_FILE).exists() and not (out / METRICS_FILE).exists():
                rundir.clear(out)  # no epoch ended: nothing worth keeping, nothing to block
            raise


def resume_run(
    run_dir: str | Path,
    data_dir: str | None = None,
    progress: bool = True,
    on_start: Callable[[Config, rundir.RunStatus], None] | None = None,
) -> dict[str, Any] | None:
    """Continue an interrupted run from its last completed epoch (``train_run(resume=True)``
    with the folder's own config). Returns its metrics, or None if it was already finished.
    ``on_start(cfg, status)`` is called once the folder is locked, before training."""
    run = Path(run_dir)
    if not run.is_dir():
        raise rundir.no_run_folder(run)
    if not (run / CONFIG_FILE).is_file():
        raise rundir.RunFolderError(f"{run} is not a run folder: no {CONFIG_FILE}")
    with rundir.lock(run):
        status = rundir.run_status(run)
        if status.finished:
            (run / STATE_FILE).unlink(missing_ok=True)  # left if killed right after metrics
            return None
        cfg = rundir.read_config(run)
        if on_start is not None:
            on_start(cfg, status)
        return train_run(cfg, run, data_dir=data_dir, progress=progress, resume=True)


def _train(
    cfg: Config,
    out: Path,
    data_dir: str | None,
    extra_callbacks: tuple[cb.Callback, ...],
    progress: bool,
    evaluate_test: bool,
    resume_from: Path | None,
    saved_split: str | None = None,
) -> dict[str, Any]:
    rngs = seeds(cfg)
    data = prepare_data(cfg, data_dir)
    if resume_from is not None:  # the same samples, or a resume that cannot be exact
        check_same_split(cfg, data, saved_split, resume_from, data_dir)
    if evaluate_test:  # a bad test file stops the run now, not after the last epoch
        raw_split(cfg, "test", data_dir)  # decoded once: the evaluation reuses it
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
        transform=augmenter(cfg),
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
                out / CHECKPOINTS_DIR / "epoch_{epoch}.safetensors",
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
    if cfg.train.watch:
        from .train.watch import Watch

        callbacks.append(Watch.for_data(out / WATCH_FILE, data.train.x, data.train.y, cfg.seed))
    if cfg.train.tensorboard:
        from .train.tensorboard import TensorBoard

        probe = (data.train.x[:256], data.train.y[:256])
        image_shape = tuple(cfg.model.input_shape[1:])
        callbacks.append(TensorBoard(out / TENSORBOARD_DIR, probe=probe, image_shape=image_shape))
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
    history = trainer.fit(
        train_loader,
        val_loader,
        epochs=cfg.train.epochs,
        state_file=out / STATE_FILE,
        resume_from=resume_from,
        generators=rngs,
        state_metadata={"config": to_dict(cfg), "split": data.split_id},
    )
    # Report the weights that were kept (best on validation), not the last epoch's.
    checkpoint.load_into(model, out / MODEL_FILE)
    epochs = history.epochs
    seconds = sum(e["time"] for e in epochs)  # every session's epochs, resumed or not
    metrics = RunMetrics(
        name=cfg.name,
        dataset=cfg.data.dataset,
        parameters=model.num_parameters(),
        epochs_run=len(epochs),
        steps_per_epoch=steps_per_epoch,
        train_seconds=round(seconds, 3),
        seconds_per_epoch=round(seconds / max(len(epochs), 1), 3),
        train_loss=epochs[-1]["loss"],
        train_accuracy=epochs[-1]["accuracy"],
        # what train.threads asked for and, with auto, training steps run at each count
        threads=str(threads.get_setting()),
        threads_used={str(k): v for k, v in sorted(threads.usage().items())}
        or {str(threads.get_num_threads()): len(epochs) * steps_per_epoch},
    )
    if val_loader is not None:
        best = max(epochs, key=lambda e: e["val_accuracy"])
        metrics.best_epoch = best["epoch"]
        metrics.val_accuracy = best["val_accuracy"]
        metrics.val_loss = best["val_loss"]
        metrics.final_val_accuracy = epochs[-1]["val_accuracy"]
    if evaluate_test:
        test = load_split(cfg, "test", data_dir)
        metrics.test = _jsonable(trainer.evaluate(make_loader(test, 1024)))
        metrics.test_accuracy = metrics.test["accuracy"]
    rundir.write_metrics(out, metrics)  # the run is complete from here on
    (out / STATE_FILE).unlink(missing_ok=True)
    return metrics.to_dict()


def _jsonable(result: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (np.asarray(v).tolist() if isinstance(v, np.ndarray | list) else v)
        for k, v in result.items()
    }


def load_run(run_dir: str | Path) -> tuple[Config, nn.Sequential]:
    """The config and the trained model of a run folder; every name and shape is checked."""
    run = rundir.check_run_dir(run_dir)  # a folder, holding something of a run
    if not rundir.present(run / MODEL_FILE) and rundir.present(run / CONFIG_FILE):
        status = rundir.run_status(run).describe(run)
        raise rundir.RunFolderError(f"{run} has no {MODEL_FILE} yet: {status}")
    state, meta = rundir.read_weights(run)
    cfg = rundir.read_config(run, meta)
    # the stored tensors must hold as many numbers as the architecture before it is built
    checkpoint.check_count(state, sum(model_size(cfg.model)[:2]), run / MODEL_FILE)
    model = build_model(cfg.model, 0, cfg.train.dtype)
    checkpoint.load_state(model, state, run / MODEL_FILE)
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
