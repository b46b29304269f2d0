"""Thumbnails: PocketBase's size modes, output formats, and refusal of hostile images."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import pytest
from PIL import Image

from bastion.tools.images import MAX_SIDE, ImageRefused, make_thumb
from bastion.tools.thumbsize import IMAGE_TYPES, parse_size

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _halves(size: tuple[int, int], *, vertical: bool) -> Image.Image:
    """Red then blue: top/bottom halves when ``vertical``, else left/right."""
    image = Image.new("RGB", size, RED)
    w, h = size
    image.paste(BLUE, (0, h // 2, w, h) if vertical else (w // 2, 0, w, h))
    return image


def _thumb(data: bytes, spec: str) -> Image.Image:
    out, _ = make_thumb(data, spec)
    return Image.open(io.BytesIO(out)).convert("RGB")


def _close(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(pixel, colour, strict=True))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def test_parse_size():
    assert parse_size("100x50") == (100, 50, "")
    assert parse_size("100x50t") == (100, 50, "t")
    assert parse_size("0x50b") == (0, 50, "b")
    assert parse_size("100x0f") == (100, 0, "f")
    bad_specs = ("0x0", "0x0f", "100", "100x", "x100", "100x50c", "-1x5", "100X50", "100x50\n", "١٠x١٠")
    bad_specs += ("9" * 5000 + "x1",)
    for bad in bad_specs:
        assert parse_size(bad) is None, bad


@pytest.mark.parametrize(
    ("spec", "size"),
    [
        ("100x100", (100, 100)),
        ("100x100t", (100, 100)),
        ("100x100b", (100, 100)),
        ("100x100f", (100, 50)),
        ("0x50", (100, 50)),
        ("50x0", (50, 25)),
        ("0x50f", (100, 50)),
        ("40x10", (40, 10)),
        ("800x800f", (400, 200)),  # fit never enlarges
        ("800x800", (800, 800)),  # fill does
        ("0x400", (800, 400)),
    ],
)
def test_thumb_sizes(spec, size):
    assert _thumb(_encode(_halves((400, 200), vertical=False)), spec).size == size


def test_fill_crops_the_centre_top_or_bottom():
    tall = _encode(_halves((200, 400), vertical=True))  # red above blue
    top, bottom, centre = (_thumb(tall, spec) for spec in ("100x100t", "100x100b", "100x100"))
    assert all(_close(top.getpixel((x, y)), RED) for x, y in ((0, 0), (50, 50), (99, 99)))
    assert all(_close(bottom.getpixel((x, y)), BLUE) for x, y in ((0, 0), (50, 50), (99, 99)))
    assert _close(centre.getpixel((50, 5)), RED) and _close(centre.getpixel((50, 95)), BLUE)


def test_fill_of_a_wide_source_keeps_its_middle():
    wide = _encode(_halves((400, 200), vertical=False))  # red left of blue
    thumb = _thumb(wide, "100x100")  # the middle 200x200: half red, half blue
    assert _close(thumb.getpixel((5, 50)), RED) and _close(thumb.getpixel((95, 50)), BLUE)


def test_small_sources_are_filled_too():
    assert _thumb(_encode(_halves((30, 10), vertical=False)), "20x20").size == (20, 20)


@pytest.mark.parametrize(
    ("fmt", "mode", "ctype"),
    [
        ("JPEG", "RGB", "image/jpeg"),
        ("PNG", "RGBA", "image/png"),
        ("PNG", "P", "image/png"),
        ("PNG", "L", "image/png"),
        ("PNG", "I;16", "image/png"),
        ("GIF", "P", "image/gif"),
        ("WEBP", "RGBA", "image/png"),  # as PocketBase: webp thumbnails are PNG
        ("BMP", "RGB", "image/bmp"),
        ("TIFF", "RGB", "image/tiff"),
        ("JPEG", "CMYK", "image/jpeg"),
    ],
)
def test_output_format_follows_the_source(fmt, mode, ctype):
    data = _encode(Image.new(mode, (64, 32)), fmt)
    out, got = make_thumb(data, "16x16")
    assert got == ctype
    with Image.open(io.BytesIO(out)) as thumb:
        assert Image.MIME[thumb.format] == ctype
        assert thumb.size == (16, 16)


def test_transparency_survives_png_thumbnails():
    data = _encode(Image.new("RGBA", (50, 50), (0, 255, 0, 0)))
    out, _ = make_thumb(data, "10x10")
    assert Image.open(io.BytesIO(out)).convert("RGBA").getpixel((5, 5))[3] == 0


def test_sixteen_bit_grey_is_scaled_not_clipped():
    out, _ = make_thumb(_encode(Image.new("I;16", (20, 20), 0x8000)), "10x10")
    assert Image.open(io.BytesIO(out)).getpixel((5, 5)) == 0x80


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (40, 40), colour) for colour in (RED, BLUE, BLUE)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    thumb = _thumb(data, "20x20")
    assert _close(thumb.getpixel((10, 10)), RED)


def test_exif_orientation_is_applied_first():
    image = _halves((40, 20), vertical=False)  # red left, blue right, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: left becomes top
    data = _encode(image, "JPEG", exif=exif, quality=95)
    thumb = _thumb(data, "0x40")
    assert thumb.size == (20, 40)
    assert _close(thumb.getpixel((10, 5)), RED) and _close(thumb.getpixel((10, 35)), BLUE)


def test_image_types_are_pocketbases():
    assert IMAGE_TYPES == ("image/png", "image/jpg", "image/jpeg", "image/gif", "image/webp")


@pytest.mark.filterwarnings("error")  # Pillow's DecompressionBombWarning must not escape
@pytest.mark.parametrize("max_pixels", [50_000_000, 10**12])
def test_decompression_bomb_is_refused_before_decoding(max_pixels):
    bomb = _png_declaring(100_000, 100_000)
    assert len(bomb) < 200
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageRefused, match="exceeds the limit"):
            make_thumb(bomb, "100x100", max_pixels=max_pixels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1
    assert peak < 1_000_000


@pytest.mark.filterwarnings("error")
def test_pillows_own_limit_never_leaks_as_a_warning():
    # between Pillow's warning and error thresholds: refused by us, without a warning
    with pytest.raises(ImageRefused, match="exceeds the limit"):
        make_thumb(_png_declaring(10_000, 10_000), "10x10", max_pixels=10**12)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("screen", "frame"), [((1, 1), (10_000, 10_000)), ((65_535, 65_535), (1, 1))])
def test_gif_bombs_are_refused_by_screen_or_frame_size(screen, frame):
    gif = (
        b"GIF89a"
        + struct.pack("<HHBBB", *screen, 0, 0, 0)
        + b","
        + struct.pack("<4HB", 0, 0, *frame, 0)
        + b"\x02\x02\x44\x01\x00;"
    )
    with pytest.raises(ImageRefused, match="exceeds the limit"):
        make_thumb(gif, "10x10", max_pixels=10**12)


def test_a_small_max_pixels_is_honoured():
    data = _encode(Image.new("RGB", (100, 100)))
    with pytest.raises(ImageRefused):
        make_thumb(data, "10x10", max_pixels=9_999)
    assert make_thumb(data, "10x10", max_pixels=10_000)[1] == "image/png"


def test_truncated_jpeg_is_refused():
    noisy = Image.effect_noise((300, 300), 64).convert("RGB")
    data = _encode(noisy, "JPEG", quality=90)
    with pytest.raises(ImageRefused, match="truncated or corrupt"):
        make_thumb(data[: len(data) // 2], "50x50")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text",
        b"<html><script>alert(1)</script></html>",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7\n",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature and nonsense
        b"GIF89a\x01",
    ],
)
def test_non_images_and_broken_headers_are_refused(data):
    with pytest.raises(ImageRefused):
        make_thumb(data, "10x10")


@pytest.mark.parametrize("spec", ["0x0", "abc", "10x10z", f"{MAX_SIDE + 1}x10", f"10x{MAX_SIDE + 1}f"])
def test_bad_or_absurd_sizes_are_refused(spec):
    with pytest.raises(ImageRefused):
        make_thumb(_encode(Image.new("RGB", (10, 10))), spec)


def test_a_derived_side_cannot_explode():
    thin = _encode(Image.new("RGB", (10_000, 1)))
    with pytest.raises(ImageRefused, match="too large"):
        make_thumb(thin, "0x10000")


def test_refusal_is_a_value_error():
    assert issubclass(ImageRefused, ValueError)
