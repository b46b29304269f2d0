"""Streaming ``multipart/form-data`` parsing with the limits checked as bytes arrive.

Built on Starlette's parser (python-multipart underneath): a file part goes to a spooled
temporary file (in memory up to ``SPOOL``, then on disk), so memory does not grow with
file size. On top of it, as the body streams in:

- a file part larger than its field's ``maxSize``, or more file parts under one key than
  its field's ``maxSelect``, stops the parse at once with that field's error, before the
  rest of the body is read (``file_limit(key)`` gives both);
- a part whose ``Content-Disposition`` leaves a quote open, and a body that ends without
  its closing boundary, are refused (the parser alone would drop them quietly).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from bastion.core.errors import BadRequest, FieldError, ValidationFailed

SPOOL = 64 * 1024
MAX_FILES = 100
BAD_FORM = "Failed to read the form body: "


class FileTooLarge(Exception):
    def __init__(self, key: str, name: str, limit: int):
        self.key, self.name, self.limit = key, name, limit


class TooManyFiles(Exception):
    def __init__(self, key: str, limit: int):
        self.key, self.limit = key, limit


# The largest file a form key takes and how many files it takes.
Limit = tuple[int, int]


class _BoundedParser(MultiPartParser):
    spool_max_size = SPOOL

    def __init__(self, request: Request, stream: AsyncGenerator[bytes, None], file_limit: Callable[[str], Limit],
                 max_fields: int):
        super().__init__(request.headers, stream, max_files=MAX_FILES, max_fields=max_fields)
        self._file_limit = file_limit
        self._part_size = 0
        self._counts: dict[str, int] = {}

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._part_size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            self._part_size += end - start
            limit = self._file_limit(part.field_name)[0]
            if self._part_size > limit:
                raise FileTooLarge(part.field_name, part.file.filename or "", limit)
        super().on_part_data(data, start, end)

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        if part.file is not None:
            count = self._counts[part.field_name] = self._counts.get(part.field_name, 0) + 1
            limit = self._file_limit(part.field_name)[1]
            if count > limit:
                raise TooManyFiles(part.field_name, limit)

    def on_header_end(self) -> None:
        if self._current_partial_header_name.lower() == b"content-disposition":
            if self._current_partial_header_value.replace(b'\\"', b"").count(b'"') % 2:
                raise MultiPartException("a part's Content-Disposition is malformed")
        super().on_header_end()


async def _watched(
    stream: AsyncGenerator[bytes, None], closing: bytes, seen: list[bool],
) -> AsyncGenerator[bytes, None]:
    """``stream`` as it is, noting whether the closing boundary went by."""
    tail = b""
    async for chunk in stream:
        window = tail + chunk
        if closing in window:
            seen[0] = True
        tail = window[-len(closing):]
        yield chunk


async def parse(request: Request, file_limit: Callable[[str], Limit], max_fields: int) -> FormData:
    """The form of a multipart request (see the module text)."""
    boundary = _boundary(request.headers.get("content-type", ""))
    seen = [False]
    stream = _watched(request.stream(), b"--" + boundary + b"--", seen)
    parser = _BoundedParser(request, stream, file_limit, max_fields)
    try:
        form = await parser.parse()
    except FileTooLarge as exc:
        raise ValidationFailed("Failed to read the submitted data.", {_field(exc.key): FieldError(
            "validation_file_size_limit",
            f"Failed to upload {exc.name[:300]} - the maximum allowed file size is {exc.limit} bytes.",
            {"file": exc.name[:300], "maxSize": exc.limit})}) from None
    except TooManyFiles as exc:
        raise ValidationFailed("Failed to read the submitted data.", {_field(exc.key): FieldError(
            "validation_too_many_files", f"The maximum allowed files is {exc.limit}",
            {"maxSelect": exc.limit})}) from None
    except MultiPartException as exc:
        # The rest of a malformed body is read (and dropped) before it is answered, so the
        # answer does not depend on how far it had come: one over the body limit is a 413.
        async for _chunk in stream:
            pass
        raise BadRequest(BAD_FORM + str(exc)) from None
    if not seen[0]:
        await form.close()
        raise BadRequest(BAD_FORM + "the multipart body never ends (no closing boundary).")
    return form


def _field(key: str) -> str:
    """The field a form key names (``f``, ``+f``, ``f+``, ``requests.0.f``)."""
    return key.rsplit(".", 1)[-1].strip("+")


def _boundary(content_type: str) -> bytes:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary" and value:
            return value.strip().strip('"').encode("latin-1")
    raise BadRequest(BAD_FORM + "Missing boundary in multipart.")


def uploads(form: FormData) -> list[tuple[str, UploadFile]]:
    return [(key, value) for key, value in form.multi_items() if isinstance(value, UploadFile)]
