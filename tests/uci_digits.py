"""Real handwritten digits that are not MNIST, as image files like users make them.

scikit-learn ships the UCI optical digits (``load_digits``: 1797 digits written by 43
people, 8x8, ink 0..16; offline). ``write_digit_files`` turns them into PNG/JPEG/GIF/BMP
files at mixed sizes, aspect ratios, positions and padding, both polarities, some in
colour and some with a transparent background. Generated into a temporary folder at test
time; never committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = (("png", 0.35), ("jpg", 0.25), ("gif", 0.15), ("bmp", 0.25))


def load_uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) float ink in [0, 1] (1 = ink) and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target


def _render(ink8: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """One digit as a user's image: (PIL image, file extension)."""
    h = int(rng.integers(24, 161))
    w = max(8, round(h * rng.uniform(0.7, 1.2)))
    digit = Image.fromarray((ink8 * 255).astype(np.uint8), "L").resize(
        (w, h), Image.Resampling.BICUBIC if rng.random() < 0.5 else Image.Resampling.BILINEAR
    )
    ink = np.asarray(digit, np.float32) / 255.0
    # padding: up to 1.5x the digit on each side, independently (off-centre placement)
    top, bottom, left, right = (int(rng.integers(0, int(1.5 * s) + 1)) for s in (h, h, w, w))
    field = np.zeros((h + top + bottom, w + left + right), np.float32)
    field[top : top + h, left : left + w] = ink
    ext = str(rng.choice([f for f, _ in FORMATS], p=[p for _, p in FORMATS]))
    style = rng.random()
    if style < 0.15 and ext in ("png", "gif"):  # ink on a transparent background
        colour = np.array([20, 20, 30]) if rng.random() < 0.7 else np.array([240, 240, 240])
        rgba = np.zeros((*field.shape, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = np.round(field * 255)
        img = Image.fromarray(rgba, "RGBA")
        if ext == "gif":  # GIF transparency is one palette index: a hard mask
            rgba[..., 3] = np.where(field > 0.4, 255, 0)
            img = Image.fromarray(rgba, "RGBA")
        return img, ext
    dark_ink = rng.random() < 0.6  # most people write dark ink on light paper
    paper = rng.uniform(190, 255) if dark_ink else rng.uniform(0, 60)
    pen = rng.uniform(0, 70) if dark_ink else rng.uniform(190, 255)
    if style < 0.45:  # colour: a tinted paper and a coloured pen
        paper_c = np.clip(paper + rng.uniform(-25, 25, 3), 0, 255)
        pen_c = np.clip(pen + rng.uniform(-60, 60, 3), 0, 255)
        rgb = paper_c + field[..., None] * (pen_c - paper_c)
        return Image.fromarray(np.round(rgb).astype(np.uint8), "RGB"), ext
    grey = paper + field * (pen - paper)
    return Image.fromarray(np.round(grey).astype(np.uint8), "L"), ext


def write_digit_files(
    out_dir: Path, n: int | None = None, seed: int = 0
) -> tuple[list[Path], np.ndarray]:
    """Write the first ``n`` UCI digits (all: None) as image files; returns paths, labels."""
    images, labels = load_uci_digits()
    n = len(images) if n is None else n
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img, ext = _render(images[i], rng)
        path = out_dir / f"digit_{i:04d}.{ext}"
        if ext == "jpg":
            img.convert("RGB").save(path, quality=int(rng.integers(60, 96)))
        elif ext == "gif":
            img.save(path)  # Pillow quantises to a palette (with transparency if RGBA)
        else:
            img.save(path)
        paths.append(path)
    return paths, labels[:n]


def naive_picture(path: Path, match_polarity: bool) -> np.ndarray:
    """The baseline: the whole image converted to grey and resized to 28x28 (bilinear);
    optionally inverted when its mean is light (MNIST is light ink on black)."""
    with Image.open(path) as img:
        img.seek(0)
        g = np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))
    if match_polarity and g.mean() > 127:
        g = 255 - g
    return g.astype(np.uint8)
