"""barenet.data.paper.off_table: a page photographed lying on a table is read as the page."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from barenet.data import load
from barenet.data.images import to_dataset_image
from barenet.data.paper import off_table


def photo(digit: np.ndarray, table: int, sheet: int, angle: float = 0.0) -> np.ndarray:
    """A 300x300 photo: ``digit`` (an MNIST picture) written large on a 190x150 sheet of
    grey ``sheet``, turned by ``angle`` degrees, on a table of grey ``table``."""
    ink = np.asarray(Image.fromarray(digit).resize((90, 90), Image.Resampling.LANCZOS)) / 255
    pen = 30 if sheet > 128 else 235
    page = np.full((190, 150), float(sheet), np.float32)
    page[50:140, 30:120] = sheet * (1 - ink) + pen * ink
    big = Image.new("F", (300, 300), float(table))
    big.paste(Image.fromarray(page, "F"), (70, 60))
    covered = Image.new("L", (300, 300), 0)
    covered.paste(255, (70, 60, 220, 250))
    big = big.rotate(angle, Image.Resampling.BILINEAR, fillcolor=float(table))
    covered = covered.rotate(angle, Image.Resampling.BILINEAR)
    out = np.where(np.asarray(covered) > 127, np.asarray(big), table)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("table", "sheet", "angle"),
    [(50, 215, 0.0), (50, 215, 12.0), (90, 190, 0.0), (215, 40, 0.0), (215, 40, -8.0)],
)
def test_page_on_a_table_reads_like_the_page_alone(table, sheet, angle):
    """The table filled the border frame, so it was taken for the paper: the whole sheet
    came back as one block of ink (a grey square, not the digit)."""
    x, _ = load("mnist", split="test")
    for digit in x[:5]:
        alone = to_dataset_image(photo(digit, sheet, sheet, angle))
        got = to_dataset_image(photo(digit, table, sheet, angle))
        assert np.abs(got.astype(int) - alone).mean() < 3


def test_a_fat_digit_is_not_taken_for_a_page():
    """Digits whose strokes fill the centre, light on dark or dark on light, drawn or
    upscaled: the frame and the centre differ, but the 'sheet' is the digit itself, whose
    holes would be its writing. They are left alone, so they are read as before."""
    x, _ = load("mnist", split="test")
    seen = 0
    for digit in x[:600:3]:
        g = np.asarray(Image.fromarray(digit).resize((112, 112), Image.Resampling.BILINEAR))
        for fat in (1, 4, 7):
            f = ndimage.grey_dilation(g, size=(fat, fat)).astype(np.float32) / 255
            for pic in (f, 1 - f):
                centre = np.median(pic[28:84, 28:84])
                seen += (centre > 0.5) != (np.median(pic[:7]) > 0.5)
                assert off_table(pic) is pic
    assert seen > 50  # many of them do pass the first test (frame and centre differ)
