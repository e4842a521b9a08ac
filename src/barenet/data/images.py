"""Users' own images -> the 28x28 uint8 pictures the datasets are made of.

One function, :func:`to_dataset_image`, serves ``barenet predict``, the web page and the
Python API. Steps, for any PNG/JPEG/BMP/GIF (first frame), size, grey or colour, with alpha:

1. **Grey.** EXIF rotation applied; 16-bit greys scaled from 0-65535 (Pillow's own
   conversion clips them at 255); transparent pixels are composited onto a background that
   contrasts with the opaque ones (ink drawn on a transparent canvas stays visible); a
   dithered 1-bit image's dots are averaged back to greys.
2. **Polarity.** Both datasets are light ink on a black background. The paper level ``bg``
   is the median of a border frame; if it is light, the image is inverted. Then
   ``ink = clip(|g - bg|, 0) / max`` so grey paper becomes 0 and the darkest stroke 1;
   where the light falls unevenly (a photo), ``bg`` is a smooth surface fitted to the
   frame (``paper.py``). For digits, a page photographed lying on a darker (or lighter)
   table that fills the frame has the table painted as its paper first (``off_table``).
3. **Layout.** MNIST (as LeCun et al. built it from NIST): crop to the ink's bounding box,
   scale its longest side to 20 px keeping the aspect ratio (anti-aliased, Lanczos), and
   place it in 28x28 so that its centre of mass (pixel-index coordinates) lands on
   (14, 14). Fashion-MNIST (as Zalando built it): crop, longest side to 28 px, centred.

Reading is bounded: files over ``MAX_FILE_BYTES`` and images over ``MAX_PIXELS`` (checked
from the header, before decoding: no decompression bombs) are refused with
:class:`ImageError`.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from ..errors import FileError
from ..fileio import read_bytes
from .datasets import IMAGE_SHAPE, canonical_name
from .paper import off_table, paper

MAX_FILE_BYTES = 20 * 1024 * 1024  # a photo from a phone is a few MB
MAX_PIXELS = 40_000_000  # ~6300 x 6300; Pillow's own bomb limit is 89 M
# Larger images are box-averaged to at most this side before any float array is made
# (a 6300^2 RGBA photo took ~1 GB in float32 copies); a digit filling a tenth of such an
# image still has ~200 px, ten times the 20 px it is fitted to.
WORK_SIDE = 2048
FORMATS = ("PNG", "JPEG", "BMP", "GIF")
# A pixel is ink (for the bounding box) above this fraction of the strongest ink: keeps
# JPEG ringing and paper texture out of the box.
INK_THRESHOLD = 0.15
MNIST_BOX = 20  # longest side of the digit in MNIST
# A 1-bit image whose pixels change colour this often along rows or columns is a dithered
# (halftone) picture: its dots are averaged over (longest side) // DITHER_SPAN px, about an
# output pixel, before the paper is found (else the paper's dots are ink). Line art changes
# at its edges only (~1% of pixels) and is left as it is.
DITHERED_CHANGES = 0.1
DITHER_SPAN = 28
MNIST_CENTRE = (14.0, 14.0)  # mean centre of mass of MNIST's training digits (row, col)

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray


class ImageError(FileError):
    """A file that is missing, too large, corrupt or not an image we read."""


def _check_size(w: int, h: int, name: str) -> None:
    if w < 1 or h < 1:
        raise ImageError(f"{name}: empty image ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: image too large ({w}x{h} pixels; the limit is {MAX_PIXELS:,})")


def _image_error(path: Path, name: str, e: FileError) -> ImageError:
    """read_bytes' message, reworded to start with the name the user gave."""
    if not path.exists() and not path.is_symlink():
        return ImageError(f"{name}: no such file")
    if path.is_dir():
        return ImageError(f"{name}: is a folder, not an image")
    if "allowed" in str(e):
        return ImageError(f"{name}: file too large (limit {MAX_FILE_BYTES:,} bytes)")
    reason = str(e).rsplit(": ", 1)[-1]
    return ImageError(f"{name}: cannot read: {reason}")


def open_image(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Decode a PNG/JPEG/BMP/GIF file or its bytes (GIF: the first frame), with bounds."""
    if isinstance(source, bytes):
        data, name = source, name or "<image bytes>"
    else:
        path = Path(source)
        name = name or str(path)
        try:  # only a regular file, and at most MAX_FILE_BYTES (no FIFO, /dev/zero, folder)
            data = read_bytes(path, "image", max_bytes=MAX_FILE_BYTES)
        except FileError as e:
            raise _image_error(path, name, e) from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: too large ({len(data):,} bytes; limit {MAX_FILE_BYTES:,})")
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
            _check_size(*img.size, name)  # from the header: nothing decoded yet
            img.seek(0)
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (PNG, JPEG, BMP or GIF)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow refuses from the header before _check_size sees it; its count, our limit
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found[1]):,} pixels; " if found else ""
        raise ImageError(f"{name}: image too large ({size}the limit is {MAX_PIXELS:,})") from None
    except Exception as e:  # truncated or corrupt data: Pillow raises many types
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ImageError(f"{name}: corrupt image: {msg}") from None
    return img


def _full_scale(peak: float, is_float: bool) -> float:
    """The pixel value that means white, from the largest value ``peak``. Floats: 1, or
    255 when values exceed 1.5 (``np.asarray(img, float)`` gives 0-255). Integers (16-bit
    PNGs, uint16 and int arrays): 255 when no value exceeds it, else 65535 (16 bits), else
    ``peak``."""
    if is_float:
        return 1.0 if peak <= 1.5 else 255.0
    return 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else float(peak)


def _reduced(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode``, box-averaged down to at most WORK_SIDE when larger (before any
    float copy of 40 M pixels is made); EXIF rotation applied."""
    if max(img.size) > WORK_SIDE:
        exif = img.getexif()
        img = (img if img.mode == mode else img.convert(mode)).reduce(
            -(-max(img.size) // WORK_SIDE)
        )
        img.info["exif"] = exif.tobytes()  # the orientation, for exif_transpose below
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not worth refusing the image
        return img


def _deep_grey(img: Image.Image) -> np.ndarray:
    """16-bit PNGs (mode I;16) and 32-bit integer or float images (I, F): Pillow's own
    conversion to 8 bits clips at 255 instead of scaling, which made any grey paper white."""
    peak = float(img.getextrema()[1])
    g = np.asarray(_reduced(img.convert("F"), "F"), dtype=np.float32)
    g = np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    g /= _full_scale(peak, img.mode == "F")
    return np.clip(g, 0.0, 1.0, out=g)


def _undithered(img: Image.Image) -> Image.Image:
    """A 1-bit image (as mode L): a dithered one's dots box-averaged (DITHERED_CHANGES)."""
    dark = np.asarray(img) < 128
    changes = max(
        float(np.mean(dark[:, 1:] != dark[:, :-1])) if dark.shape[1] > 1 else 0.0,
        float(np.mean(dark[1:] != dark[:-1])) if dark.shape[0] > 1 else 0.0,
    )
    radius = max(img.size) // DITHER_SPAN
    if changes < DITHERED_CHANGES or radius < 1:
        return img
    return img.filter(ImageFilter.BoxBlur(radius))


def _grey(img: Image.Image) -> np.ndarray:
    """(H, W) float32 luminance in [0, 1], transparency composited onto a contrasting
    background."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return _deep_grey(img)
    if img.mode in ("La", "RGBa"):  # premultiplied alpha: Pillow converts La only to LA
        img = img.convert(img.mode.upper())
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    bits = img.mode == "1"
    img = _reduced(img, "RGBA" if has_alpha else "L")
    if not has_alpha:
        img = _undithered(img.convert("L")) if bits else img.convert("L")
        return np.asarray(img, dtype=np.float32) / 255.0
    rgba = img.convert("RGBA")
    lum = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    opaque = alpha > 0.5
    if opaque.all():
        return lum
    ink_is_dark = opaque.any() and float(lum[opaque].mean()) < 0.5
    background = 1.0 if ink_is_dark else 0.0
    return alpha * lum + (1.0 - alpha) * background


def _array_grey(a: np.ndarray) -> np.ndarray:
    """A NumPy image: (H, W) or (H, W, 1) grey, (H, W, 3|4) colour (with alpha);
    uint8, bool, other integers (0-255, or 0-65535 when larger values occur:
    16-bit) or floats in [0, 1] (0-255 when values exceed 1.5)."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[a.shape[2]]
        a = a[:, :, 0] if mode == "L" else a
    elif a.ndim == 2:
        mode = "L"
    else:
        raise ImageError(
            f"an image array must be (H, W), (H, W, 1) or (H, W, 3|4), got shape {a.shape}"
        )
    _check_size(a.shape[1], a.shape[0], "<array>")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ImageError(f"an image array must hold real numbers, got dtype {a.dtype}")
        f = a.astype(np.float64)
        finite = np.isfinite(f)
        peak = float(f[finite].max()) if finite.any() else 0.0
        f[~finite] = 0.0
        white = _full_scale(peak, a.dtype.kind == "f")
        a = (np.clip(f / white, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return _grey(Image.fromarray(a, mode))


def ink_map(img: Image.Image | np.ndarray, on_table: bool = False) -> np.ndarray:
    """(H, W) float32 ink in [0, 1]: 0 the paper, 1 the strongest stroke, light-on-dark
    whatever the image's polarity (steps 1-2 of the module docstring). ``on_table``: the
    page may lie on a table that fills the border (``paper.off_table``)."""
    g = _array_grey(img) if isinstance(img, np.ndarray) else _grey(img)
    if on_table:
        g = off_table(g)
    level, under = paper(g)  # the border's median, or a surface where the light varies
    ink = (under - g) if level > 0.5 else (g - under)
    np.clip(ink, 0.0, None, out=ink)
    peak = float(ink.max())
    return ink / peak if peak > 0 else ink


def _crop_to_ink(ink: np.ndarray) -> np.ndarray | None:
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    if not len(rows):
        return None
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(ink: np.ndarray, longest: int) -> np.ndarray:
    """Resize so the longest side is ``longest`` px, aspect kept, anti-aliased."""
    h, w = ink.shape
    s = longest / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    out = Image.fromarray(ink.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def _place(box: np.ndarray, centre: tuple[float, float] | None) -> np.ndarray:
    """``box`` in a 28x28 black field: its centre of mass on ``centre``, or (None) centred."""
    field = np.zeros(IMAGE_SHAPE, np.float32)
    h, w = box.shape
    if centre is None:
        top, left = (IMAGE_SHAPE[0] - h) // 2, (IMAGE_SHAPE[1] - w) // 2
    else:
        mass = float(box.sum())
        cy = float((box.sum(axis=1) * np.arange(h)).sum()) / mass
        cx = float((box.sum(axis=0) * np.arange(w)).sum()) / mass
        # clamped so the box stays whole inside the field
        top = min(max(round(centre[0] - cy), 0), IMAGE_SHAPE[0] - h)
        left = min(max(round(centre[1] - cx), 0), IMAGE_SHAPE[1] - w)
    field[top : top + h, left : left + w] = box
    return field


def to_dataset_image(source: ImageSource, dataset: str = "mnist") -> np.ndarray:
    """A user's image as a (28, 28) uint8 picture laid out like ``dataset``'s images.

    ``source``: a file path, the file's bytes, a PIL image (any mode, 16-bit too), or an
    array ((H, W[, 1]) grey, (H, W, 3|4) colour; uint8, bool, 16-bit or
    other integers, floats in [0, 1] or 0-255: see ``_array_grey``). An image without ink
    gives zeros.
    """
    name = canonical_name(dataset)
    if isinstance(source, np.ndarray | Image.Image):
        img = source
    else:
        img = open_image(source)
    box = _crop_to_ink(ink_map(img, on_table=name == "mnist"))
    if box is None:
        return np.zeros(IMAGE_SHAPE, np.uint8)
    if name == "mnist":
        field = _place(_fit(box, MNIST_BOX), MNIST_CENTRE)
    else:
        field = _place(_fit(box, IMAGE_SHAPE[0]), None)
    return (field * 255.0 + 0.5).astype(np.uint8)
