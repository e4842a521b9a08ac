"""The paper under a user's ink: one grey level, or a surface where the light is uneven.

A scan has one paper grey: the median of a border frame. A photo of a page is lit from
one side or darker in the corners, and its paper darkens across the picture by a third or
more, past the ink threshold: subtracting one level left a band of "ink" along the dark
side, the crop took it in and the digit became a smudge (about 10% of shaded UCI digits
right, against 82% unshaded). ``paper`` fits a quadratic surface (a ramp and a bowl) to
the border frame, leaving out the pixels that are not paper (ink touching the border), and
uses it when the light really varies across the picture; otherwise the flat level, as
before, so scans and drawings are read exactly as they were.

A page photographed lying on a table has the table, not the paper, in its border frame:
the whole sheet then read as one block of "ink". ``off_table`` finds such a surround and
paints it with the sheet's own grey first (``to_dataset_image`` does this for digits).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

# Border frame whose pixels are the paper: 1/16 of each side, at least one pixel.
BORDER_FRACTION = 1 / 16
# A fitted plane whose level changes by more than this from one side of the picture to the
# other (grey in [0, 1]) replaces the flat level; below it, JPEG noise and paper texture.
SHADING = 0.08
# The plane is fitted on the picture subsampled to at most this side: a few thousand points.
FIT_SIDE = 256
# Frame pixels further from the plane than 3 robust sigmas, and than this, are not paper.
PAPER_TOLERANCE = 0.04
# A surround (table) and a sheet whose greys differ by less than this are one paper.
SHEET_CONTRAST = 0.2
# The sheet inside a table: at least this share of the picture, with writing on at most
# this share of it.
SHEET_MIN = 0.1
SHEET_INK = 0.25
# A page seen in a photo fills at least these shares of its convex hull and of the
# smallest rectangle around it (a fat digit's outline does not; an ellipse fills pi/4).
SOLID_SHEET = 0.95
RECT_SHEET = 0.92
# The band of the sheet along the table painted with it: this share of the longer side.
SHEET_RIM = 0.01


def _frame(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    bh, bw = max(1, round(h * BORDER_FRACTION)), max(1, round(w * BORDER_FRACTION))
    mask[:bh] = mask[-bh:] = True
    mask[:, :bw] = mask[:, -bw:] = True
    return mask


def off_table(g: np.ndarray) -> np.ndarray:
    """An (H, W) grey picture in [0, 1] with the table around a photographed page painted
    as the page's paper; ``g`` itself when there is no such table.

    A table is there when the border frame and the picture's centre (the middle half of
    each side) lie on opposite sides of mid-grey, at least ``SHEET_CONTRAST`` apart. The
    table is the pixels on the frame's side of the midpoint between their medians that
    connect (4-neighbours) to the frame. What is left must look like a page with writing:
    at least ``SHEET_MIN`` of the picture and nearly convex (``SOLID_SHEET``), with strokes
    (pixels on the table's side) on more than none and at most ``SHEET_INK`` of it, whose
    largest piece is a stroke, not a blob (``SOLID_STROKE``). A digit drawn so fat that it
    fills the centre fails these (its "writing" would be its holes), so it is read as
    before; a page with only a straight "1" on it is too. Objects filling the picture
    (Fashion-MNIST photos) could pass: ``to_dataset_image`` uses this for digits only.
    """
    h, w = g.shape
    step = -(-max(h, w) // FIT_SIDE)  # the test on a few thousand pixels, not millions
    small = g[::step, ::step]
    sh, sw = small.shape
    edge = float(np.median(small[_frame(sh, sw)]))
    centre = float(np.median(small[sh // 4 : sh - sh // 4, sw // 4 : sw - sw // 4]))
    if (edge > 0.5) == (centre > 0.5) or abs(centre - edge) < SHEET_CONTRAST:
        return g
    frame = _frame(h, w)
    cut = (edge + centre) / 2
    like_edge = g < cut if edge < centre else g > cut
    labels, _ = ndimage.label(like_edge)
    touching = np.unique(labels[frame & like_edge])
    sheet = ~np.isin(labels, touching[touching > 0])
    strokes = like_edge & sheet
    share = float(strokes.sum()) / max(1, int(sheet.sum()))
    if sheet.mean() < SHEET_MIN or not 0 < share <= SHEET_INK:
        return g
    solid, rect = _page_shape(sheet)
    if solid < SOLID_SHEET or rect < RECT_SHEET:
        return g
    # the sheet's edge is blurred into the table (focus, resampling): painted too
    rim = max(2, round(max(h, w) * SHEET_RIM))
    table = ndimage.binary_dilation(~sheet, iterations=rim)
    out = g.copy()
    out[table] = np.median(g[sheet & ~like_edge])
    return out


def _page_shape(mask: np.ndarray) -> tuple[float, float]:
    """(solidity, rectangularity) of ``mask``, pixels as unit squares: its area over that of
    its convex hull, and over that of the smallest rotated rectangle around it. A page
    seen in a photo (a quadrilateral) is near 1 in both; an ellipse is 1 and pi/4."""
    edge = mask & ~ndimage.binary_erosion(mask)
    y, x = np.nonzero(edge)
    corners = np.concatenate([np.column_stack([y + dy, x + dx]) for dy in (0, 1) for dx in (0, 1)])
    try:
        hull = ConvexHull(corners.astype(np.float64))
    except QhullError:  # all on one line: a bar one pixel wide
        return 1.0, 1.0
    pts = hull.points[hull.vertices]
    # the smallest enclosing rectangle has a side along one of the hull's edges
    d = np.roll(pts, -1, axis=0) - pts
    ang = np.arctan2(d[:, 0], d[:, 1])
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    u, v = pts[:, 1] * c + pts[:, 0] * s, pts[:, 0] * c - pts[:, 1] * s
    rect = float(((u.max(1) - u.min(1)) * (v.max(1) - v.min(1))).min())
    area = float(mask.sum())
    return area / hull.volume, area / rect


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
