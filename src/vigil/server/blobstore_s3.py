"""The S3 blob backend (`VIGIL_BLOB_BACKEND=s3`): each blob is one object in a bucket of any
S3-compatible store (AWS S3, MinIO, Ceph, ...), shared by every node. Uploads go up as a multipart upload
in parts of `_PART_BYTES` (S3's smallest part), so a node holds at most one part of a blob at a time; a
failed upload is aborted, leaving no object; one a crash cut off is aborted by `sweep_leftovers` once
it is a day old (S3 keeps, and bills, an unfinished upload's parts until then)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError

from vigil.errors import NotFoundError, ValidationError
from vigil.server.blobstore import READ_CHUNK_BYTES, ReferencedBlobs, SizeGuard, check_blob_id

__all__ = ["S3BlobStore", "S3Location"]

_PART_BYTES = 5 * 1024 * 1024
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_BLOB_KEY = re.compile(r"^[a-f0-9]{32}$")


class S3Location:
    """Where the blobs go and with which credentials (from the `VIGIL_S3_*` settings)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
    ) -> None:
        if not bucket:
            raise ValidationError("VIGIL_BLOB_BACKEND=s3 needs VIGIL_S3_BUCKET")
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key


class S3BlobStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    @classmethod
    @contextlib.asynccontextmanager
    async def open_bucket(cls, location: S3Location) -> AsyncIterator[S3BlobStore]:
        """A store on one client for the server's lifetime; fails at start when the bucket is unreachable."""
        session = aioboto3.Session(
            aws_access_key_id=location.access_key_id,
            aws_secret_access_key=location.secret_access_key,
            region_name=location.region,
        )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"})
        async with session.client("s3", endpoint_url=location.endpoint_url, config=config) as client:
            try:
                await client.head_bucket(Bucket=location.bucket)
            except ClientError as error:
                raise ValidationError(
                    f"the S3 bucket {location.bucket!r} is not reachable: {_code(error)}"
                ) from None
            yield cls(client, location.bucket)

    async def free_bytes(self) -> None:
        return None  # object storage has no free-space figure

    async def receive(self, blob_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        key = check_blob_id(blob_id)
        guard = SizeGuard(max_bytes)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                guard.add(chunk)
                buffer += chunk
                if len(buffer) >= _PART_BYTES:
                    if upload_id is None:
                        started = await self._client.create_multipart_upload(Bucket=self._bucket, Key=key)
                        upload_id = started["UploadId"]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            size = guard.finish()
            if upload_id is None:
                await self._client.put_object(Bucket=self._bucket, Key=key, Body=bytes(buffer))
                return size
            if buffer:
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            await self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(ClientError):
                    await self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=key, UploadId=upload_id
                    )
            raise

    async def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        uploaded = await self._client.upload_part(
            Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": uploaded["ETag"]}

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        try:
            found = await self._client.get_object(Bucket=self._bucket, Key=check_blob_id(blob_id))
        except ClientError as error:
            if _code(error) in _MISSING:
                raise NotFoundError("blob not found") from None
            raise
        return _read_body(found["Body"])

    async def delete(self, blob_id: str) -> None:
        await self._client.delete_object(Bucket=self._bucket, Key=check_blob_id(blob_id))

    async def _recent_part(self, upload: dict[str, Any], before: dt.datetime) -> bool:
        """Whether a part of this upload arrived after `before`: an upload still moving is not abandoned,
        however long ago it began (some S3-compatible servers also misdate `Initiated`)."""
        try:
            parts = await self._client.list_parts(
                Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        except ClientError:
            return True  # finished or aborted meanwhile: nothing to abort
        return any(part["LastModified"] >= before for part in parts.get("Parts", []))

    async def sweep_leftovers(self, before_ms: int, referenced: ReferencedBlobs) -> int:
        before = dt.datetime.fromtimestamp(before_ms / 1000, tz=dt.UTC)
        deleted = 0
        uploads = self._client.get_paginator("list_multipart_uploads")
        async for page in uploads.paginate(Bucket=self._bucket):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < before and not await self._recent_part(upload, before):
                    with contextlib.suppress(ClientError):  # finished or aborted meanwhile
                        await self._client.abort_multipart_upload(
                            Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        deleted += 1
        objects = self._client.get_paginator("list_objects_v2")
        async for page in objects.paginate(Bucket=self._bucket):
            old = [o["Key"] for o in page.get("Contents", []) if o["LastModified"] < before]
            if not old:
                continue
            kept = await referenced(old)
            for key in old:
                # Only keys shaped like our blob ids: the bucket may be shared with other things.
                if key not in kept and _BLOB_KEY.match(key):
                    await self._client.delete_object(Bucket=self._bucket, Key=key)
                    deleted += 1
        return deleted


async def _read_body(body: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await body.read(READ_CHUNK_BYTES):
            yield chunk
    finally:
        body.close()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))
