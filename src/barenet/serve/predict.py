"""Predict the class of users' images with a trained run.

``Predictor`` holds a model in eval mode and what it was trained on; ``predict`` is the
one-call form. Every image goes through :func:`barenet.data.images.to_dataset_image` (the
dataset's own layout and polarity), then the run's normalisation, exactly as in training.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..builders import input_shape
from ..config import Config
from ..data import CLASS_NAMES, preprocess
from ..data.images import ImageSource, to_dataset_image

MAX_UNITS = 12  # MLP: first-layer units shown by ``explain``
MAX_MAPS = 16  # CNN: first conv layer feature maps shown by ``explain``


class Predictor:
    """A trained model ready for images: ``Predictor.from_run(run_dir).predict([...])``.

    ``model`` must be the network ``cfg.model`` describes (as ``runner.load_run`` returns).
    Thread-safe: layers cache their inputs, so forward passes are serialised by a lock.
    """

    def __init__(self, cfg: Config, model: nn.Sequential, run_dir: str | Path | None = None):
        self.cfg, self.model = cfg, model.eval()
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.dataset = cfg.data.dataset
        self.classes: list[str] = list(CLASS_NAMES[self.dataset])
        self._lock = threading.Lock()

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Predictor:
        from ..runner import load_run

        cfg, model = load_run(run_dir)
        return cls(cfg, model, run_dir)

    # -- images -> model input -----------------------------------------------------------
    def image(self, source: ImageSource) -> np.ndarray:
        """The (28, 28) uint8 picture the model sees for ``source``."""
        return to_dataset_image(source, self.dataset)

    def model_input(self, pictures: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 -> the normalised batch in the model's input shape."""
        x = preprocess(
            np.asarray(pictures, np.uint8),
            self.cfg.data.preprocess,
            dtype=np.dtype(self.cfg.train.dtype).type,
            dataset=self.dataset,
        )
        return x.reshape((len(x), *input_shape(self.cfg.model)))

    def probabilities(self, pictures: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 pictures -> (N, K) float64 softmax probabilities."""
        x = self.model_input(pictures)
        with self._lock:
            logits = self.model.forward(x)
        return nn.softmax(np.asarray(logits, np.float64))

    # -- answers -------------------------------------------------------------------------
    def describe(self, probs: np.ndarray, top: int = 3, blank: bool = False) -> dict[str, Any]:
        """The ``predict --json`` object of one image (without ``file``). ``blank``: no ink
        was found, so the picture is all zeros and the prediction means nothing."""
        order = np.argsort(-probs, kind="stable")[: max(1, top)]
        best = int(order[0])
        return {
            "class": best,
            "name": self.classes[best],
            "probability": float(probs[best]),
            "top": [
                {"class": int(c), "name": self.classes[c], "probability": float(probs[c])}
                for c in order
            ],
            "blank": bool(blank),
        }

    def predict(
        self, images: Iterable[ImageSource], top: int = 3, names: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """One ``{"file", "class", "name", "probability", "top"}`` per image, in order.

        A bad image raises :class:`~barenet.data.images.ImageError`; the CLI reads images
        one by one to report each bad file and go on.
        """
        images = list(images)
        pictures = np.stack([self.image(s) for s in images]) if images else np.zeros((0, 28, 28))
        probs = self.probabilities(pictures) if len(images) else np.zeros((0, len(self.classes)))
        labels = list(names) if names is not None else [_label(s, i) for i, s in enumerate(images)]
        blank = [not p.any() for p in pictures]
        return [
            {"file": f, **self.describe(p, top, b)}
            for f, p, b in zip(labels, probs, blank, strict=True)
        ]

    def explain(self, picture: np.ndarray) -> dict[str, Any]:
        """What the network computes on one (28, 28) uint8 picture, for the web page.

        MLP: the first hidden layer's ``MAX_UNITS`` most active units (those above 0), each with its
        activation and its incoming weights as a 28x28 image. CNN: the first conv layer's
        feature maps (after its activation). Images are lists of rows of uint8 (0..255);
        weights map 0 to 128 on one symmetric scale per unit.
        """
        x = self.model_input(picture[None])
        layers = list(self.model.layers)
        with self._lock:
            if isinstance(layers[0], nn.Linear):
                return {"kind": "units", "units": self._units(layers, x)}
            return {"kind": "maps", "maps": self._maps(x)}

    def _units(self, layers: list[nn.Module], x: np.ndarray) -> list[dict[str, Any]]:
        h = x
        for layer in layers:
            h = layer.forward(h)
            if not isinstance(layer, nn.Linear | nn.BatchNorm1d):
                break  # the first activation ends the first hidden layer
        act = np.asarray(h[0], np.float64)
        w = np.asarray(layers[0].weight.data, np.float64)
        order = np.argsort(-act, kind="stable")
        active = order[act[order] > 0]  # units silent on this input say nothing about it
        units = []
        for u in (active if len(active) else order)[:MAX_UNITS]:
            wu = w[u].reshape(28, 28) if w.shape[1] == 784 else w[u].reshape(1, -1)
            scale = float(np.abs(wu).max()) or 1.0
            img = np.clip(np.round(127.5 + 127.5 * wu / scale), 0, 255).astype(np.uint8)
            units.append({"unit": int(u), "activation": float(act[u]), "image": img.tolist()})
        return units

    def _maps(self, x: np.ndarray) -> list[dict[str, Any]]:
        from ..viz.inference import conv_feature_maps

        maps = conv_feature_maps(self.model, x)
        if not maps:
            return []
        fm = np.asarray(maps[0][1][0], np.float64)  # (C, H, W) of the first conv block
        out = []
        for c in range(min(len(fm), MAX_MAPS)):
            m = fm[c]
            lo, hi = float(m.min()), float(m.max())
            img = np.zeros(m.shape) if hi <= lo else (m - lo) / (hi - lo)
            out.append(
                {
                    "channel": c,
                    "mean": float(m.mean()),
                    "image": np.round(img * 255).astype(np.uint8).tolist(),
                }
            )
        return out

    def info(self) -> dict[str, Any]:
        """``GET /api/model``: architecture, dataset, class names, input and preprocessing."""
        cfg = self.cfg
        return {
            "name": cfg.name,
            "dataset": self.dataset,
            "classes": self.classes,
            "type": cfg.model.type,
            "input_shape": list(input_shape(cfg.model)),
            "preprocess": cfg.data.preprocess,
            "parameters": self.model.num_parameters(),
            "layers": [repr(layer) for layer in self.model.layers],
        }


def _label(source: Any, i: int) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return f"<image {i}>"


def predict(
    run: str | os.PathLike | Predictor, images: ImageSource | Iterable[ImageSource], top: int = 3
) -> list[dict[str, Any]]:
    """Classify ``images`` (paths, bytes, PIL images or arrays; one or a list, or a stack
    of arrays: (N, H, W) grey, (N, H, W, C) colour, as ``load`` gives) with a run folder's
    model (or a ``Predictor``). Returns one dict per image, as ``predict --json``.
    """
    predictor = run if isinstance(run, Predictor) else Predictor.from_run(run)
    single = isinstance(images, str | os.PathLike | bytes) or hasattr(images, "mode")
    if isinstance(images, np.ndarray):  # one (H, W[, C]) image, or a stack of them
        single = images.ndim < 3 or (images.ndim == 3 and images.shape[2] in (1, 3, 4))
    return predictor.predict([images] if single else images, top=top)
