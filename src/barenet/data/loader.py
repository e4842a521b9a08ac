"""Mini-batch iteration over in-memory arrays."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..nn.init import as_rng

Transform = Callable[[np.ndarray, "np.random.Generator | None"], np.ndarray]


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class ArrayDataset:
    """Paired inputs ``x`` (N, ...) and targets ``y`` (N, ...)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx) -> tuple[np.ndarray, np.ndarray]:
        return self.x[idx], self.y[idx]


class DataLoader:
    """Iterate ``(xb, yb)`` batches of ``batch_size`` over ``x``, ``y`` (first axis = sample).

    Each ``iter(loader)`` is one epoch. With ``shuffle`` a fresh permutation is drawn from
    ``rng`` (a Generator or seed; default: seed 0, as the layers') at the start of every epoch (so
    epochs differ, and the sequence is reproducible from the seed); batches are then
    gathered by fancy indexing, copying only the batch.
    Unshuffled batches are slices, i.e. VIEWS of ``x``/``y``: don't modify them in place.
    ``transform(xb, rng)`` (e.g. ``RandomAffine``) is applied to each input batch.
    The last short batch is yielded unless ``drop_last``; an empty batch never is.
    ``x`` may also be an ``ArrayDataset`` with ``y`` omitted.
    """

    def __init__(
        self,
        x: np.ndarray | ArrayDataset,
        y: np.ndarray | None = None,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_last: bool = False,
        rng: np.random.Generator | int | None = None,
        transform: Transform | None = None,
    ) -> None:
        if isinstance(x, ArrayDataset):
            if y is not None:
                raise ValueError("pass either an ArrayDataset or x and y, not both")
            x, y = x.x, x.y
        if y is None:
            raise ValueError("y is required")
        # Python lists (torch's DataLoader batches them too): arrays, so batches can be
        # gathered by index and reach the model and loss as arrays.
        x = x if isinstance(x, np.ndarray) else np.asarray(x)
        y = y if isinstance(y, np.ndarray) else np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if shuffle or rng is not None:  # a Generator or seed; none: seed 0, as the layers
            rng = as_rng(rng)
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = rng
        self.transform = transform

    @property
    def dataset(self) -> ArrayDataset:
        """The samples, as torch's ``loader.dataset`` (e.g. ``len(loader.dataset)``)."""
        return ArrayDataset(self.x, self.y)

    @property
    def num_samples(self) -> int:
        """Samples yielded per epoch (fewer than ``len(x)`` with ``drop_last``)."""
        return len(self) * self.batch_size if self.drop_last else len(self.x)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Draw the permutation now, not at the first next(): the epoch order is fixed by
        # the order of iter() calls.
        perm = self.rng.permutation(len(self.x)) if self.shuffle else None
        return self._batches(perm)

    def _batches(self, perm: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        b = self.batch_size
        for i in range(len(self)):
            if perm is None:
                xb, yb = self.x[i * b : (i + 1) * b], self.y[i * b : (i + 1) * b]
            else:
                idx = perm[i * b : (i + 1) * b]
                xb, yb = self.x[idx], self.y[idx]
            if self.transform is not None:
                xb = self.transform(xb, self.rng)
            yield xb, yb
