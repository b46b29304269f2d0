"""A real S3-compatible server on 127.0.0.1 for tests: moto's, in a thread.

Needs ``moto[server]`` (in Bastion's ``test`` extra)::

    with MotoS3() as s3:
        storage = S3Storage(s3.options)      # a fresh bucket, PocketBase's s3 settings
        other = S3Storage(s3.new_bucket())   # another one
"""

from __future__ import annotations

import logging
import secrets
from types import TracebackType
from typing import Any

from bastion.testing.servers import free_port

ACCESS_KEY = "test"
SECRET = "test"
REGION = "us-east-1"


class MotoS3:
    """moto's S3 server on a free port of 127.0.0.1, with one bucket made.

    ``options`` are the ``s3`` settings (``enabled`` true) of that bucket; ``endpoint``
    is the server's address. Use it as a context manager, or call :meth:`start` and
    :meth:`stop`."""

    def __init__(self, bucket: str = "bastion-test") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.first_bucket = bucket
        self.options: dict[str, Any] = {}
        self._server: Any = None

    def start(self) -> MotoS3:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.options = self.new_bucket(self.first_bucket)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        """A boto3 S3 client on the server, to look at buckets behind the storage's back."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET)

    def new_bucket(self, name: str | None = None) -> dict[str, Any]:
        """Make a bucket (a random name unless ``name``) and return its ``s3`` settings."""
        bucket = name or f"bucket-{secrets.token_hex(6)}"
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()
        return {"enabled": True, "bucket": bucket, "region": REGION, "endpoint": self.endpoint,
                "accessKey": ACCESS_KEY, "secret": SECRET, "forcePathStyle": True}

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
