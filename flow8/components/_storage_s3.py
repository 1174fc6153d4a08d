"""``storage/s3``: an S3 bucket (AWS, or MinIO, R2, Ceph and the like through ``endpoint``).

It answers the operations of ``storage/local`` with the same shapes (``read``, ``write``,
``move``, ``copy``, ``delete``, ``exists``, ``list``; keys follow the same path rules,
``_paths.clean_key``), so the storage modules work unchanged, plus ``presign`` ``{path,
expiresSeconds, method: GET|PUT}`` -> ``{url, expiresAt}``. A "folder" is a key prefix
ending in ``/``. ``write`` takes an optional ``contentType`` (else the type the name
suggests) and answers the ``bucket`` too.

* Credentials: ``accessKeyId`` with ``secretAccessKey``, or neither (unsigned requests, for a
  public bucket). The server's own AWS credentials (its environment, config files, an
  instance role) are never used: a company reaches only what its own keys open.
* ``endpoint`` (MinIO, R2, ...): checked against the server's network policy before the
  first request and pinned over plain HTTP (``_object_store.Guard``); path-style addressing;
  checksums only where the operation requires them (what S3-compatible servers accept).
* One boto3 client per provider (thread-safe), made at first use in a worker thread, with
  bounded connect and read timeouts and standard retries; every call runs in a worker thread.
* Errors name the bucket and the key, never the secret key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import trio
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ._object_store import (
    MAX_LISTED,
    MAX_READ_BYTES,
    Guard,
    GuardRefused,
    entry,
    expires_at,
    listed,
    mime_of,
    parse_origin,
    presign_args,
)
from ._paths import clean_key
from ._provider import Operation, ProviderEnv
from .exceptions import ComponentConfigError, ComponentError, ComponentFailed, ComponentRefused

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
ATTEMPTS = 3  # the first try and two retries, with the SDK's back-off
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidSecurity",
}
_WRONG_REGION = {"PermanentRedirect", "301", "AuthorizationHeaderMalformed"}


class S3Storage:
    def __init__(self, config: Mapping[str, Any], env: ProviderEnv) -> None:
        self.bucket = str(config["bucket"])
        self.region = str(config.get("region") or "us-east-1")
        if not _REGION.match(self.region):
            raise ComponentConfigError(f"region {self.region!r} is not an S3 region name")
        key_id, secret = config.get("accessKeyId"), config.get("secretAccessKey")
        if bool(key_id) != bool(secret):
            raise ComponentConfigError(
                "accessKeyId and secretAccessKey go together: set both, or neither for a "
                "public bucket"
            )
        self._key_id: str | None = str(key_id) if key_id else None
        self._secret: str | None = str(secret) if secret else None
        self.anonymous = self._key_id is None
        raw_endpoint = config.get("endpoint")
        self.endpoint: str | None = None
        self._guard: Guard | None = None
        if raw_endpoint:
            origin = parse_origin(raw_endpoint, "endpoint")
            self.endpoint = str(raw_endpoint).strip()
            self._guard = Guard([origin], env)
        self._env = env
        self._client: Any = None
        self._lock = trio.Lock()
        self.operations: Mapping[str, Operation] = {
            "read": self._read,
            "write": self._write,
            "move": self._move,
            "copy": self._copy,
            "delete": self._delete,
            "exists": self._exists,
            "list": self._list,
            "presign": self._presign,
            "removeTree": self._remove_tree,
        }

    @property
    def _where(self) -> str:
        return f"the endpoint {self.endpoint}" if self.endpoint else f"S3 ({self.region})"

    # -- the client ---------------------------------------------------------------------------

    async def _ready(self) -> Any:
        if self._guard is not None:
            await self._guard.check()
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._run(self._make_client)
        return self._client

    def _make_client(self) -> Any:
        if not self.anonymous and self._secret is None:
            raise ComponentFailed("this S3 component was closed")
        session = boto3.session.Session(
            aws_access_key_id=self._key_id,
            aws_secret_access_key=self._secret,
            region_name=self.region,
        )
        options: dict[str, Any] = {
            "region_name": self.region,
            "signature_version": UNSIGNED if self.anonymous else "s3v4",
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "retries": {"max_attempts": ATTEMPTS, "mode": "standard"},
            "max_pool_connections": 16,
            "user_agent_extra": "flow8",
        }
        if self.endpoint is not None:
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        client = session.client("s3", endpoint_url=self.endpoint, config=Config(**options))
        if self._guard is not None:
            client.meta.events.register("before-send.s3", self._route)
        self._secret = None  # the client holds it now; nothing else needs it
        return client

    def _route(self, request: Any, **_: Any) -> None:
        """botocore's ``before-send``: every request passes the guard (module docstring)."""
        assert self._guard is not None
        url, host = self._guard.route(request.url)
        if host is not None:
            request.url = url
            request.headers["Host"] = host

    async def _run(self, fn: Callable[[], Any], key: str | None = None) -> Any:
        try:
            return await self._env.in_thread(fn)
        except ComponentError:
            raise
        except (BotoCoreError, ClientError, GuardRefused) as e:
            raise self._failure(e, key) from None

    def _failure(self, e: Exception, key: str | None) -> ComponentError:
        what = f"{key!r} in bucket {self.bucket!r}" if key else f"bucket {self.bucket!r}"
        if isinstance(e, GuardRefused):
            return ComponentRefused(str(e))
        if isinstance(e, ClientError):
            error = e.response.get("Error") or {}
            status = (e.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            code = str(error.get("Code") or status or "error")
            if code == "NoSuchBucket" or (code in _MISSING and key is None):
                return ComponentFailed(f"no such bucket {self.bucket!r} at {self._where}")
            if code in _MISSING:
                return ComponentFailed(f"no such file: {key!r} (bucket {self.bucket!r})")
            if code in _DENIED:
                return ComponentFailed(f"access denied to {what}")
            if code in _BAD_CREDENTIALS:
                return ComponentFailed(
                    f"{self._where} refused the credentials ({code}): check accessKeyId and "
                    "secretAccessKey"
                )
            if code in _WRONG_REGION:
                return ComponentFailed(
                    f"bucket {self.bucket!r} is not in region {self.region!r}: set its region"
                )
            message = str(error.get("Message") or "")[:300]
            return ComponentFailed(f"S3 answered {code} for {what}: {message}".rstrip(": "))
        if isinstance(e, EndpointConnectionError | ConnectTimeoutError):
            return ComponentFailed(
                f"could not connect to {self._where}: nothing answered (is it running and "
                "reachable?)"
            )
        if isinstance(e, ReadTimeoutError):
            return ComponentFailed(f"{self._where} did not answer in time ({what})")
        return ComponentFailed(f"S3 request on {what} failed ({type(e).__name__})")

    # -- operations ---------------------------------------------------------------------------

    async def _read(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        client = await self._ready()

        def read() -> tuple[bytes, str | None]:
            got = client.get_object(Bucket=self.bucket, Key=key)
            body = got["Body"]
            try:
                if int(got.get("ContentLength") or 0) > MAX_READ_BYTES:
                    raise ComponentRefused(f"{key!r} is larger than {MAX_READ_BYTES} bytes")
                data: bytes = body.read(MAX_READ_BYTES + 1)
            finally:
                body.close()
            if len(data) > MAX_READ_BYTES:
                raise ComponentRefused(f"{key!r} is larger than {MAX_READ_BYTES} bytes")
            return data, got.get("ContentType")

        content, stored_type = await self._run(read, key)
        return {
            "path": key,
            "content": content,
            "size": len(content),
            "mimeType": mime_of(key, stored_type),
        }

    async def _write(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        content = bytes(input.get("content") or b"")
        content_type = mime_of(key, input.get("contentType"))
        client = await self._ready()
        await self._run(
            lambda: client.put_object(
                Bucket=self.bucket, Key=key, Body=content, ContentType=content_type
            ),
            key,
        )
        return {"path": key, "size": len(content), "bucket": self.bucket}

    def _size(self, client: Any, key: str) -> int | None:
        """The object's size, or None when there is none (in a worker thread)."""
        try:
            head = client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if str((e.response.get("Error") or {}).get("Code")) in _MISSING:
                return None
            raise
        return int(head.get("ContentLength") or 0)

    def _copy_sync(self, client: Any, source: str, destination: str) -> int:
        size = self._size(client, source)
        if size is None:
            raise ComponentFailed(f"no such file: {source!r} (bucket {self.bucket!r})")
        if source != destination:  # S3 refuses a copy onto itself that changes nothing
            client.copy_object(
                Bucket=self.bucket,
                Key=destination,
                CopySource={"Bucket": self.bucket, "Key": source},
            )
        return size

    async def _move(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source = clean_key(input.get("source"))
        destination = clean_key(input.get("destination"))
        client = await self._ready()

        def move() -> None:
            self._copy_sync(client, source, destination)
            if source != destination:
                client.delete_object(Bucket=self.bucket, Key=source)

        await self._run(move, source)
        return {"source": source, "destination": destination}

    async def _copy(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source = clean_key(input.get("source"))
        destination = clean_key(input.get("destination"))
        client = await self._ready()
        size = await self._run(lambda: self._copy_sync(client, source, destination), source)
        return {"source": source, "destination": destination, "size": size}

    async def _delete(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        client = await self._ready()

        def delete() -> bool:
            if self._size(client, key) is None:
                return False  # S3 answers a delete of nothing as a success: say what was
            client.delete_object(Bucket=self.bucket, Key=key)
            return True

        return {"path": key, "deleted": await self._run(delete, key)}

    async def _exists(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        client = await self._ready()

        def exists() -> dict[str, Any]:
            size = self._size(client, key)
            if size is not None:
                return {"path": key, "exists": True, "size": size, "isDirectory": False}
            under = client.list_objects_v2(Bucket=self.bucket, Prefix=f"{key}/", MaxKeys=1)
            if under.get("KeyCount") or under.get("Contents"):
                return {"path": key, "exists": True, "size": 0, "isDirectory": True}
            return {"path": key, "exists": False}

        result: dict[str, Any] = await self._run(exists, key)
        return result

    async def _list(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path") or "", allow_root=True)
        pattern = str(input.get("pattern") or "*")
        recursive = bool(input.get("recursive"))
        client = await self._ready()

        def listing() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{key}/" if key else ""}
            if not recursive:
                arguments["Delimiter"] = "/"
            for page in client.get_paginator("list_objects_v2").paginate(**arguments):
                for obj in page.get("Contents") or ():
                    if listed(obj["Key"], pattern):
                        found.append(entry(obj["Key"], obj.get("Size"), obj.get("LastModified")))
                        if len(found) >= MAX_LISTED:
                            return found
            return found

        files = sorted(await self._run(listing), key=lambda f: f["path"])
        return {"path": key, "files": files, "count": len(files)}

    async def _remove_tree(self, input: Mapping[str, Any]) -> dict[str, Any]:
        """Every object under the folder ``path`` deleted (a play's temporary directory)."""
        key = clean_key(input.get("path"))
        client = await self._ready()

        def remove() -> None:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{key}/"
            )
            for page in pages:
                batch = [{"Key": obj["Key"]} for obj in page.get("Contents") or ()]
                if batch:  # at most 1000 a page: what one DeleteObjects takes
                    client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                    )

        await self._run(remove, key)
        return {"path": key, "removed": True}

    async def _presign(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, seconds, method = presign_args(input)
        if self.anonymous:
            raise ComponentRefused(
                "a presigned URL needs the component's accessKeyId and secretAccessKey"
            )
        client = await self._ready()
        issued = datetime.now(UTC).replace(microsecond=0)
        url = await self._run(
            lambda: client.generate_presigned_url(
                "get_object" if method == "GET" else "put_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=seconds,
                HttpMethod=method,
            ),
            key,
        )
        return {"url": url, "expiresAt": expires_at(issued, seconds)}

    # -- the provider -------------------------------------------------------------------------

    async def check(self) -> str:
        client = await self._ready()
        await self._run(lambda: client.head_bucket(Bucket=self.bucket))
        return f"connected: bucket {self.bucket}"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def open_s3(config: Mapping[str, Any], env: ProviderEnv) -> S3Storage:
    return S3Storage(config, env)
