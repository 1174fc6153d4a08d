"""``storage/gcs``: a Google Cloud Storage bucket (``endpoint`` for an emulator or a
private endpoint).

It answers the operations of ``storage/local`` with the same shapes (``read``, ``write``,
``move``, ``copy``, ``delete``, ``exists``, ``list``; keys follow the same path rules,
``_paths.clean_key``), so the storage modules work unchanged, plus ``presign`` ``{path,
expiresSeconds, method: GET|PUT}`` -> ``{url, expiresAt}`` (V4 signed URLs, which need a
service account key). A "folder" is a name prefix ending in ``/``. ``write`` takes an
optional ``contentType`` (else the type the name suggests) and answers the ``bucket`` too.
The operations are written once, in ``_object_store.ObjectStorage``; this module is the
Google client's side of them.

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

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
import requests.adapters
from google.api_core import exceptions as api_errors
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.cloud.storage import exceptions as media_errors
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from ._object_store import Guard, GuardRefused, ObjectStorage, Origin, parse_origin, refuse_larger
from ._provider import ProviderEnv
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


class GcsStorage(ObjectStorage):
    service = "GCS"
    sdk_errors = (
        api_errors.GoogleAPIError,
        auth_errors.GoogleAuthError,
        requests.RequestException,
        media_errors.InvalidResponse,
        media_errors.DataCorruption,
    )

    def __init__(self, config: Mapping[str, Any], env: ProviderEnv) -> None:
        bucket = str(config["bucket"])
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
        self._sessions: list[requests.Session] = []
        super().__init__(bucket, env, Guard(origins, env))

    @property
    def _where(self) -> str:
        return self.endpoint

    @property
    def _cannot_sign(self) -> str | None:
        if self._credentials is None:
            return "a presigned URL needs the component's credentialsJson (a service account key)"
        return None

    # -- the client ---------------------------------------------------------------------------

    def _make_client(self) -> storage.Client:
        assert self._guard is not None
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

    def _handle(self, client: storage.Client) -> storage.Bucket:
        return client.bucket(self.bucket)

    def _failure(self, e: Exception, key: str | None) -> ComponentError:
        if isinstance(e, api_errors.RetryError) and e.cause is not None:
            e = e.cause  # what the last try met
        if isinstance(e, GuardRefused):
            return ComponentRefused(str(e))
        if isinstance(e, api_errors.NotFound):
            return self._no_bucket() if key is None else self._no_file(key)
        if isinstance(e, api_errors.Forbidden):
            return self._denied(key)
        if isinstance(e, api_errors.Unauthorized | auth_errors.RefreshError):
            return ComponentFailed(
                f"the credentials were refused for {self._what(key)}: check credentialsJson"
            )
        if isinstance(e, api_errors.GoogleAPICallError):
            return self._answered(e.code, e.message or "", key)
        if isinstance(e, requests.Timeout):
            return self._too_slow(key)
        if isinstance(e, requests.ConnectionError | auth_errors.TransportError):
            return self._unreachable()
        if isinstance(e, media_errors.DataCorruption):
            return ComponentFailed(f"the content of {self._what(key)} failed its checksum")
        return self._request_failed(e, key)

    # -- the primitives (in a worker thread, handed the bucket) -------------------------------

    def _get(self, bucket: storage.Bucket, key: str) -> tuple[bytes, str | None]:
        blob = bucket.get_blob(key, timeout=_TIMEOUT, retry=_RETRY)
        if blob is None:
            raise self._no_file(key)
        refuse_larger(key, int(blob.size or 0))
        # Downloaded by name (and generation: the version just looked at), never from the
        # link the server put in the metadata.
        exact = bucket.blob(key, generation=blob.generation)
        data: bytes = exact.download_as_bytes(timeout=_TIMEOUT, retry=_RETRY)
        return data, blob.content_type

    def _put(self, bucket: storage.Bucket, key: str, content: bytes, content_type: str) -> None:
        bucket.blob(key).upload_from_string(
            content, content_type=content_type, timeout=_TIMEOUT, retry=_RETRY
        )

    def _size(self, bucket: storage.Bucket, key: str) -> int | None:
        blob = bucket.get_blob(key, timeout=_TIMEOUT, retry=_RETRY)
        return None if blob is None else int(blob.size or 0)

    def _copy_object(self, bucket: storage.Bucket, source: str, destination: str) -> int:
        copied = bucket.copy_blob(
            bucket.blob(source), bucket, destination, timeout=_TIMEOUT, retry=_RETRY
        )
        return int(copied.size or 0)  # a missing source fails with NotFound

    def _delete_object(self, bucket: storage.Bucket, key: str) -> None:
        bucket.blob(key).delete(timeout=_TIMEOUT, retry=_RETRY)

    def _delete_existing(self, bucket: storage.Bucket, key: str) -> bool:
        try:
            self._delete_object(bucket, key)
        except api_errors.NotFound:
            return False
        return True

    def _objects(
        self, bucket: storage.Bucket, prefix: str, *, recursive: bool, limit: int | None = None
    ) -> Iterator[tuple[str, int | None, datetime | None]]:
        blobs = bucket.list_blobs(
            prefix=prefix,
            delimiter=None if recursive else "/",
            max_results=limit,
            page_size=1000,
            timeout=_TIMEOUT,
            retry=_RETRY,
        )
        for blob in blobs:
            yield blob.name, blob.size, blob.updated

    def _sign(self, bucket: storage.Bucket, key: str, seconds: int, method: str) -> str:
        url: str = bucket.blob(key).generate_signed_url(
            version="v4",
            expiration=timedelta(seconds=seconds),
            method=method,
            api_access_endpoint=self.endpoint,
            credentials=self._credentials,
        )
        return url

    def _bucket_exists(self, bucket: storage.Bucket) -> bool:
        # One try, no retries: a check answers what fails now.
        found: bool = bucket.exists(timeout=_TIMEOUT, retry=None)
        return found

    async def aclose(self) -> None:
        self._client = None
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


def open_gcs(config: Mapping[str, Any], env: ProviderEnv) -> GcsStorage:
    return GcsStorage(config, env)
