"""``POST /api/settings/test/s3``: does the bucket of the files (or of the backups) work?"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.files import Storages, storage_factory
from bastion.core.app import App
from bastion.testing import TestClient, free_port, token_for
from bastion.testing.s3 import MotoS3

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # no engine involved
URL = "/api/settings/test/s3"
FAILED = "Failed to test the S3 filesystem. Raw error: \n"


@pytest.fixture
async def storages(app: App, tmp_path: Path) -> AsyncIterator[Storages]:
    """The app's file storage, as ``bastion serve`` wires it."""
    made = storage_factory(tmp_path / "storage")
    app.storage = made  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        await made.close()


async def set_s3(client: TestClient, s3: dict[str, Any] | None = None, backups: dict[str, Any] | None = None) -> None:
    body = {**({"s3": s3} if s3 else {}), **({"backups": {"s3": backups}} if backups else {})}
    res = await client.patch("/api/settings", headers=client.su(), json=body)
    assert res.status_code == 200, res.text


async def test_only_superusers_test_s3(client: TestClient, storages: Storages) -> None:
    assert (await client.post(URL, json={"filesystem": "storage"})).status_code == 401
    _, headers = await token_for(client, "someone@example.com")
    assert (await client.post(URL, json={"filesystem": "storage"}, headers=headers)).status_code == 403


@pytest.mark.parametrize(("body", "code"), [({}, "validation_required"), ({"filesystem": ""}, "validation_required"),
                                            ({"filesystem": "local"}, "validation_in_invalid")])
async def test_the_filesystem_is_storage_or_backups(client: TestClient, storages: Storages,
                                                    body: dict[str, str], code: str) -> None:
    res = await client.post(URL, json=body, headers=client.su())
    assert res.status_code == 400
    assert res.json()["message"] == "Failed to test the S3 filesystem."
    assert res.json()["data"]["filesystem"]["code"] == code


@pytest.mark.parametrize("filesystem", ["storage", "backups"])
async def test_s3_switched_off_is_a_bad_request(client: TestClient, storages: Storages, filesystem: str) -> None:
    res = await client.post(URL, json={"filesystem": filesystem}, headers=client.su())
    assert res.status_code == 400
    assert res.json()["message"] == FAILED + "S3 storage filesystem is not enabled."


async def test_a_working_bucket_answers_204(client: TestClient, storages: Storages, s3: MotoS3) -> None:
    files, backups = s3.new_bucket(), s3.new_bucket()
    await set_s3(client, files, backups)
    for filesystem, options in (("storage", files), ("backups", backups)):
        res = await client.post(URL, json={"filesystem": filesystem}, headers=client.su())
        assert res.status_code == 204, res.text
        listed = s3.client().list_objects_v2(Bucket=options["bucket"])
        assert listed.get("KeyCount", 0) == 0  # the test file is gone


async def test_only_the_asked_filesystem_is_tested(client: TestClient, storages: Storages, s3: MotoS3) -> None:
    await set_s3(client, backups=s3.new_bucket())
    assert (await client.post(URL, json={"filesystem": "backups"}, headers=client.su())).status_code == 204
    assert (await client.post(URL, json={"filesystem": "storage"}, headers=client.su())).status_code == 400


async def test_a_failing_bucket_says_why_without_the_secret(client: TestClient, storages: Storages,
                                                            s3: MotoS3) -> None:
    await set_s3(client, {**s3.options, "bucket": "not-made-yet", "secret": "hidden-secret-42"})
    res = await client.post(URL, json={"filesystem": "storage"}, headers=client.su())
    assert res.status_code == 400
    message = res.json()["message"]
    assert message.startswith(FAILED) and "not-made-yet" in message and s3.endpoint in message
    assert "hidden-secret-42" not in res.text


async def test_an_unreachable_endpoint_says_so(client: TestClient, storages: Storages, s3: MotoS3) -> None:
    await set_s3(client, {**s3.options, "endpoint": f"http://127.0.0.1:{free_port()}"})
    res = await client.post(URL, json={"filesystem": "storage"}, headers=client.su())
    assert res.status_code == 400
    assert res.json()["message"].startswith(FAILED + "The S3 storage at http://127.0.0.1:")
