"""Content types sniffed from a file's first bytes: images, markup, text, archives, media."""

from __future__ import annotations

import gzip
import io
import struct
import wave
import zipfile

import pytest
from PIL import Image

from bastion.tools.sniff import HEAD_SIZE, content_type, extension, matches


def _pillow(fmt: str, mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (16, 16), "red").save(out, fmt, **options)
    return out.getvalue()


def _zip(*members: tuple[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in members:
            archive.writestr(name, text)
    return out.getvalue()


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 100)
    return out.getvalue()


def _ftyp(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: _pillow("PNG"), "image/png"),
        (lambda: _pillow("JPEG"), "image/jpeg"),
        (lambda: _pillow("GIF"), "image/gif"),
        (lambda: _pillow("WEBP"), "image/webp"),
        (lambda: _pillow("BMP"), "image/bmp"),
        (lambda: _pillow("ICO"), "image/x-icon"),
        (lambda: _pillow("TIFF"), "image/tiff"),
        (lambda: _pillow("PDF"), "application/pdf"),
        (lambda: _ftyp(b"avif"), "image/avif"),
        (lambda: _ftyp(b"heic"), "image/heic"),
        (lambda: _zip(("a.txt", "hello")), "application/zip"),
        (lambda: _zip(("mimetype", "application/epub+zip"), ("META-INF/a.xml", "<x/>")), "application/epub+zip"),
        (
            lambda: _zip(("[Content_Types].xml", "<Types/>"), ("word/document.xml", "<w/>")),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (lambda: gzip.compress(b"hello"), "application/gzip"),
        (lambda: b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), "application/x-7z-compressed"),
        (lambda: b"Rar!\x1a\x07\x01\x00" + bytes(24), "application/x-rar-compressed"),
        (lambda: b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00", "audio/mpeg"),
        (lambda: b"\xff\xfb\x90\x64" + bytes(400), "audio/mpeg"),
        (_wav, "audio/wav"),
        (lambda: b"OggS\x00\x02" + bytes(22) + b"\x01vorbis" + bytes(16), "audio/ogg"),
        (lambda: b"OggS\x00\x02" + bytes(22) + b"\x80theora" + bytes(16), "video/ogg"),
        (lambda: b"fLaC\x00\x00\x00\x22" + bytes(34), "audio/flac"),
        (lambda: _ftyp(b"isom"), "video/mp4"),
        (lambda: _ftyp(b"M4A "), "audio/x-m4a"),
        (lambda: _ftyp(b"qt  "), "video/quicktime"),
        (lambda: b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + bytes(16), "video/webm"),
        (lambda: b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(16), "video/x-msvideo"),
        (lambda: b"\x00asm\x01\x00\x00\x00", "application/wasm"),
        (lambda: bytes(range(256)), "application/octet-stream"),
    ],
)
def test_binary_formats_are_named_like_pocketbase(make, expected):
    assert content_type(make()) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><title>x</title>",
        b"\xef\xbb\xbf\n  <html lang=en>",
        b"<HEAD>",
        b"<script>alert(1)</script>",
        b"<iframe src=x>",
        b"<h1>Hi</h1>",
        b"<a href='x'>link</a>",
        b"<b>bold</b>",
        b"<BR>",
        b"<p>para",
        b"<!-- a comment -->",
        b"<table>",
    ],
)
def test_html_is_sniffed_like_browsers_do(head):
    assert content_type(head) == "text/html; charset=utf-8"


def test_html_posing_as_png_is_html():
    # the uploader calls it cat.png; only the bytes count
    assert content_type(b"<html><body><script>document.cookie</script></body></html>") == "text/html; charset=utf-8"


def test_near_misses_of_html_tags_are_text():
    assert content_type(b"<bold text>") == "text/plain; charset=utf-8"
    assert content_type(b"<abc>") == "text/plain; charset=utf-8"
    assert content_type(b"a <html> later on") == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "head",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b'\xef\xbb\xbf  <?xml version="1.0"?>\n<!-- made by hand -->\n<!-- twice -->\n<svg>',
        b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n<svg\n  width="1">',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY e "<b>">]><svg/>',
        b"<!-- leading comment --><svg onload='alert(1)'>",
    ],
)
def test_svg_is_found_past_prolog_comments_and_doctype(head):
    assert content_type(head) == "image/svg+xml"


def test_xml_and_xhtml():
    assert content_type(b'<?xml version="1.0"?>\n<feed/>') == "text/xml; charset=utf-8"
    assert content_type(b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">') == (
        "application/xhtml+xml"
    )
    assert content_type(b"<?xml version='1.0'?><svgfont/>") == "text/xml; charset=utf-8"


def test_json_objects_and_arrays():
    assert content_type(b'  {"a": [1, 2, {"b": null}]}\n') == "application/json"
    assert content_type(b"[1, 2, 3]") == "application/json"
    assert content_type(b'"just a string"') == "text/plain; charset=utf-8"
    assert content_type(b"{not json}") == "text/plain; charset=utf-8"
    # a long document cut off at the head's end is still JSON
    long = b'{"items": [' + b'{"name": "abc"}, ' * 400
    assert len(long[:HEAD_SIZE]) == HEAD_SIZE
    assert content_type(long[:HEAD_SIZE]) == "application/json"
    assert content_type(b'{"items": [1, 2') == "text/plain; charset=utf-8"  # short: the whole file


def test_text_versus_binary():
    assert content_type(b"hello\tworld\r\n\f") == "text/plain; charset=utf-8"
    assert content_type("grüße, 日本".encode()) == "text/plain; charset=utf-8"
    assert content_type("日本".encode()[:-1]) == "text/plain; charset=utf-8"  # cut mid-character
    assert content_type(b"") == "text/plain; charset=utf-8"
    assert content_type(b"hello\x00world") == "application/octet-stream"
    assert content_type(b"bell\x07") == "application/octet-stream"
    assert content_type("grüße".encode("latin-1")) == "application/octet-stream"
    assert content_type(b"\xc3(") == "application/octet-stream"  # invalid mid-stream


def test_text_that_starts_like_a_magic_number_stays_text():
    assert content_type(b"BM is not a bitmap header, just text") == "text/plain; charset=utf-8"
    assert content_type(b"ID3 tags explained") == "text/plain; charset=utf-8"
    assert content_type(b"RIFF raff") == "text/plain; charset=utf-8"


def test_extension():
    assert extension("image/png") == ".png"
    assert extension("image/jpeg") == ".jpg"
    assert extension("image/svg+xml") == ".svg"
    assert extension("text/html; charset=utf-8") == ".html"
    assert extension("text/plain; charset=utf-8") == ".txt"
    assert extension("application/pdf") == ".pdf"
    assert extension("application/octet-stream") == ""
    assert extension("application/x-unknown") == ""


def test_matches_ignores_parameters_and_case_and_knows_aliases():
    assert matches("image/jpeg", "image/jpeg")
    assert matches("image/jpeg", "image/jpg")
    assert matches("image/jpeg", "IMAGE/JPEG")
    assert matches("text/plain; charset=utf-8", "text/plain")
    assert matches("text/html; charset=utf-8", "text/html; charset=utf-8")
    assert matches("text/xml; charset=utf-8", "application/xml")
    assert matches("audio/wav", "audio/x-wav")
    assert not matches("image/png", "image/jpeg")
    assert not matches("image/svg+xml", "text/xml")  # a more precise type is not its parent
    assert not matches("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip")
    assert not matches("image/png", "")


def test_sniffed_names_have_extensions():
    for head in (_pillow("PNG"), _pillow("GIF"), b"<svg/>", b"<p>x", b"plain", b"{}", _zip(("a", "b"))):
        assert extension(content_type(head)).startswith(".")
