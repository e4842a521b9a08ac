"""barenet.data.images: users' images laid out like MNIST / Fashion-MNIST, and bounded reading."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from barenet.data import images
from barenet.data.images import ImageError, ink_map, open_image, to_dataset_image


def stroke_image(h=200, w=150, dark_ink=True, box=(40, 60, 150, 90)) -> np.ndarray:
    """A grey page with one filled rectangle of ink (rows top:bottom, cols left:right)."""
    top, left, bottom, right = box
    ink = np.zeros((h, w), np.float32)
    ink[top:bottom, left:right] = 1.0
    g = 255 * (1 - ink) if dark_ink else 255 * ink
    return g.astype(np.uint8)


def ink_box(pic: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(pic.any(1) > 0), np.flatnonzero(pic.any(0) > 0)
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def centre_of_mass(pic: np.ndarray) -> tuple[float, float]:
    p = pic.astype(np.float64)
    yy, xx = np.mgrid[: p.shape[0], : p.shape[1]]
    return (p * yy).sum() / p.sum(), (p * xx).sum() / p.sum()


def png_bytes(a: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format=fmt)
    return buf.getvalue()


def test_mnist_layout_box_20_aspect_kept_centre_of_mass_14():
    # a tall thin stroke: 110 x 30 px
    pic = to_dataset_image(stroke_image(), "mnist")
    assert pic.shape == (28, 28) and pic.dtype == np.uint8
    top, bottom, left, right = ink_box(pic > 40)
    assert bottom - top == 20  # longest side scaled to 20 px
    assert right - left == pytest.approx(20 * 30 / 110, abs=1.5)  # aspect ratio kept
    cy, cx = centre_of_mass(pic)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # whole-pixel shift, as MNIST
    assert pic.max() >= 250  # light ink on black, like MNIST


def test_off_centre_ink_is_moved_to_the_centre():
    a = to_dataset_image(stroke_image(box=(5, 5, 60, 25)), "mnist")
    b = to_dataset_image(stroke_image(box=(130, 110, 185, 130)), "mnist")
    np.testing.assert_array_equal(a, b)


def test_polarity_detected_both_ways():
    dark = to_dataset_image(stroke_image(dark_ink=True), "mnist")
    light = to_dataset_image(stroke_image(dark_ink=False), "mnist")
    np.testing.assert_array_equal(dark, light)
    # grey paper and grey pen: the paper level is removed, the stroke becomes full ink
    grey = np.where(stroke_image() == 0, 90, 170).astype(np.uint8)
    np.testing.assert_array_equal(to_dataset_image(grey, "mnist"), dark)


def test_fashion_layout_longest_side_28_centred():
    pic = to_dataset_image(stroke_image(box=(20, 30, 120, 80)), "fashion-mnist")
    top, bottom, left, right = ink_box(pic > 40)
    assert (top, bottom) == (0, 28)
    assert right - left == 14 and left == 7  # 50x100 -> 14x28, centred


def test_alpha_transparent_background_either_ink_colour():
    ink = stroke_image(dark_ink=False)  # 255 where ink
    expected = to_dataset_image(ink, "mnist")
    for colour in (20, 235):  # dark ink or light ink, on transparency
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = ink
        np.testing.assert_array_equal(to_dataset_image(png_bytes(rgba, "RGBA"), "mnist"), expected)


def test_colour_and_every_format(tmp_path):
    grey = stroke_image()
    expected = to_dataset_image(grey, "mnist")
    rgb = np.stack([grey, np.maximum(grey, 60), np.maximum(grey, 120)], axis=-1)  # blue-ish pen
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("GIF", "gif")):
        path = tmp_path / f"x.{ext}"
        Image.fromarray(rgb, "RGB").save(path, format=fmt)
        got = to_dataset_image(path, "mnist")
        tol = 40 if fmt == "JPEG" else 2  # JPEG ringing at the stroke's edges
        assert np.abs(got.astype(int) - expected).max() <= tol, fmt


def test_gif_first_frame(tmp_path):
    a, b = stroke_image(), stroke_image(box=(20, 20, 60, 130))  # a tall and a wide stroke
    path = tmp_path / "anim.gif"
    Image.fromarray(a).save(path, save_all=True, append_images=[Image.fromarray(b)])
    np.testing.assert_array_equal(to_dataset_image(path), to_dataset_image(a))


def test_exif_rotation_applied(tmp_path):
    img = Image.fromarray(stroke_image())  # tall stroke
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    path = tmp_path / "photo.jpg"
    img.save(path, exif=exif, quality=95)
    top, bottom, left, right = ink_box(to_dataset_image(path) > 60)
    assert right - left == 20 and bottom - top < 10  # shown wide, as the camera meant


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_huge_image_reduced_first_same_picture(tmp_path, monkeypatch, mode):
    """Images larger than WORK_SIDE are box-averaged before any float copy: the same
    28x28 picture (to a grey level or two), the EXIF rotation still applied."""
    monkeypatch.setattr(images, "WORK_SIDE", 100)  # so a small test image counts as huge
    page = stroke_image()  # 200 x 150, a tall stroke
    img = Image.fromarray(page) if mode == "L" else Image.fromarray(page).convert("RGBA")
    reduced = to_dataset_image(img)
    monkeypatch.setattr(images, "WORK_SIDE", 4096)
    whole = to_dataset_image(img)
    assert np.abs(reduced.astype(int) - whole.astype(int)).max() <= 40
    assert ink_box(reduced > 60) == ink_box(whole > 60)
    monkeypatch.setattr(images, "WORK_SIDE", 100)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    Image.fromarray(page).save(path, exif=exif, quality=95)
    top, bottom, left, right = ink_box(to_dataset_image(path) > 60)
    assert right - left == 20 and bottom - top < 10  # shown wide, as the camera meant


def test_huge_photo_bounded_numpy_memory():
    """A 6300^2 RGBA image (within MAX_PIXELS) made NumPy float copies of 160 MB each (~1 GB
    peak in predict); reduced first, NumPy's peak stays small (tracemalloc sees NumPy's
    allocations, not Pillow's own pixels)."""
    import tracemalloc

    from PIL import ImageDraw

    img = Image.new("RGBA", (6300, 6300), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(3000, 1000), (3100, 5000)], fill=(0, 0, 0, 255), width=300)
    tracemalloc.start()
    try:
        pic = to_dataset_image(img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120 * 2**20, f"{peak / 2**20:.0f} MiB"
    top, bottom, left, right = ink_box(pic > 60)
    assert bottom - top == 20 and right - left < 10  # the tall stroke, as drawn


def test_blank_image_gives_zeros():
    assert not to_dataset_image(np.full((50, 50), 255, np.uint8)).any()
    assert not to_dataset_image(np.zeros((3, 3), np.uint8)).any()


def test_float_and_tiny_arrays():
    a = stroke_image().astype(np.float64) / 255
    np.testing.assert_array_equal(to_dataset_image(a), to_dataset_image(stroke_image()))
    one = np.zeros((1, 1), np.uint8)
    assert to_dataset_image(one).shape == (28, 28)
    with pytest.raises(ImageError, match="shape"):
        to_dataset_image(np.zeros((4, 4, 2)))


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_dithered_1_bit_image_keeps_its_layout(dataset):
    """A grey page saved as 1 bit (Pillow's default Floyd-Steinberg dithering): the paper's
    dots were ink, so the crop was the whole page and the shape came out shrunk on a grey
    frame (correlation 0.50 / 0.78 with the grey page's picture). Clean line art is untouched."""
    from PIL import ImageDraw

    page = Image.new("L", (300, 300), 225)
    draw = ImageDraw.Draw(page)
    draw.rectangle([90, 60, 210, 260], fill=90)
    draw.ellipse([40, 40, 140, 140], fill=90)
    ref = to_dataset_image(page, dataset).astype(np.float64)
    dithered = to_dataset_image(page.convert("1"), dataset).astype(np.float64)
    assert np.corrcoef(ref.ravel(), dithered.ravel())[0, 1] > 0.9
    assert (dithered[ref == 0] > 20).mean() < 0.05  # the paper stays black (was 27% / 99%)
    assert all(abs(a - b) <= 1 for a, b in zip(ink_box(dithered), ink_box(ref), strict=True))
    line_art = page.convert("1", dither=Image.Dither.NONE)
    np.testing.assert_array_equal(
        to_dataset_image(line_art, dataset), to_dataset_image(line_art.convert("L"), dataset)
    )


def grey_page() -> np.ndarray:
    """stroke_image on grey paper (200) with dark grey ink (30), as a scan or photo is."""
    return np.where(stroke_image() < 128, 30, 200).astype(np.uint8)


def test_16_bit_png_on_grey_paper_is_scaled_not_clipped(tmp_path, monkeypatch):
    """Pillow opens a 16-bit grey PNG as I;16 and converts it to 8 bits by clipping at 255:
    paper and ink both became white and the digit a blank. Also when reduced first."""
    page = grey_page()
    want = to_dataset_image(page)
    path = tmp_path / "scan16.png"
    Image.fromarray(page.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")
    assert want.any()
    np.testing.assert_array_equal(to_dataset_image(path), want)
    monkeypatch.setattr(images, "WORK_SIDE", 100)
    assert ink_box(to_dataset_image(path) > 60) == ink_box(to_dataset_image(page) > 60)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(np.int64),  # np.array(list_of_ints)
        lambda a: a.astype(np.int32),
        lambda a: a.astype(np.uint16) * 257,  # cv2.imread(IMREAD_UNCHANGED) of a 16-bit PNG
        lambda a: a.astype(np.float32),  # np.asarray(img, np.float32): 0-255
        lambda a: a[:, :, None],  # (H, W, 1), as Keras and OpenCV give grey images
        lambda a: Image.fromarray(a.astype(np.float32) / 255),  # PIL mode F in [0, 1]
        lambda a: Image.fromarray(a).convert("LA").convert("La"),  # premultiplied alpha
    ],
    ids=["int64", "int32", "uint16", "float-0-255", "HxWx1", "PIL-F", "PIL-La"],
)
def test_arrays_of_other_dtypes_keep_their_grey_levels(convert):
    """Non-uint8 arrays were clipped to [0, 1] as if floats: grey paper at 200 and ink at
    30 both became white, a blank."""
    page = grey_page()
    want = to_dataset_image(page)
    assert want.any()
    np.testing.assert_array_equal(to_dataset_image(convert(page)), want)


def lit(page: np.ndarray, how: str) -> np.ndarray:
    """``page`` photographed: lit from the left (a ramp, 45% darker on the right) or darker
    in the corners (a vignette, 40%)."""
    h, w = page.shape
    yy, xx = np.mgrid[:h, :w]
    if how == "ramp":
        light = 1 - 0.45 * xx / (w - 1)
    else:
        light = 1 - 0.4 * (np.hypot(yy / (h - 1) - 0.5, xx / (w - 1) - 0.5) / 0.7071) ** 2
    return np.round(page * light).astype(np.uint8)


@pytest.mark.parametrize("how", ["ramp", "vignette"])
def test_uneven_light_is_not_ink(how):
    """One paper level left the darker side as 'ink': the crop took it in and the digit
    became a smudge in a corner (UCI digits lit so: ~10% right instead of ~80%)."""
    page = np.where(stroke_image() < 128, 30, 230).astype(np.uint8)
    want = to_dataset_image(page)
    got = to_dataset_image(lit(page, how))
    (top, bottom, left, right), (t, b, lf, r) = ink_box(got > 60), ink_box(want > 60)
    assert (bottom - top, right - left) == (b - t, r - lf)  # the stroke, the same size
    assert abs(top - t) <= 1 and abs(left - lf) <= 1  # fainter on the dark side: mass moves
    assert np.abs(got.astype(int) - want).mean() < 6


def test_even_paper_keeps_the_flat_level_with_ink_on_the_border():
    """Scans and drawings are read as before: the surface is fitted only to what is
    paper, so a stroke across the border frame does not tilt it."""
    from barenet.data.paper import paper

    page = np.where(stroke_image(box=(0, 0, 200, 40)) < 128, 30, 230).astype(np.float32) / 255
    level, under = paper(page)
    assert level == under == np.float32(230 / 255)


def test_mnist_images_keep_their_layout():
    """An MNIST digit as a user's dark-on-light file comes back almost unchanged."""
    from barenet.data import load

    x, _ = load("mnist", split="test")
    diffs = []
    for digit in x[:50]:
        back = to_dataset_image(png_bytes(255 - digit), "mnist").astype(float)
        diffs.append(np.abs(back - digit).mean() / 255)
    assert np.median(diffs) < 0.03


def test_ink_map_range():
    ink = ink_map(stroke_image())
    assert ink.min() == 0 and ink.max() == 1


# -- bounded, one-line failures ---------------------------------------------------------
def test_missing_empty_folder_text_truncated(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        open_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="is a folder"):
        open_image(tmp_path)
    (tmp_path / "notes.png").write_text("hello, not an image\n")
    with pytest.raises(ImageError, match="not an image"):
        open_image(tmp_path / "notes.png")
    data = png_bytes(stroke_image())
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png: corrupt image"):
        open_image(tmp_path / "cut.png")


def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    # A link to /dev/zero has st_size 0 and reads forever (it took 24 GB before this was
    # refused); opening a FIFO blocks until a writer comes.
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    for name in ("fifo.png", "zero.png"):
        with pytest.raises(ImageError, match=f"{name}: cannot read: not a regular file"):
            open_image(tmp_path / name)


def test_other_formats_refused(tmp_path):
    path = tmp_path / "x.tiff"
    Image.fromarray(stroke_image()).save(path, format="TIFF")
    with pytest.raises(ImageError, match="not an image"):
        open_image(path)


def test_file_size_cap(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(stroke_image()))
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    with pytest.raises(ImageError, match="too large"):
        open_image(path)
    with pytest.raises(ImageError, match="too large"):
        open_image(path.read_bytes())


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_before_decoding():
    with pytest.raises(ImageError, match="too large"):
        open_image(_png_claiming(100_000, 100_000))  # 10 G pixels: decoding would never end
    with pytest.raises(ImageError, match="too large"):
        open_image(_png_claiming(7000, 7000))  # 49 M pixels, over MAX_PIXELS


def test_photo_over_pillows_limit_names_its_size_and_ours():
    """A 10000x10000 photo (Pillow warns above 89 M pixels, before our 40 M check) was
    called a 'decompression bomb?'; it is named like any image over the limit."""
    with pytest.raises(ImageError) as err:
        open_image(_png_claiming(10_000, 10_000), "photo.png")
    assert (
        str(err.value) == "photo.png: image too large (100,000,000 pixels; the limit is 40,000,000)"
    )
