"""Thumbnails of uploaded images, sized and cropped the way PocketBase makes them.

Uploads are hostile until decoded: the declared dimensions are read from the header and
bounded before a single pixel is decompressed, only a handful of common decoders are ever
reached (never Pillow's guess over every format it knows), and only an animation's first
frame is decoded. Synchronous and CPU-bound: callers run it in a thread pool.
"""

from __future__ import annotations

import io
import math
import struct

from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from bastion.tools import sniff
from bastion.tools.thumbsize import parse_size

#: Neither side of a thumbnail may exceed this.
MAX_SIDE = 10_000

_DECODERS: dict[str, type[ImageFile.ImageFile]] = {
    "image/png": PngImagePlugin.PngImageFile,
    "image/jpeg": JpegImagePlugin.JpegImageFile,
    "image/gif": GifImagePlugin.GifImageFile,
    "image/webp": WebPImagePlugin.WebPImageFile,
    "image/bmp": BmpImagePlugin.BmpImageFile,
    "image/tiff": TiffImagePlugin.TiffImageFile,
}

# Output format per source type, and the modes it is written in; anything else becomes PNG.
_ENCODERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "image/jpeg": ("JPEG", ("L", "RGB")),
    "image/gif": ("GIF", ("L", "RGB", "RGBA")),
    "image/bmp": ("BMP", ("L", "RGB", "RGBA")),
    "image/tiff": ("TIFF", ("L", "LA", "RGB", "RGBA")),
}
_PNG = ("PNG", ("L", "LA", "RGB", "RGBA"))

_LINEAR = Image.Resampling.BILINEAR
_Box = tuple[int, int, int, int]


class ImageRefused(ValueError):
    """The data is not an image a thumbnail can safely be made of, or the size asked is absurd."""


def make_thumb(data: bytes, spec: str, *, max_pixels: int = 50_000_000) -> tuple[bytes, str]:
    """A thumbnail of the image in ``data`` as ``(bytes, content type)``.

    ``WxH`` fills the box and crops the centre, ``WxHt`` / ``WxHb`` keep the top / bottom,
    ``WxHf`` fits inside the box (never enlarging), ``0xH`` / ``Wx0`` scale to one side.
    Raises ImageRefused for a bad size, data that isn't a readable image, or one whose
    source or thumbnail would exceed ``max_pixels``.
    """
    size = parse_size(spec)
    if size is None:
        raise ImageRefused(f"thumb size {spec[:40]!r} is not WxH, WxHt, WxHb or WxHf")
    width, height, mode = size
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageRefused(f"thumb sides are limited to {MAX_SIDE} pixels")
    # Pillow warns (and later raises) above its own limit: stay under both.
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    ctype = sniff.content_type(data[: sniff.HEAD_SIZE])
    with _open(data, ctype, limit) as image:  # closing frees the decoded pixels too
        frame = _decode(image)
        dst, box = _geometry(frame.size, width, height, mode)
        if max(dst) > MAX_SIDE or dst[0] * dst[1] > limit:
            raise ImageRefused(f"a {dst[0]}x{dst[1]} thumbnail is too large")
        if box != (0, 0, *frame.size):  # crop first, so the filter never samples what is cut away
            frame = frame.crop(box)
        if dst != frame.size:
            frame = frame.resize(dst, _LINEAR)
        return _encode(frame, ctype)


def _open(data: bytes, ctype: str, limit: int) -> ImageFile.ImageFile:
    """The image's header, parsed by the one decoder for its sniffed type; pixels untouched."""
    decoder = _DECODERS.get(ctype)
    if decoder is None:
        raise ImageRefused(f"{ctype} is not an image thumbnails are made of")
    try:
        if ctype == "image/gif":  # Pillow sizes a GIF while parsing its header: check first
            _check_pixels(_gif_canvas(data), limit)
        image = decoder(io.BytesIO(data))
    except ImageRefused:
        raise
    except Exception as exc:  # hostile headers raise a zoo of types (SyntaxError, struct.error, ...)
        raise ImageRefused(f"not a readable {ctype} image") from exc
    try:
        _check_pixels(image.size, limit)
    except ImageRefused:
        image.close()
        raise
    return image


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    if size[0] * size[1] > limit:
        raise ImageRefused(f"an image of {size[0]}x{size[1]} pixels exceeds the limit of {limit} pixels")


def _gif_canvas(data: bytes) -> tuple[int, int]:
    """A GIF's decoded size: its screen, grown to hold the first frame (as Pillow grows it)."""
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[pos : pos + 1] == b"!":  # extension blocks, each a chain of sub-blocks
        pos += 2
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        pos += 1
    if data[pos : pos + 1] == b",":
        left, top, frame_w, frame_h = struct.unpack_from("<4H", data, pos + 1)
        width, height = max(width, left + frame_w), max(height, top + frame_h)
    return width, height


def _decode(image: ImageFile.ImageFile) -> Image.Image:
    """The first frame's pixels, upright (EXIF orientation applied), in a mode resizing keeps exact."""
    try:
        image.load()
        frame: Image.Image = image
        ImageOps.exif_transpose(frame, in_place=True)
        if frame.mode.startswith("I"):  # 16-bit grey: keep the top 8 bits rather than clip
            frame = frame.convert("I").point(lambda v: v / 256).convert("L")
        elif frame.mode == "1":
            frame = frame.convert("L")
        elif frame.mode not in ("L", "LA", "RGB", "RGBA"):
            frame = frame.convert("RGBA" if _has_alpha(frame) else "RGB")
        return frame
    except Exception as exc:  # truncated or corrupt pixel data, broken EXIF
        raise ImageRefused("the image data is truncated or corrupt") from exc


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.mode or "transparency" in image.info


def _geometry(src: tuple[int, int], width: int, height: int, mode: str) -> tuple[tuple[int, int], _Box]:
    """The thumbnail's size and the source box it is resampled from."""
    src_w, src_h = src
    full = (0, 0, src_w, src_h)
    if width == 0 or height == 0:
        return _scaled(src, width, height), full
    if mode == "f":
        if src_w <= width and src_h <= height:
            return src, full
        if src_w * height > width * src_h:
            return _scaled(src, width, int(width / (src_w / src_h))), full
        return _scaled(src, int(height * (src_w / src_h)), height), full
    if src == (width, height):
        return src, full
    # Fill: cut the source to the thumbnail's aspect ratio, then scale.
    if src_w * height < width * src_h:
        crop_w, crop_h = src_w, int(max(1.0, src_w * height / width) + 0.5)
    else:
        crop_w, crop_h = int(max(1.0, src_h * width / height) + 0.5), src_h
    left = (src_w - crop_w) // 2
    top = {"t": 0, "b": src_h - crop_h}.get(mode, (src_h - crop_h) // 2)
    return (width, height), (left, top, left + crop_w, top + crop_h)


def _scaled(src: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """``width`` x ``height`` with a 0 side derived from the source's aspect ratio (at least 1)."""
    if width == 0:
        width = max(1, math.floor(height * src[0] / src[1] + 0.5))
    if height == 0:
        height = max(1, math.floor(width * src[1] / src[0] + 0.5))
    return width, height


def _encode(image: Image.Image, ctype: str) -> tuple[bytes, str]:
    fmt, modes = _ENCODERS.get(ctype, _PNG)
    if image.mode not in modes:
        image = image.convert("RGBA" if "RGBA" in modes and _has_alpha(image) else "RGB")
    out = io.BytesIO()
    # JPEG at quality 95, as PocketBase writes it.
    image.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue(), f"image/{fmt.lower()}"
