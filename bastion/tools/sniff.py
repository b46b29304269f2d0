"""The content type of a file from its first bytes, never from its name or a client's word.

Names follow PocketBase's (``image/jpeg``, ``text/plain; charset=utf-8``, ...), so a file
field's ``mimeTypes`` option means the same thing here as there. Markup is recognised the
way browsers sniff it (WHATWG MIME Sniffing), so a page uploaded as ``cat.png`` is
``text/html`` whatever its name says.
"""

from __future__ import annotations

import json
import struct

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
XML = "text/xml; charset=utf-8"
XHTML = "application/xhtml+xml"
SVG = "image/svg+xml"
JSON = "application/json"

#: How many leading bytes callers should pass (when the file has them).
HEAD_SIZE = 3072

_BOM = b"\xef\xbb\xbf"
_WS = b" \t\n\r\f"
# C0 controls other than \t \n \f \r never occur in text.
_CONTROLS = bytes(b for b in range(0x20) if b not in b"\t\n\f\r")

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x00\x00\x02\x00", "image/x-icon"),
    (b"%PDF-", "application/pdf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/x-rar-compressed"),
    (b"fLaC", "audio/flac"),
    (b"\x00asm", "application/wasm"),
)

_RIFF_FORMS = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}

_FTYP_BRANDS = {
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/x-m4a",
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
}

_OGG_CODECS = {
    b"\x01vorbis": "audio/ogg",
    b"OpusHead": "audio/ogg",
    b"\x7fFLAC": "audio/ogg",
    b"Speex   ": "audio/ogg",
    b"\x80theora": "video/ogg",
    b"\x01video\x00\x00\x00": "video/ogg",
}

# Zip-based formats named by the first member's folder (OOXML) ...
_ZIP_FOLDERS = {
    b"word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    b"META-INF/MANIFEST.MF": "application/java-archive",
}
# ... or by a leading stored member called "mimetype" (EPUB, OpenDocument).
_ZIP_MIMETYPES = frozenset({
    "application/epub+zip",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.graphics",
    "application/vnd.oasis.opendocument.formula",
})

# DIB header sizes a real BMP carries right after its 14-byte file header.
_BMP_DIB_SIZES = frozenset({12, 16, 24, 40, 48, 52, 56, 64, 108, 124})

# WHATWG "HTML" patterns, each followed by a tag-terminating byte.
_HTML_TAGS = tuple(
    t.encode()
    for t in (
        "<!doctype html", "<html", "<head", "<script", "<iframe", "<h1", "<div", "<font", "<table",
        "<a", "<style", "<title", "<b", "<body", "<br", "<p", "<!--",
    )
)

_EXTENSIONS = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/x-icon": ".ico", "image/tiff": ".tiff", "image/avif": ".avif",
    "image/heic": ".heic", "image/heif": ".heif", "image/svg+xml": ".svg", "text/html": ".html",
    "application/xhtml+xml": ".xhtml", "text/xml": ".xml", "application/json": ".json", "text/plain": ".txt",
    "application/pdf": ".pdf", "application/zip": ".zip", "application/gzip": ".gz",
    "application/x-7z-compressed": ".7z", "application/x-rar-compressed": ".rar", "audio/mpeg": ".mp3",
    "audio/wav": ".wav", "application/ogg": ".ogg", "audio/ogg": ".oga", "video/ogg": ".ogv",
    "audio/flac": ".flac", "video/mp4": ".mp4", "audio/x-m4a": ".m4a", "video/quicktime": ".mov",
    "video/webm": ".webm", "video/x-matroska": ".mkv", "video/x-msvideo": ".avi", "application/wasm": ".wasm",
    "application/java-archive": ".jar", "application/epub+zip": ".epub",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt", "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "application/vnd.oasis.opendocument.graphics": ".odg", "application/vnd.oasis.opendocument.formula": ".odf",
}

# Other names PocketBase's detector accepts for the same type.
_ALIASES = {
    "image/jpeg": ("image/jpg", "image/pjpeg"),
    "image/bmp": ("image/x-bmp", "image/x-ms-bmp"),
    "text/xml": ("application/xml",),
    "audio/mpeg": ("audio/x-mpeg", "audio/mp3"),
    "audio/wav": ("audio/x-wav", "audio/vnd.wave", "audio/wave"),
    "video/x-msvideo": ("video/avi", "video/msvideo"),
    "application/zip": ("application/x-zip", "application/x-zip-compressed"),
    "application/gzip": ("application/x-gzip",),
    "application/pdf": ("application/x-pdf",),
    "application/ogg": ("application/x-ogg",),
    "application/java-archive": ("application/jar", "application/jar-archive", "application/x-java-archive"),
}


def content_type(head: bytes) -> str:
    """The MIME type of a file whose first bytes (ideally ``HEAD_SIZE`` of them) are ``head``."""
    for prefix, ctype in _PREFIXES:
        if head.startswith(prefix):
            return ctype
    for probe in (_riff, _ftyp, _ogg, _matroska, _zip, _bmp, _mp3):
        found = probe(head)
        if found:
            return found
    return _text(head)


def extension(ctype: str) -> str:
    """The usual file extension (with its dot) for a sniffed type; ``""`` when there is none."""
    return _EXTENSIONS.get(_bare(ctype), "")


def matches(ctype: str, allowed: str) -> bool:
    """Whether sniffed ``ctype`` satisfies ``allowed``, one entry of a file field's ``mimeTypes``."""
    found, wanted = _bare(ctype), _bare(allowed)
    return wanted == found or wanted in _ALIASES.get(found, ())


def _bare(ctype: str) -> str:
    return ctype.split(";", 1)[0].strip().lower()


def _riff(head: bytes) -> str | None:
    return _RIFF_FORMS.get(head[8:12]) if head.startswith(b"RIFF") else None


def _ftyp(head: bytes) -> str | None:
    # The first box's size is small, so its top byte is 0; text can't pass for a movie.
    if len(head) < 12 or head[0] != 0:
        return None
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    if head[4:8] in (b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot") and head[8] == 0:
        return "video/quicktime"
    return None


def _ogg(head: bytes) -> str | None:
    if not head.startswith(b"OggS"):
        return None
    codec = head[28:37]
    return next((t for sig, t in _OGG_CODECS.items() if codec.startswith(sig)), "application/ogg")


def _matroska(head: bytes) -> str | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    if b"webm" in head:
        return "video/webm"
    return "video/x-matroska" if b"matroska" in head else None


def _zip(head: bytes) -> str | None:
    """A zip archive, or the document format it carries (judged by its leading members)."""
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return None
    pos = 0
    while head.startswith(b"PK\x03\x04", pos) and pos + 30 <= len(head):
        size, name_len, extra_len = struct.unpack_from("<I4xHH", head, pos + 18)
        name = head[pos + 30 : pos + 30 + name_len]
        data = pos + 30 + name_len + extra_len
        if name == b"mimetype" and pos == 0:
            inner = head[data : data + size].decode("ascii", "replace")
            if inner in _ZIP_MIMETYPES:
                return inner
        for folder, ctype in _ZIP_FOLDERS.items():
            if name.startswith(folder):
                return ctype
        if size == 0:  # sizes deferred to a data descriptor: the next header can't be located
            break
        pos = data + size
    return "application/zip"


def _bmp(head: bytes) -> str | None:
    if head.startswith(b"BM") and len(head) >= 18:
        return "image/bmp" if struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_SIZES else None
    return None


def _mp3(head: bytes) -> str | None:
    if head.startswith(b"ID3") and len(head) >= 5 and head[3] in (2, 3, 4) and head[4] != 0xFF:
        return "audio/mpeg"
    # An MPEG audio frame header: 11 sync bits, a valid version and layer III.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2 and head[1] & 0x18 != 0x08:
        return "audio/mpeg"
    return None


def _text(head: bytes) -> str:
    body = head.removeprefix(_BOM)
    markup = _markup(body.lstrip(_WS))
    if markup:
        return markup
    text = _utf8(body)
    if text is None or len(body.translate(None, _CONTROLS)) != len(body):
        return OCTET_STREAM
    return JSON if _is_json(text.lstrip(), truncated=len(head) >= HEAD_SIZE) else TEXT


def _markup(data: bytes) -> str | None:
    root = _skip_prolog(data)
    if _is_tag(root, b"<svg", xml_root=True):
        return SVG
    lower = data[:16].lower()
    html_root = _is_tag(root[:6].lower(), b"<html")
    if _is_tag(lower, b"<?xml"):
        return XHTML if html_root else XML
    if html_root or any(_is_tag(lower, tag) for tag in _HTML_TAGS):
        return HTML
    return None


def _is_tag(data: bytes, tag: bytes, *, xml_root: bool = False) -> bool:
    """``data`` opens with ``tag`` then a tag-terminating byte (``/`` too for an XML root)."""
    end = data[len(tag) : len(tag) + 1]
    return data.startswith(tag) and end != b"" and end in (_WS + b">/" if xml_root else _WS + b">")


def _skip_prolog(data: bytes) -> bytes:
    """``data`` from its root element on: past the XML declaration, comments, PIs and doctype."""
    while True:
        data = data.lstrip(_WS)
        if data.startswith(b"<!--"):
            end, close = data.find(b"-->", 4), 3
        elif data.startswith(b"<?"):
            end, close = data.find(b"?>", 2), 2
        elif data[:9].upper() == b"<!DOCTYPE":
            end, close = _doctype_end(data), 1
        else:
            return data
        if end < 0:
            return b""
        data = data[end + close :]


def _doctype_end(data: bytes) -> int:
    end, subset = data.find(b">"), data.find(b"[")
    if 0 <= subset < end:  # an internal subset may hold '>' of its own
        close = data.find(b"]", subset)
        end = data.find(b">", close) if close >= 0 else -1
    return end


def _utf8(data: bytes) -> str | None:
    """``data`` decoded, forgiving a multibyte sequence cut off by the end of the head."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
        return None


def _is_json(text: str, *, truncated: bool) -> bool:
    """An object or array; when the head was cut short, one that is valid as far as it goes."""
    if text[:1] not in ("{", "["):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return truncated and (exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"))
    return True
