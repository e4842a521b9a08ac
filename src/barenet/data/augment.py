"""Seeded random affine augmentation of image batches, vectorised over the batch."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates


def _range(value: float | tuple[float, float], name: str) -> tuple[float, float]:
    """``v`` -> ``(-v, v)``; a pair is taken as ``(low, high)``."""
    if np.ndim(value) == 0:
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        return -float(value), float(value)
    low, high = (float(v) for v in value)
    if low > high:
        raise ValueError(f"{name} range must have low <= high, got {value}")
    return low, high


class RandomAffine:
    """Random rotation + scaling about the image centre, then translation.

    - ``degrees``: angle drawn uniformly from ``[-degrees, degrees]`` (or a ``(low, high)``
      pair); positive = counter-clockwise as displayed (row 0 at the top), like np.rot90.
    - ``translate``: shift drawn uniformly from ``[-t*W, t*W]`` pixels along x (columns) and
      ``[-t*H, t*H]`` along y (rows); a pair gives ``(tx, ty)`` fractions. +x moves right,
      +y moves down. Shifts are continuous (sub-pixel).
    - ``scale``: factor drawn uniformly from ``(low, high)``; > 1 enlarges.
    - ``fill``: value of pixels that come from outside the image. Set it to the
      preprocessed background, i.e. what a 0 pixel maps to (``background_value``): 0.0 for
      ``scale``, -0.5 for ``center``, -mean/std for ``standardize``.

    Call as ``aug(xb, rng)`` on a batch shaped ``(N, 1, H, W)``, ``(N, H, W)`` or
    ``(N, H*W)``; returns a new array of the same shape and dtype. Bilinear sampling
    (``order=1``) of the whole ``(N, H, W)`` stack in one ``map_coordinates`` call.
    """

    def __init__(
        self,
        degrees: float | tuple[float, float] = 10.0,
        translate: float | tuple[float, float] = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        image_shape: tuple[int, int] = (28, 28),
        fill: float = 0.0,
    ) -> None:
        self.degrees = _range(degrees, "degrees")
        tx, ty = (translate, translate) if np.ndim(translate) == 0 else translate
        self.translate = (float(tx), float(ty))
        if min(self.translate) < 0:
            raise ValueError(f"translate must be >= 0, got {translate}")
        self.scale = (float(scale[0]), float(scale[1]))
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be 0 < low <= high, got {scale}")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.fill = float(fill)

    def __repr__(self) -> str:
        return (
            f"RandomAffine(degrees={self.degrees}, translate={self.translate}, "
            f"scale={self.scale}, image_shape={self.image_shape}, fill={self.fill})"
        )

    def sample_params(
        self, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-image ``angles`` (degrees, (n,)), ``shifts`` ((n, 2) pixels: dx, dy), ``scales``."""
        h, w = self.image_shape
        angles = rng.uniform(*self.degrees, size=n)
        limit = np.array([self.translate[0] * w, self.translate[1] * h])
        shifts = rng.uniform(-limit, limit, size=(n, 2))
        scales = rng.uniform(*self.scale, size=n)
        return angles, shifts, scales

    def __call__(self, xb: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if rng is None:
            raise TypeError("RandomAffine needs rng (a np.random.Generator)")
        return self.apply(xb, *self.sample_params(len(xb), rng))

    def apply(
        self, xb: np.ndarray, angles: np.ndarray, shifts: np.ndarray, scales: np.ndarray
    ) -> np.ndarray:
        """Deterministic transform with explicit per-image parameters (see ``sample_params``).

        Output pixel p takes the input at ``c + R(-angle) (p - c - shift) / scale`` with c
        the centre ((H-1)/2, (W-1)/2): the inverse map, so every output pixel is defined.
        """
        h, w = self.image_shape
        xb = np.asarray(xb)
        n = len(xb)
        if xb.shape[1:] not in ((1, h, w), (h, w), (h * w,)):
            raise ValueError(
                f"expected a batch shaped (N, 1, {h}, {w}), (N, {h}, {w}) or (N, {h * w}), "
                f"got {xb.shape}"
            )
        if n == 0:
            return xb.copy()
        stack = xb.reshape(n, h, w)
        theta = np.deg2rad(np.asarray(angles, dtype=np.float64)).reshape(n, 1, 1)
        inv_scale = 1.0 / np.asarray(scales, dtype=np.float64).reshape(n, 1, 1)
        shifts = np.asarray(shifts, dtype=np.float64).reshape(n, 2)
        cos, sin = np.cos(theta) * inv_scale, np.sin(theta) * inv_scale
        cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
        # Output offsets from the centre, minus the shift: (n, h, 1) rows and (n, 1, w) cols.
        dr = np.arange(h, dtype=np.float64).reshape(1, h, 1) - cr - shifts[:, 1].reshape(n, 1, 1)
        dc = np.arange(w, dtype=np.float64).reshape(1, 1, w) - cc - shifts[:, 0].reshape(n, 1, 1)
        coords = np.empty((3, n, h, w), dtype=np.float64)
        coords[0] = np.arange(n, dtype=np.float64).reshape(n, 1, 1)
        coords[1] = cr + sin * dc + cos * dr
        coords[2] = cc + cos * dc - sin * dr
        # grid-constant: samples just outside the border blend with `fill` instead of
        # snapping to it; the image-index axis is always an exact integer, so no mixing.
        out = map_coordinates(
            stack, coords, order=1, mode="grid-constant", cval=self.fill, prefilter=False
        )
        return out.astype(xb.dtype, copy=False).reshape(xb.shape)
