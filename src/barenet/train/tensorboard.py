"""``TensorBoard(log_dir)``: what a Keras or PyTorch user opens to watch training.

Per epoch, with tensorboardX (``pip install -e '.[tensorboard]'``), into ``log_dir``:

- scalars ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``grad_norm``;
- histograms ``weights/NAME`` of every parameter, and ``gradients/NAME`` of the loss on a
  fixed ``probe`` batch at the epoch's final weights (in eval mode, so no dropout draw and no
  batch-norm update: recording changes nothing in training);
- ``first_layer`` images: a dense first layer's rows as ``image_shape`` pictures, or a conv
  first layer's kernels (input channel 0), each scaled to [0, 1].

Open with ``tensorboard --logdir RUN_DIR/tensorboard``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .callbacks import Callback, Logs

SCALARS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "grad_norm")
MAX_IMAGES = 64


def first_layer_images(model: Any, image_shape: tuple[int, int] | None) -> np.ndarray | None:
    """(n, 1, H, W) float32 in [0, 1]: the first weighted layer's filters as pictures, or None
    when they are not image-shaped (a dense layer whose input is not ``H * W``)."""
    for _, p in model.named_parameters():
        w = np.asarray(p.data, dtype=np.float32)
        if w.ndim == 4:  # conv (C_out, C_in, kh, kw): channel 0 of each kernel
            tiles = w[:MAX_IMAGES, 0]
        elif w.ndim == 2 and image_shape and w.shape[1] == math.prod(image_shape):
            tiles = w[:MAX_IMAGES].reshape(-1, *image_shape)
        else:
            return None
        lo = tiles.min(axis=(1, 2), keepdims=True)
        span = np.maximum(tiles.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
        return ((tiles - lo) / span)[:, None]
    return None


class TensorBoard(Callback):
    """Write event files under ``log_dir`` every epoch (see the module docstring).

    Args:
        probe: ``(x, y)`` training batch for the gradient histograms (None: no gradients).
        image_shape: ``(H, W)`` of the input, to draw a dense first layer's rows.
        histograms: write weight/gradient histograms (they dominate the file size).
    """

    def __init__(
        self,
        log_dir: str | Path,
        probe: tuple[np.ndarray, np.ndarray] | None = None,
        image_shape: tuple[int, int] | None = None,
        histograms: bool = True,
    ) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise UserError(
                "TensorBoard logging needs tensorboardX: "
                "pip install -e '.[tensorboard]' in barenet's folder"
            ) from err
        self.log_dir = Path(log_dir)
        self.probe = probe
        self.image_shape = tuple(image_shape) if image_shape else None
        self.histograms = histograms
        self._writer_cls = SummaryWriter
        self.writer: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = self._writer_cls(logdir=str(self.log_dir), flush_secs=30)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Logs) -> None:
        w = self.writer
        for key in SCALARS:
            if key in logs:
                w.add_scalar(key, float(logs[key]), epoch)
        model = trainer.model
        if self.histograms:
            for name, p in model.named_parameters():
                w.add_histogram(f"weights/{name}", np.asarray(p.data), epoch)
            for name, g in self._probe_grads(trainer).items():
                w.add_histogram(f"gradients/{name}", g, epoch)
        images = first_layer_images(model, self.image_shape)
        if images is not None:
            w.add_images("first_layer", images, epoch, dataformats="NCHW")
        w.flush()

    def _probe_grads(self, trainer: Any) -> dict[str, np.ndarray]:
        """Gradients of the loss on the probe batch; the parameters' grads are left zero."""
        if self.probe is None or getattr(trainer, "loss_fn", None) is None:
            return {}
        model, (x, y) = trainer.model, self.probe
        was_training = bool(getattr(model, "training", True))
        model.eval()
        try:
            model.zero_grad()
            trainer.loss_fn(model.forward(x), y)
            model.backward(trainer.loss_fn.backward())
            grads = {n: p.grad.copy() for n, p in model.named_parameters()}
        finally:
            model.zero_grad()
            model.train(was_training)
        return grads

    def on_train_end(self, trainer: Any, logs: Logs) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
