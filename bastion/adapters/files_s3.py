"""Uploaded files in an S3-compatible bucket: ``core.ports.FileStorage`` with boto3.

boto3 is imported when the first storage is made, so a server keeping its files in a
local folder never loads it. Its calls block, so each runs in a worker thread; bodies
move in chunks both ways (multipart uploads, ranged reads). Every failure of boto3,
botocore or the connection becomes ``Unavailable`` here, with a message naming the
endpoint and the bucket and never the secret.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, BinaryIO, TypeVar

from bastion.adapters.files_local import check_key, check_prefix
from bastion.core.errors import BadRequest, NotFound, Unavailable
from bastion.core.ports import StoredFile

T = TypeVar("T")
CHUNK = 256 * 1024  # bytes read from a response body at a time
PART = 5 * 1024 * 1024  # multipart upload part, held in memory while it is sent (S3's minimum)
DELETE_BATCH = 1000  # S3's most keys per DeleteObjects
MISSING = {"NoSuchKey", "404", "NotFound"}
OPTION_NAMES = ("bucket", "region", "endpoint", "accessKey", "secret")


def missing_options(options: Mapping[str, Any]) -> list[str]:
    """The settings an S3 storage needs that ``options`` leaves blank."""
    return [name for name in OPTION_NAMES if not str(options.get(name) or "").strip()]


class _Counted:
    """The source of an upload, counting its bytes; a failure of the source itself is
    kept apart from the storage's failures."""

    def __init__(self, source: BinaryIO):
        self.source = source
        self.size = 0
        self.error: BaseException | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.source.read(n)
        except BaseException as exc:
            self.error = exc
            raise
        self.size += len(data)
        return data


class S3Storage:
    """The bucket of PocketBase's S3 settings: ``bucket``, ``region``, ``endpoint``,
    ``accessKey``, ``secret`` and ``forcePathStyle``."""

    name = "s3"

    def __init__(self, options: Mapping[str, Any], *, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 attempts: int = 3):
        self.bucket = str(options.get("bucket") or "")
        self.region = str(options.get("region") or "")
        self.endpoint = str(options.get("endpoint") or "")
        self._access_key = str(options.get("accessKey") or "")
        self._secret = str(options.get("secret") or "")
        self._path_style = bool(options.get("forcePathStyle"))
        self._timeouts = (connect_timeout, read_timeout, attempts)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secret
        return f"S3Storage(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # -- calls -------------------------------------------------------------------------

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                connect, read, attempts = self._timeouts
                config = Config(
                    connect_timeout=connect, read_timeout=read, retries={"max_attempts": attempts, "mode": "standard"},
                    s3={"addressing_style": "path" if self._path_style else "auto"}, max_pool_connections=32,
                    # S3-compatible servers do not all take the checksums AWS adds by default
                    request_checksum_calculation="when_required", response_checksum_validation="when_required")
                session = boto3.session.Session(aws_access_key_id=self._access_key,
                                                aws_secret_access_key=self._secret, region_name=self.region or None)
                self._client = session.client("s3", endpoint_url=self.endpoint or None, config=config)
            return self._client

    def _failure(self, action: str, exc: BaseException) -> Unavailable:
        where = f"the S3 storage at {self.endpoint or 'AWS'} (bucket {self.bucket!r})"
        reason = _reason(exc)
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return Unavailable(f"{where} failed to {action}: {reason}")

    def _sync(self, action: str, work: Callable[[Any], T]) -> T:
        """``work(client)`` with every library failure translated (runs in a thread)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return work(self._connect())
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise NotFound() from None
            raise self._failure(action, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._failure(action, exc) from exc
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("boto3", "botocore", "s3transfer", "urllib3"):
                raise self._failure(action, exc) from exc
            raise

    async def _call(self, action: str, work: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self._sync, action, work)

    # -- writing -----------------------------------------------------------------------

    async def put(self, key: str, source: BinaryIO, content_type: str) -> int:
        check_key(key)
        counted = _Counted(source)

        def upload(client: Any) -> int:
            from boto3.s3.transfer import TransferConfig

            # One part at a time, in this thread: an upload holds one part (5 MiB) in memory.
            config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, use_threads=False,
                                    preferred_transfer_client="classic")
            extra = {"ContentType": content_type} if content_type else {}
            client.upload_fileobj(counted, self.bucket, key, ExtraArgs=extra, Config=config)
            return counted.size

        try:
            return await self._call(f"store {key!r}", upload)
        except Unavailable:
            if counted.error is not None:  # the source failed, not the storage
                raise counted.error from None
            raise

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._call(f"delete {key!r}", lambda c: c.delete_object(Bucket=self.bucket, Key=key))

    async def delete_prefix(self, prefix: str) -> None:
        if not check_prefix(prefix):
            raise ValueError("delete_prefix needs a prefix: it would remove every file")
        batch: list[str] = []
        async for found in self.list(prefix):
            batch.append(found.key)
            if len(batch) == DELETE_BATCH:
                await self._delete_many(batch)
                batch = []
        if batch:
            await self._delete_many(batch)

    async def _delete_many(self, keys: list[str]) -> None:
        def delete(client: Any) -> Any:
            return client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys], "Quiet": True})

        answer = await self._call(f"delete {len(keys)} files", delete)
        if failed := answer.get("Errors"):
            first = failed[0]
            raise Unavailable(f"The S3 storage at {self.endpoint or 'AWS'} (bucket {self.bucket!r}) failed to "
                              f"delete {len(failed)} files, {first.get('Key')!r} first: {first.get('Code')}")

    # -- reading -----------------------------------------------------------------------

    async def stat(self, key: str) -> StoredFile | None:
        check_key(key)
        try:
            head = await self._call(f"stat {key!r}", lambda c: c.head_object(Bucket=self.bucket, Key=key))
        except NotFound:
            return None
        return StoredFile(key, int(head["ContentLength"]), head["LastModified"].timestamp(),
                          str(head.get("ContentType") or ""), str(head.get("ETag") or "").strip('"'))

    async def read(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("a read starts at 0 or later and has a length of 0 or more")
        check_key(key)
        if length == 0:
            if await self.stat(key) is None:
                raise NotFound()
            return
        body = await self._open(key, start, length)
        if body is None:
            return
        try:
            while chunk := await self._call(f"read {key!r}", lambda _c: body.read(CHUNK)):
                yield chunk
        finally:
            body.close()

    async def _open(self, key: str, start: int, length: int | None) -> Any:
        """The body of ``key`` from ``start``; None when ``start`` is past its end."""
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or length is not None:
            params["Range"] = f"bytes={start}-{'' if length is None else start + length - 1}"

        def get(client: Any) -> Any:
            try:
                return client.get_object(**params)["Body"]
            except ClientError as exc:
                if _code(exc) == "InvalidRange":  # from past the end: no bytes
                    return None
                raise

        return await self._call(f"read {key!r}", get)

    async def fetch(self, key: str, limit: int) -> tuple[StoredFile, bytes | None] | None:
        check_key(key)

        def get(client: Any) -> tuple[StoredFile, bytes | None]:
            answer = client.get_object(Bucket=self.bucket, Key=key)
            size = int(answer.get("ContentLength", 0))
            stored = StoredFile(key, size, answer["LastModified"].timestamp(),
                                str(answer.get("ContentType") or ""), str(answer.get("ETag") or "").strip('"'))
            with answer["Body"] as body:
                data: bytes | None = body.read(size + 1) if size <= limit else None
            return stored, data

        try:
            return await self._call(f"read {key!r}", get)
        except NotFound:
            return None

    async def read_all(self, key: str, limit: int) -> bytes:
        check_key(key)

        def fetch(client: Any) -> bytes:
            answer = client.get_object(Bucket=self.bucket, Key=key)
            with answer["Body"] as body:
                if int(answer.get("ContentLength", 0)) > limit:
                    raise _TooLarge()
                data: bytes = body.read(limit + 1)
            if len(data) > limit:
                raise _TooLarge()
            return data

        try:
            return await self._call(f"read {key!r}", fetch)
        except _TooLarge:
            raise ValueError(f"the file is larger than {limit} bytes") from None

    async def list(self, prefix: str = "") -> AsyncIterator[StoredFile]:
        check_prefix(prefix)
        pages: Iterator[dict[str, Any]] | None = None

        def next_page(client: Any) -> dict[str, Any] | None:
            nonlocal pages
            if pages is None:
                paginator = client.get_paginator("list_objects_v2")
                pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}))
            return next(pages, None)

        while (page := await self._call("list files", next_page)) is not None:
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # folder markers made by some tools
                    yield StoredFile(item["Key"], int(item["Size"]), item["LastModified"].timestamp(), "",
                                     str(item.get("ETag") or "").strip('"'))

    # -- the bucket --------------------------------------------------------------------

    async def check(self) -> None:
        """Prove the bucket takes a file, shows it and lets it go (as PocketBase's test
        does); ``BadRequest`` or ``Unavailable`` saying what to fix otherwise."""
        if missing := missing_options(self._options()):
            raise BadRequest(f"The S3 settings need {', '.join(missing)}")
        try:
            await self._call("find the bucket", lambda c: c.head_bucket(Bucket=self.bucket))
        except NotFound:
            raise BadRequest(f"There is no bucket {self.bucket!r} at {self.endpoint or 'AWS'}") from None
        probe = f"bastion_settings_test_{secrets.token_hex(4)}/test.txt"
        await self._call("store a test file", lambda c: c.put_object(Bucket=self.bucket, Key=probe, Body=b"test"))
        found = await self.stat(probe)
        await self.delete_prefix(probe.rpartition("/")[0] + "/")
        if found is None or found.size != 4:
            raise Unavailable(f"The S3 storage at {self.endpoint or 'AWS'} (bucket {self.bucket!r}) did not keep "
                              "a test file it accepted")

    def _options(self) -> dict[str, str]:
        return {"bucket": self.bucket, "region": self.region, "endpoint": self.endpoint,
                "accessKey": self._access_key, "secret": self._secret}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)


class _TooLarge(Exception):
    """``read_all`` found more than its limit (kept apart from storage failures)."""


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""


def _reason(exc: BaseException) -> str:
    """A short, person-readable cause: the S3 error code and message, or the connection problem."""
    if code := _code(exc):
        hint = {"NoSuchBucket": "the bucket does not exist",
                "AccessDenied": "access denied: check the access key and its rights on the bucket",
                "InvalidAccessKeyId": "the access key is not known to the server",
                "SignatureDoesNotMatch": "the secret does not match the access key"}.get(code)
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "") or "")
        return hint or f"{code} {message}".strip()
    return str(exc) or type(exc).__name__
