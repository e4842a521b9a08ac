"""The run a plot draws from: config, model, test images and model outputs, loaded lazily."""

from __future__ import annotations

import zlib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .inference import Outputs, run_batches


class Context:
    """What the plots of one run share, each piece loaded on first use and kept."""

    def __init__(
        self, run: Path, out: Path, data_dir: str | None, max_test: int | None, seed: int
    ) -> None:
        self.run, self.out, self.data_dir, self.max_test, self.seed = (
            run,
            out,
            data_dir,
            max_test,
            seed,
        )

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        from ..runner import load_run

        return load_run(self.run)

    @property
    def cfg(self) -> Any:
        return self._loaded[0]

    @property
    def model(self) -> Any:
        return self._loaded[1]

    @cached_property
    def classes(self) -> list[str]:
        from ..data import CLASS_NAMES

        return CLASS_NAMES[self.cfg.data.dataset]

    @property
    def image_cmap(self) -> str:
        """How this data set's images are drawn."""
        from .style import image_cmap

        return image_cmap(self.cfg.data.dataset)

    @cached_property
    def _test(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ..data import load
        from ..runner import load_split

        cfg, data_dir = self.cfg, self.data_dir
        images, _ = load(cfg.data.dataset, split="test", data_dir=data_dir or cfg.data.data_dir)
        split = load_split(cfg, "test", data_dir)
        n = len(split.y) if self.max_test is None else min(self.max_test, len(split.y))
        return images[:n], split.x[:n], np.asarray(split.y[:n])

    @property
    def images(self) -> np.ndarray:
        """uint8 (n, H, W) test images, for display."""
        return self._test[0]

    @property
    def x(self) -> np.ndarray:
        """The same images preprocessed and shaped for the model."""
        return self._test[1]

    @property
    def y(self) -> np.ndarray:
        return self._test[2]

    @cached_property
    def outputs(self) -> Outputs:
        """Probabilities and last-hidden features of ``x``: one batched pass."""
        return run_batches(self.model, self.x)

    def rng(self, group: str) -> np.random.Generator:
        """One generator per group, keyed by its name: a group's samples depend neither on
        which other groups ran nor on the registry's order."""
        return np.random.default_rng([self.seed, zlib.crc32(group.encode())])

    @cached_property
    def confusion_matrix(self) -> np.ndarray:
        """(K, K) counts over ``x``, rows = true class."""
        k = len(self.classes)
        pred = self.outputs.probs.argmax(axis=1)
        return np.bincount(self.y * k + pred, minlength=k * k).reshape(k, k)
