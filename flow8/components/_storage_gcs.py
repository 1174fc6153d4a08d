"""``storage/gcs``: a Google Cloud Storage bucket (``endpoint`` for an emulator or a
private endpoint).

It answers the operations of ``storage/local`` with the same shapes (``read``, ``write``,
``move``, ``copy``, ``delete``, ``exists``, ``list``; keys follow the same path rules,
``_paths.clean_key``), so the storage modules work unchanged, plus ``presign`` ``{path,
expiresSeconds, method: GET|PUT}`` -> ``{url, expiresAt}`` (V4 signed URLs, which need a
service account key). A "folder" is a name prefix ending in ``/``. ``write`` takes an
optional ``contentType`` (else the type the name suggests) and answers the ``bucket`` too.

* Credentials: ``credentialsJson``, a service account key (``type: service_account``;
  other kinds, which name files or URLs to fetch credentials from, are refused), or nothing
  (anonymous requests: a public bucket, an emulator). The server's own Google credentials
  (application default credentials, the metadata server) are never used.
* Where requests go: the API endpoint (``endpoint``, else ``storage.googleapis.com``) and the
  key's ``token_uri``, nothing else; both are checked against the server's network policy
  before the first request and pinned over plain HTTP (``_object_store.Guard``). Redirects
  elsewhere are refused, proxies and ``.netrc`` from the server's environment are ignored.
* One client per provider, made at first use in a worker thread; every call runs in a
  worker thread with a connect and read timeout and a bounded retry.
* Errors name the bucket and the key, never the credentials.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import requests.adapters
import trio
from google.api_core import exceptions as api_errors
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.cloud.storage import exceptions as media_errors
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from ._object_store import (
    MAX_LISTED,
    MAX_READ_BYTES,
    Guard,
    GuardRefused,
    Origin,
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

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
RETRY_SECONDS = 20.0  # retries of a failed call (with back-off) stop after this
_TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
_RETRY = DEFAULT_RETRY.with_timeout(RETRY_SECONDS)


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    """Every request a session sends (redirects and token refreshes included) passes the
    guard: only the checked origins, pinned over plain HTTP."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self._guard = guard

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url, host = self._guard.route(str(request.url))
        if host is not None:
            request.url = url
            request.headers["Host"] = host
        return super().send(request, *args, **kwargs)


def _guarded(session: requests.Session, guard: Guard) -> requests.Session:
    session.trust_env = False  # no proxy or .netrc of the server's environment
    adapter = _GuardedAdapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _service_account(raw: object) -> service_account.Credentials:
    try:
        info = json.loads(str(raw))
    except ValueError:
        raise ComponentConfigError("credentialsJson is not valid JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ComponentConfigError(
            "credentialsJson must be a service account key (type: service_account)"
        )
    try:
        made = service_account.Credentials.from_service_account_info  # untyped
        credentials: service_account.Credentials = made(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, KeyError):
        raise ComponentConfigError(
            "credentialsJson is not a usable service account key (it needs client_email, "
            "private_key and token_uri)"
        ) from None
    return credentials


class GcsStorage:
    def __init__(self, config: Mapping[str, Any], env: ProviderEnv) -> None:
        self.bucket_name = str(config["bucket"])
        self.endpoint = str(config.get("endpoint") or DEFAULT_ENDPOINT).strip().rstrip("/")
        origins: list[Origin] = [parse_origin(self.endpoint, "endpoint")]
        self._credentials: service_account.Credentials | None = None
        project = config.get("projectId")
        if config.get("credentialsJson"):
            self._credentials = _service_account(config["credentialsJson"])
            token_uri = json.loads(str(config["credentialsJson"])).get("token_uri")
            origins.append(parse_origin(token_uri, "token_uri"))
            project = project or self._credentials.project_id
        self.project: str | None = str(project) if project else None
        self._guard = Guard(origins, env)
        self._env = env
        self._client: storage.Client | None = None
        self._sessions: list[requests.Session] = []
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

    # -- the client ---------------------------------------------------------------------------

    async def _ready(self) -> storage.Bucket:
        await self._guard.check()
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._run(self._make_client)
        return self._client.bucket(self.bucket_name)

    def _make_client(self) -> storage.Client:
        credentials: Any = self._credentials or AnonymousCredentials()  # type: ignore[no-untyped-call]
        token_session = _guarded(requests.Session(), self._guard)
        http = _guarded(
            AuthorizedSession(  # type: ignore[no-untyped-call]
                credentials,
                auth_request=Request(token_session),
                refresh_timeout=CONNECT_TIMEOUT + READ_TIMEOUT,
            ),
            self._guard,
        )
        self._sessions = [token_session, http]
        try:
            return storage.Client(
                project=self.project,
                credentials=credentials,
                _http=http,
                client_options={"api_endpoint": self.endpoint},
            )
        except ValueError as e:  # a universe domain the endpoint does not serve
            raise ComponentConfigError(f"gcs: {e}") from None

    async def _run(self, fn: Callable[[], Any], key: str | None = None) -> Any:
        try:
            return await self._env.in_thread(fn)
        except ComponentError:
            raise
        except (
            GuardRefused,
            api_errors.GoogleAPIError,
            auth_errors.GoogleAuthError,
            requests.RequestException,
            media_errors.InvalidResponse,
            media_errors.DataCorruption,
        ) as e:
            raise self._failure(e, key) from None

    def _failure(self, e: BaseException, key: str | None) -> ComponentError:
        what = f"{key!r} in bucket {self.bucket_name!r}" if key else f"bucket {self.bucket_name!r}"
        if isinstance(e, api_errors.RetryError) and e.cause is not None:
            e = e.cause  # what the last try met
        if isinstance(e, GuardRefused):
            return ComponentRefused(str(e))
        if isinstance(e, api_errors.NotFound):
            if key is None:
                return ComponentFailed(f"no such bucket {self.bucket_name!r} at {self.endpoint}")
            return ComponentFailed(f"no such file: {key!r} (bucket {self.bucket_name!r})")
        if isinstance(e, api_errors.Forbidden):
            return ComponentFailed(f"access denied to {what}")
        if isinstance(e, api_errors.Unauthorized | auth_errors.RefreshError):
            return ComponentFailed(
                f"the credentials were refused for {what}: check credentialsJson"
            )
        if isinstance(e, api_errors.GoogleAPICallError):
            message = str(e.message or "")[:300]
            return ComponentFailed(f"GCS answered {e.code} for {what}: {message}".rstrip(": "))
        if isinstance(e, requests.Timeout):
            return ComponentFailed(f"{self.endpoint} did not answer in time ({what})")
        if isinstance(e, requests.ConnectionError | auth_errors.TransportError):
            return ComponentFailed(
                f"could not connect to {self.endpoint}: nothing answered (is it running and "
                "reachable?)"
            )
        if isinstance(e, media_errors.DataCorruption):
            return ComponentFailed(f"the content of {what} failed its checksum")
        return ComponentFailed(f"GCS request on {what} failed ({type(e).__name__})")

    # -- operations ---------------------------------------------------------------------------

    async def _read(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        bucket = await self._ready()

        def read() -> tuple[bytes, str | None]:
            blob = bucket.get_blob(key, timeout=_TIMEOUT, retry=_RETRY)
            if blob is None:
                raise ComponentFailed(f"no such file: {key!r} (bucket {self.bucket_name!r})")
            if int(blob.size or 0) > MAX_READ_BYTES:
                raise ComponentRefused(f"{key!r} is larger than {MAX_READ_BYTES} bytes")
            # Downloaded by name (and generation: the version just looked at), never from
            # the link the server put in the metadata.
            exact = bucket.blob(key, generation=blob.generation)
            data: bytes = exact.download_as_bytes(timeout=_TIMEOUT, retry=_RETRY)
            if len(data) > MAX_READ_BYTES:
                raise ComponentRefused(f"{key!r} is larger than {MAX_READ_BYTES} bytes")
            return data, blob.content_type

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
        bucket = await self._ready()
        await self._run(
            lambda: bucket.blob(key).upload_from_string(
                content, content_type=content_type, timeout=_TIMEOUT, retry=_RETRY
            ),
            key,
        )
        return {"path": key, "size": len(content), "bucket": self.bucket_name}

    def _copy_sync(self, bucket: storage.Bucket, source: str, destination: str) -> int:
        if source == destination:
            blob = bucket.get_blob(source, timeout=_TIMEOUT, retry=_RETRY)
            if blob is None:
                raise ComponentFailed(f"no such file: {source!r} (bucket {self.bucket_name!r})")
            return int(blob.size or 0)
        copied = bucket.copy_blob(
            bucket.blob(source), bucket, destination, timeout=_TIMEOUT, retry=_RETRY
        )
        return int(copied.size or 0)

    async def _move(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source = clean_key(input.get("source"))
        destination = clean_key(input.get("destination"))
        bucket = await self._ready()

        def move() -> None:
            self._copy_sync(bucket, source, destination)
            if source != destination:
                bucket.blob(source).delete(timeout=_TIMEOUT, retry=_RETRY)

        await self._run(move, source)
        return {"source": source, "destination": destination}

    async def _copy(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source = clean_key(input.get("source"))
        destination = clean_key(input.get("destination"))
        bucket = await self._ready()
        size = await self._run(lambda: self._copy_sync(bucket, source, destination), source)
        return {"source": source, "destination": destination, "size": size}

    async def _delete(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        bucket = await self._ready()

        def delete() -> bool:
            try:
                bucket.blob(key).delete(timeout=_TIMEOUT, retry=_RETRY)
            except api_errors.NotFound:
                return False
            return True

        return {"path": key, "deleted": await self._run(delete, key)}

    async def _exists(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        bucket = await self._ready()

        def exists() -> dict[str, Any]:
            blob = bucket.get_blob(key, timeout=_TIMEOUT, retry=_RETRY)
            if blob is not None:
                return {
                    "path": key,
                    "exists": True,
                    "size": int(blob.size or 0),
                    "isDirectory": False,
                }
            under = bucket.list_blobs(
                prefix=f"{key}/", max_results=1, timeout=_TIMEOUT, retry=_RETRY
            )
            if any(True for _ in under):
                return {"path": key, "exists": True, "size": 0, "isDirectory": True}
            return {"path": key, "exists": False}

        result: dict[str, Any] = await self._run(exists, key)
        return result

    async def _list(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path") or "", allow_root=True)
        pattern = str(input.get("pattern") or "*")
        recursive = bool(input.get("recursive"))
        bucket = await self._ready()

        def listing() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            blobs = bucket.list_blobs(
                prefix=f"{key}/" if key else "",
                delimiter=None if recursive else "/",
                page_size=1000,
                timeout=_TIMEOUT,
                retry=_RETRY,
            )
            for blob in blobs:
                if listed(blob.name, pattern):
                    found.append(entry(blob.name, blob.size, blob.updated))
                    if len(found) >= MAX_LISTED:
                        return found
            return found

        files = sorted(await self._run(listing), key=lambda f: f["path"])
        return {"path": key, "files": files, "count": len(files)}

    async def _remove_tree(self, input: Mapping[str, Any]) -> dict[str, Any]:
        """Every object under the folder ``path`` deleted (a play's temporary directory)."""
        key = clean_key(input.get("path"))
        bucket = await self._ready()

        def remove() -> None:
            for blob in bucket.list_blobs(prefix=f"{key}/", timeout=_TIMEOUT, retry=_RETRY):
                with contextlib.suppress(api_errors.NotFound):  # gone already
                    bucket.blob(blob.name).delete(timeout=_TIMEOUT, retry=_RETRY)

        await self._run(remove, key)
        return {"path": key, "removed": True}

    async def _presign(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, seconds, method = presign_args(input)
        credentials = self._credentials
        if credentials is None:
            raise ComponentRefused(
                "a presigned URL needs the component's credentialsJson (a service account key)"
            )
        bucket = await self._ready()
        issued = datetime.now(UTC).replace(microsecond=0)
        url = await self._run(
            lambda: bucket.blob(key).generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=seconds),
                method=method,
                api_access_endpoint=self.endpoint,
                credentials=credentials,
            ),
            key,
        )
        return {"url": url, "expiresAt": expires_at(issued, seconds)}

    # -- the provider -------------------------------------------------------------------------

    async def check(self) -> str:
        bucket = await self._ready()
        # One try, no retries: a check answers what fails now.
        found = await self._run(lambda: bucket.exists(timeout=_TIMEOUT, retry=None))
        if not found:
            raise ComponentFailed(f"no such bucket {self.bucket_name!r} at {self.endpoint}")
        return f"connected: bucket {self.bucket_name}"

    async def aclose(self) -> None:
        self._client = None
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


def open_gcs(config: Mapping[str, Any], env: ProviderEnv) -> GcsStorage:
    return GcsStorage(config, env)
