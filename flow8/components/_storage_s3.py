"""``storage/s3``: an S3 bucket (AWS, or MinIO, R2, Ceph and the like through ``endpoint``).

It answers the operations of ``storage/local`` with the same shapes (``read``, ``write``,
``move``, ``copy``, ``delete``, ``exists``, ``list``; keys follow the same path rules,
``_paths.clean_key``), so the storage modules work unchanged, plus ``presign`` ``{path,
expiresSeconds, method: GET|PUT}`` -> ``{url, expiresAt}``. A "folder" is a key prefix
ending in ``/``. ``write`` takes an optional ``contentType`` (else the type the name
suggests) and answers the ``bucket`` too. The operations are written once, in
``_object_store.ObjectStorage``; this module is boto3's side of them.

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
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ._object_store import MAX_READ_BYTES, Guard, ObjectStorage, parse_origin, refuse_larger
from ._provider import ProviderEnv
from .exceptions import ComponentConfigError, ComponentError, ComponentFailed

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


class S3Storage(ObjectStorage):
    service = "S3"
    sdk_errors = (BotoCoreError, ClientError)

    def __init__(self, config: Mapping[str, Any], env: ProviderEnv) -> None:
        bucket = str(config["bucket"])
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
        guard: Guard | None = None
        if raw_endpoint:
            origin = parse_origin(raw_endpoint, "endpoint")
            self.endpoint = str(raw_endpoint).strip()
            guard = Guard([origin], env)
        super().__init__(bucket, env, guard)

    @property
    def _where(self) -> str:
        return f"the endpoint {self.endpoint}" if self.endpoint else f"S3 ({self.region})"

    @property
    def _cannot_sign(self) -> str | None:
        if self.anonymous:
            return "a presigned URL needs the component's accessKeyId and secretAccessKey"
        return None

    # -- the client ---------------------------------------------------------------------------

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

    def _failure(self, e: Exception, key: str | None) -> ComponentError:
        if isinstance(e, ClientError):
            error = e.response.get("Error") or {}
            status = (e.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            code = str(error.get("Code") or status or "error")
            if code == "NoSuchBucket" or (code in _MISSING and key is None):
                return self._no_bucket()
            if code in _MISSING:
                return self._no_file(key)
            if code in _DENIED:
                return self._denied(key)
            if code in _BAD_CREDENTIALS:
                return ComponentFailed(
                    f"{self._where} refused the credentials ({code}): check accessKeyId and "
                    "secretAccessKey"
                )
            if code in _WRONG_REGION:
                return ComponentFailed(
                    f"bucket {self.bucket!r} is not in region {self.region!r}: set its region"
                )
            return self._answered(code, error.get("Message") or "", key)
        if isinstance(e, EndpointConnectionError | ConnectTimeoutError):
            return self._unreachable()
        if isinstance(e, ReadTimeoutError):
            return self._too_slow(key)
        return self._request_failed(e, key)

    # -- the primitives (in a worker thread, handed the client) -------------------------------

    def _get(self, client: Any, key: str) -> tuple[bytes, str | None]:
        got = client.get_object(Bucket=self.bucket, Key=key)
        body = got["Body"]
        try:
            refuse_larger(key, int(got.get("ContentLength") or 0))
            data: bytes = body.read(MAX_READ_BYTES + 1)
        finally:
            body.close()
        return data, got.get("ContentType")

    def _put(self, client: Any, key: str, content: bytes, content_type: str) -> None:
        client.put_object(Bucket=self.bucket, Key=key, Body=content, ContentType=content_type)

    def _size(self, client: Any, key: str) -> int | None:
        try:
            head = client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if str((e.response.get("Error") or {}).get("Code")) in _MISSING:
                return None
            raise
        return int(head.get("ContentLength") or 0)

    def _copy_object(self, client: Any, source: str, destination: str) -> int | None:
        size = self._size(client, source)
        if size is not None:
            client.copy_object(
                Bucket=self.bucket,
                Key=destination,
                CopySource={"Bucket": self.bucket, "Key": source},
            )
        return size

    def _delete_object(self, client: Any, key: str) -> None:
        client.delete_object(Bucket=self.bucket, Key=key)

    def _delete_existing(self, client: Any, key: str) -> bool:
        if self._size(client, key) is None:
            return False  # S3 answers a delete of nothing as a success: say what was
        self._delete_object(client, key)
        return True

    def _objects(
        self, client: Any, prefix: str, *, recursive: bool, limit: int | None = None
    ) -> Iterator[tuple[str, int | None, datetime | None]]:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if not recursive:
            arguments["Delimiter"] = "/"
        pages: Iterable[Any]
        if limit is None:
            pages = client.get_paginator("list_objects_v2").paginate(**arguments)
        else:
            pages = [client.list_objects_v2(**arguments, MaxKeys=limit)]
        for page in pages:
            for obj in page.get("Contents") or ():
                yield obj["Key"], obj.get("Size"), obj.get("LastModified")

    def _delete_under(self, client: Any, prefix: str) -> None:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            batch = [{"Key": obj["Key"]} for obj in page.get("Contents") or ()]
            if batch:  # at most 1000 a page: what one DeleteObjects takes
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _sign(self, client: Any, key: str, seconds: int, method: str) -> str:
        url: str = client.generate_presigned_url(
            "get_object" if method == "GET" else "put_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=seconds,
            HttpMethod=method,
        )
        return url

    def _bucket_exists(self, client: Any) -> bool:
        client.head_bucket(Bucket=self.bucket)  # a missing bucket fails with 404
        return True

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def open_s3(config: Mapping[str, Any], env: ProviderEnv) -> S3Storage:
    return S3Storage(config, env)
