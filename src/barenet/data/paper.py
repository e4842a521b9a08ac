"""The paper under a user's ink: one grey level, or a surface where the light is uneven.

A scan has one paper grey: the median of a border frame. A photo of a page is lit from
one side or darker in the corners, and its paper darkens across the picture by a third or
more, past the ink threshold: subtracting one level left a band of "ink" along the dark
side, the crop took it in and the digit became a smudge (about 10% of shaded UCI digits
right, against 82% unshaded). ``paper`` fits a quadratic surface (a ramp and a bowl) to
the border frame, leaving out the pixels that are not paper (ink touching the border), and
uses it when the light really varies across the picture; otherwise the flat level, as
before, so scans and drawings are read exactly as they were.
"""

from __future__ import annotations

import numpy as np

# Border frame whose pixels are the paper: 1/16 of each side, at least one pixel.
BORDER_FRACTION = 1 / 16
# A fitted plane whose level changes by more than this from one side of the picture to the
# other (grey in [0, 1]) replaces the flat level; below it, JPEG noise and paper texture.
SHADING = 0.08
# The plane is fitted on the picture subsampled to at most this side: a few thousand points.
FIT_SIDE = 256
# Frame pixels further from the plane than 3 robust sigmas, and than this, are not paper.
PAPER_TOLERANCE = 0.04


def _frame(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    bh, bw = max(1, round(h * BORDER_FRACTION)), max(1, round(w * BORDER_FRACTION))
    mask[:bh] = mask[-bh:] = True
    mask[:, :bw] = mask[:, -bw:] = True
    return mask


def _terms(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """A quadratic surface's terms: a ramp (light from one side) and a bowl (vignetting)."""
    return [np.ones_like(y * x), y, x, y * y, y * x, x * x]


def paper(g: np.ndarray) -> tuple[float, float | np.ndarray]:
    """``(level, under)`` of an (H, W) grey picture in [0, 1]: ``level`` the median of the
    border frame (light paper above 0.5), ``under`` what to subtract: ``level`` itself, or
    an (H, W) float32 quadratic surface when the light varies by more than ``SHADING``."""
    h, w = g.shape
    level = float(np.median(g[_frame(h, w)]))
    if min(h, w) < 16:
        return level, level
    step = -(-max(h, w) // FIT_SIDE)
    small = np.asarray(g[::step, ::step], np.float64)
    mask = _frame(*small.shape)
    rows, cols = np.nonzero(mask)
    a = np.column_stack(_terms(rows * step / (h - 1) - 0.5, cols * step / (w - 1) - 0.5))
    v = small[mask]
    coef = np.zeros(a.shape[1])
    coef[0] = level  # from the median: ink touching the border cannot pull the first fit
    for _ in range(3):
        r = np.abs(v - a @ coef)
        keep = r <= max(3 * 1.4826 * float(np.median(r)), PAPER_TOLERANCE)
        if keep.sum() < 2 * a.shape[1]:
            break
        coef = np.linalg.lstsq(a[keep], v[keep], rcond=None)[0]
    grid = np.linspace(-0.5, 0.5, 17)
    seen = _surface(coef, grid[:, None], grid[None, :])
    if float(seen.max() - seen.min()) <= SHADING:
        return level, level
    y = (np.arange(h, dtype=np.float32) / (h - 1) - 0.5)[:, None]
    x = (np.arange(w, dtype=np.float32) / (w - 1) - 0.5)[None, :]
    return level, _surface(coef.astype(np.float32), y, x)


def _surface(c: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``_terms`` weighted by ``c`` at column ``y`` (H, 1) and row ``x`` (1, W): two (H, W)
    arrays at most, not one per term."""
    out = (c[0] + c[1] * y + c[3] * y * y) + (c[2] * x + c[5] * x * x)
    out += c[4] * (y * x)
    return out
