"""S3 and GCS storage components end to end, against real servers on loopback (moto's S3
server, the GCS emulator): configured through the service, used by saved flows' steps, with
the same path rules as local storage, the network policy on their endpoints, and their
secrets kept out of every record."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from components_kit import COMPANY, Kit, component_kit
from object_storage_servers import (
    GcsServer,
    S3Server,
    closed_port,
    connection_attempted,
    gcs_server,
    redirecting_server,
    s3_server,
    service_account_json,
    silent_port,
    token_server,
)

from flow8.components import ComponentRefused, ProviderEnv
from flow8.components._storage_gcs import open_gcs
from flow8.components._storage_s3 import open_s3
from flow8.domain import PlayState
from flow8.modules import default_registry
from flow8.outbound import OutboundPolicy
from flow8.services.components import InvalidComponent
from flow8.services.flows import FlowValidationError

PROVIDERS = ["s3", "gcs"]
BINARY = bytes(range(256)) * 3  # every byte value, not UTF-8


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsServer]:
    with gcs_server() as server:
        yield server


class Store:
    """One provider's server, seen from the test: component configs and what it holds."""

    def __init__(self, provider: str, server: S3Server | GcsServer) -> None:
        self.provider = provider
        self.server = server

    def config(self, bucket: str, endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
        config: dict[str, Any] = {"bucket": bucket, "endpoint": endpoint or self.server.endpoint}
        if self.provider == "s3":
            config.update(region="us-east-1", accessKeyId="AKIAFLOW8TEST")
            config["secretAccessKey"] = "flow8-test-secret-key"
        else:
            config["projectId"] = "flow8-test"
        config.update(extra)
        return config

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of ``bucket`` and its content, asked of the server directly."""
        if isinstance(self.server, S3Server):
            client = self.server.client()
            listed = client.list_objects_v2(Bucket=bucket).get("Contents") or []
            return {
                o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                for o in listed
            }
        gcs = self.server.client()
        names = [b.name for b in gcs.list_blobs(bucket)]
        return {n: gcs.bucket(bucket).blob(n).download_as_bytes() for n in names}


@pytest.fixture(params=PROVIDERS)
def store(request: pytest.FixtureRequest) -> Store:
    provider = request.param
    return Store(provider, request.getfixturevalue(provider))


async def configure(kit: Kit, store: Store, **config: Any) -> str:
    """A default storage component on a new bucket of ``store``; the bucket's name."""
    bucket = store.server.new_bucket()
    await kit.component("storage", store.provider, store.config(bucket, **config))
    return bucket


# -- the storage modules, unchanged, on each provider ------------------------------------------


async def test_storage_modules_write_read_copy_move_list_and_delete_objects(
    tmp_path: Path, store: Store
) -> None:
    async with component_kit(tmp_path) as kit:
        bucket = await configure(kit, store)
        play, layers = await kit.run(
            [
                {"ref": "w", "appId": "storage-write",
                 "args": {"path": "in/a.txt", "content": "{{ $prev.args.text }}"}},
                {"ref": "wb", "appId": "storage-write",
                 "args": {"path": "in/deep/blob.bin", "content": "{{ $prev.args.blob }}",
                          "encoding": "base64"}},
                {"ref": "r", "appId": "storage-read", "args": {"path": "in/a.txt"}},
                {"ref": "rb", "appId": "storage-read",
                 "args": {"path": "in//deep/./blob.bin", "encoding": "base64"}},
                {"ref": "c", "appId": "storage-copy",
                 "args": {"source": "in/a.txt", "destination": "in/b.txt"}},
                {"ref": "m", "appId": "storage-move",
                 "args": {"source": "in/a.txt", "destination": "out/a.txt"}},
                {"ref": "all", "appId": "storage-list", "args": {"recursive": True}},
                {"ref": "txt", "appId": "storage-list",
                 "args": {"path": "in", "pattern": "*.txt", "recursive": True}},
                {"ref": "top", "appId": "storage-list", "args": {"path": "in"}},
                {"ref": "ef", "appId": "storage-exists", "args": {"path": "in/deep/blob.bin"}},
                {"ref": "ed", "appId": "storage-exists", "args": {"path": "in/deep"}},
                {"ref": "d", "appId": "storage-delete", "args": {"path": "in/b.txt"}},
                {"ref": "d2", "appId": "storage-delete", "args": {"path": "in/b.txt"}},
                {"ref": "e", "appId": "storage-exists", "args": {"path": "in/b.txt"}},
            ],
            {"text": "hello, wörld", "blob": base64.b64encode(BINARY).decode()},
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        size = len("hello, wörld".encode())
        assert layers["w"].output == {"path": "in/a.txt", "size": size}
        assert layers["r"].output == {
            "path": "in/a.txt",
            "content": "hello, wörld",
            "size": size,
            "mimeType": "text/plain",
        }
        assert layers["rb"].output["path"] == "in/deep/blob.bin"
        assert base64.b64decode(layers["rb"].output["content"]) == BINARY
        assert layers["rb"].output["size"] == len(BINARY)
        assert layers["c"].output == {"source": "in/a.txt", "destination": "in/b.txt", "size": size}
        assert layers["m"].output == {"source": "in/a.txt", "destination": "out/a.txt"}
        everything = layers["all"].output
        assert [f["path"] for f in everything["files"]] == [
            "in/b.txt",
            "in/deep/blob.bin",
            "out/a.txt",
        ]
        assert everything["count"] == 3
        assert {f["path"]: f["size"] for f in everything["files"]} == {
            "in/b.txt": size,
            "in/deep/blob.bin": len(BINARY),
            "out/a.txt": size,
        }
        assert all(isinstance(f["modifiedAt"], int | float) for f in everything["files"])
        assert [f["path"] for f in layers["txt"].output["files"]] == ["in/b.txt"]
        assert [f["path"] for f in layers["top"].output["files"]] == ["in/b.txt"]
        assert layers["ef"].output == {
            "path": "in/deep/blob.bin",
            "exists": True,
            "size": len(BINARY),
            "isDirectory": False,
        }
        assert layers["ed"].output["exists"] is True
        assert layers["ed"].output["isDirectory"] is True
        assert layers["d"].output == {"path": "in/b.txt", "deleted": True}
        assert layers["d2"].output == {"path": "in/b.txt", "deleted": False}
        assert layers["e"].output == {"path": "in/b.txt", "exists": False}
        assert store.objects(bucket) == {
            "in/deep/blob.bin": BINARY,
            "out/a.txt": "hello, wörld".encode(),
        }


async def test_a_plays_temporary_directory_is_removed_with_its_objects_when_it_ends(
    tmp_path: Path, store: Store
) -> None:
    async with component_kit(tmp_path) as kit:
        bucket = await configure(kit, store)
        play, layers = await kit.run(
            [
                {"ref": "keep", "appId": "storage-write",
                 "args": {"path": "kept.txt", "content": "stays"}},
                {"ref": "t", "appId": "storage-tempdir", "args": {}},
                {"ref": "a", "appId": "storage-write",
                 "args": {"path": "{{ $prev.t.path }}/a.txt", "content": "scratch"}},
                {"ref": "b", "appId": "storage-write",
                 "args": {"path": "{{ $prev.t.path }}/deep/b.bin", "content": "scratch"}},
                {"ref": "l", "appId": "storage-list",
                 "args": {"path": "{{ $prev.t.path }}", "recursive": True}},
            ]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["t"].output == {"path": f"tmp/{play.id}"}
        assert layers["l"].output["count"] == 2
        assert store.objects(bucket) == {"kept.txt": b"stays"}


async def test_reading_a_missing_object_fails_naming_the_key_and_the_bucket(
    tmp_path: Path, store: Store
) -> None:
    async with component_kit(tmp_path) as kit:
        bucket = await configure(kit, store)
        play, layers = await kit.run(
            [{"ref": "r", "appId": "storage-read", "args": {"path": "nope/missing.csv"}}]
        )
    assert play.state is PlayState.FAIL
    error = layers["r"].error or ""
    assert "COMPONENT_FAILED" in error
    assert "no such file: 'nope/missing.csv'" in error
    assert bucket in error


# -- the s3-* modules ----------------------------------------------------------------------------


async def test_s3_modules_upload_download_list_and_delete(tmp_path: Path, store: Store) -> None:
    async with component_kit(tmp_path) as kit:
        bucket = await configure(kit, store)
        play, layers = await kit.run(
            [
                {"ref": "up", "appId": "s3-upload",
                 "args": {"key": "reports/2026/may.bin", "content": "{{ $prev.args.blob }}",
                          "encoding": "base64", "contentType": "application/x-flow8"}},
                {"ref": "up2", "appId": "s3-upload",
                 "args": {"key": "reports/2026/may.csv", "content": "a,b\n1,2\n"}},
                {"ref": "up3", "appId": "s3-upload",
                 "args": {"key": "reports/20.csv", "content": "x"}},
                {"ref": "up4", "appId": "s3-upload",
                 "args": {"key": "reports-old/2026.csv", "content": "y"}},
                {"ref": "dl", "appId": "s3-download",
                 "args": {"key": "reports/2026/may.bin", "encoding": "base64"}},
                {"ref": "dlt", "appId": "s3-download", "args": {"key": "reports/2026/may.csv"}},
                {"ref": "ls", "appId": "s3-list", "args": {"prefix": "reports/20"}},
                {"ref": "lsd", "appId": "s3-list", "args": {"prefix": "reports/"}},
                {"ref": "lsp", "appId": "s3-list", "args": {"pattern": "*.csv"}},
                {"ref": "del", "appId": "s3-delete", "args": {"key": "reports/2026/may.bin"}},
                {"ref": "del2", "appId": "s3-delete", "args": {"key": "reports/2026/may.bin"}},
            ],
            {"blob": base64.b64encode(BINARY).decode()},
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["up"].output == {
            "key": "reports/2026/may.bin",
            "size": len(BINARY),
            "bucket": bucket,
        }
        assert base64.b64decode(layers["dl"].output["content"]) == BINARY
        assert layers["dl"].output["mimeType"] == "application/x-flow8"
        assert layers["dl"].output["key"] == "reports/2026/may.bin"
        assert layers["dlt"].output["content"] == "a,b\n1,2\n"
        assert layers["dlt"].output["mimeType"] == "text/csv"

        def keys(ref: str) -> list[str]:
            return [f["path"] for f in layers[ref].output["files"]]

        assert keys("ls") == ["reports/20.csv", "reports/2026/may.bin", "reports/2026/may.csv"]
        assert layers["ls"].output["count"] == 3
        assert keys("lsd") == ["reports/20.csv", "reports/2026/may.bin", "reports/2026/may.csv"]
        assert keys("lsp") == ["reports-old/2026.csv", "reports/20.csv", "reports/2026/may.csv"]
        assert layers["del"].output == {"key": "reports/2026/may.bin", "deleted": True}
        assert layers["del2"].output == {"key": "reports/2026/may.bin", "deleted": False}
        assert sorted(store.objects(bucket)) == [
            "reports-old/2026.csv",
            "reports/20.csv",
            "reports/2026/may.csv",
        ]


def test_s3_modules_are_in_the_catalog_with_examples_that_validate() -> None:
    registry = default_registry()
    for app_id in ("s3-upload", "s3-download", "s3-delete", "s3-list", "s3-presign"):
        spec = registry.get(app_id)
        assert spec.category == "storage"
        assert spec.components == ("storage",)
        assert spec.example is not None
        assert spec.arg_problems(dict(spec.example), static=True) == []


# -- paths: the same rules as local storage, refused before any request --------------------------


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../escape.txt", "contains '..'"),
        ("a/../../escape.txt", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("a\x00b", "NUL"),
        ("a\\b", "backslash"),
    ],
)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_key_breaking_the_path_rules_is_refused_and_no_request_is_sent(
    tmp_path: Path, provider: str, path: str, why: str
) -> None:
    with silent_port() as (endpoint, listener):
        async with component_kit(tmp_path) as kit:
            server = S3Server(endpoint) if provider == "s3" else GcsServer(endpoint)
            config = Store(provider, server).config("flow8-bucket")
            await kit.component("storage", provider, config)
            play, layers = await kit.run(
                [
                    {"ref": "r", "appId": "storage-read", "args": {"path": path}},
                    {"ref": "d", "appId": "s3-download", "args": {"key": path}},
                ]
            )
            assert play.state is PlayState.FAIL
            assert "COMPONENT_REFUSED" in (layers["r"].error or "")
            assert why in (layers["r"].error or "")
            play, layers = await kit.run(
                [{"ref": "u", "appId": "s3-upload", "args": {"key": path, "content": "x"}}]
            )
            assert "COMPONENT_REFUSED" in (layers["u"].error or "")
        assert not connection_attempted(listener)


# -- presigned URLs ------------------------------------------------------------------------------


async def test_a_presigned_url_uploads_and_downloads_without_the_keys(
    tmp_path: Path, s3: S3Server
) -> None:
    store = Store("s3", s3)
    async with component_kit(tmp_path) as kit:
        bucket = await configure(kit, store)
        play, layers = await kit.run(
            [
                {"ref": "put", "appId": "s3-presign",
                 "args": {"key": "shared/report.pdf", "method": "PUT", "expiresSeconds": 600}},
                {"ref": "get", "appId": "s3-presign", "args": {"key": "shared/report.pdf"}},
            ]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        async with httpx.AsyncClient() as http:
            put = await http.put(layers["put"].output["url"], content=BINARY)
            assert put.status_code == 200
            got = await http.get(layers["get"].output["url"])
        assert got.status_code == 200
        assert got.content == BINARY
        assert store.objects(bucket) == {"shared/report.pdf": BINARY}
        now = datetime.now(UTC)
        put_expiry = datetime.fromisoformat(layers["put"].output["expiresAt"])
        get_expiry = datetime.fromisoformat(layers["get"].output["expiresAt"])
        assert 0 < (put_expiry - now).total_seconds() <= 600
        assert 600 < (get_expiry - now).total_seconds() <= 3600
        assert "flow8-test-secret-key" not in layers["get"].output["url"]


async def test_a_presigned_url_beyond_seven_days_or_without_keys_is_refused(
    tmp_path: Path, s3: S3Server
) -> None:
    async with component_kit(tmp_path) as kit:
        bucket = s3.new_bucket()
        await kit.component(
            "storage", "s3", {"bucket": bucket, "endpoint": s3.endpoint}, name="public"
        )
        with pytest.raises(FlowValidationError):
            await kit.run(
                [{"ref": "p", "appId": "s3-presign",
                  "args": {"key": "a.txt", "expiresSeconds": 604801}}]
            )  # fmt: skip
        play, layers = await kit.run(
            [{"ref": "p", "appId": "s3-presign", "args": {"key": "a.txt"}}]
        )
        assert play.state is PlayState.FAIL
        assert "COMPONENT_REFUSED" in (layers["p"].error or "")
        assert "accessKeyId and secretAccessKey" in (layers["p"].error or "")


async def test_gcs_signs_urls_and_fetches_tokens_with_a_service_account_key(
    tmp_path: Path, gcs: GcsServer
) -> None:
    store = Store("gcs", gcs)
    with token_server() as tokens:
        credentials, _ = service_account_json(tokens.uri)
        async with component_kit(tmp_path) as kit:
            bucket = await configure(kit, store, credentialsJson=credentials)
            play, layers = await kit.run(
                [
                    {"ref": "w", "appId": "storage-write",
                     "args": {"path": "a/b.txt", "content": "through the API"}},
                    {"ref": "put", "appId": "s3-presign",
                     "args": {"key": "shared/c.bin", "method": "PUT"}},
                    {"ref": "get", "appId": "s3-presign", "args": {"key": "shared/c.bin"}},
                ]
            )  # fmt: skip
            assert play.state is PlayState.DONE, play.error
            async with httpx.AsyncClient() as http:
                put = await http.put(layers["put"].output["url"], content=BINARY)
                assert put.status_code == 200
                got = await http.get(layers["get"].output["url"])
            assert got.content == BINARY
            assert "X-Goog-Signature" in layers["get"].output["url"]
        assert tokens.grants  # the API calls carried a token from the key's token_uri
    assert store.objects(bucket) == {"a/b.txt": b"through the API", "shared/c.bin": BINARY}


# -- connectivity checks -------------------------------------------------------------------------


async def test_the_check_answers_connected_a_missing_bucket_or_nothing_listening(
    tmp_path: Path, store: Store
) -> None:
    async with component_kit(tmp_path) as kit:
        bucket = store.server.new_bucket()
        good = await kit.component("storage", store.provider, store.config(bucket), name="good")
        missing = await kit.component(
            "storage", store.provider, store.config("flow8-no-such-bucket"), name="missing"
        )
        down = await kit.component(
            "storage",
            store.provider,
            store.config(bucket, endpoint=closed_port()),
            name="down",
            default=False,
        )
        answer = await kit.components.test(COMPANY, good.id)
        assert answer["ok"] is True, answer
        assert answer["message"] == f"connected: bucket {bucket}"
        answer = await kit.components.test(COMPANY, missing.id)
        assert answer["ok"] is False
        assert "no such bucket 'flow8-no-such-bucket'" in answer["message"]
        answer = await kit.components.test(COMPANY, down.id)
        assert answer["ok"] is False
        assert "could not connect" in answer["message"]
        assert "nothing answered" in answer["message"]


@pytest.mark.parametrize(
    ("provider", "config", "why"),
    [
        ("s3", {"accessKeyId": "AKIAFLOW8"}, "go together"),
        ("s3", {"secretAccessKey": "hunter2-secret"}, "go together"),
        ("s3", {"endpoint": "ftp://files.example"}, "http(s) URL"),
        ("s3", {"endpoint": "http://admin:hunter2-secret@minio.example"}, "user name"),
        ("s3", {"region": "us-east-1/../x"}, "region"),
        ("gcs", {"credentialsJson": "{not json hunter2-secret"}, "not valid JSON"),
        (
            "gcs",
            {"credentialsJson": json.dumps({"type": "external_account", "x": "hunter2-secret"})},
            "service account",
        ),
        (
            "gcs",
            {"credentialsJson": json.dumps({"type": "service_account", "pk": "hunter2-secret"})},
            "service account key",
        ),
    ],
)
async def test_a_config_that_cannot_work_is_refused_when_saved_without_quoting_secrets(
    tmp_path: Path, provider: str, config: dict[str, Any], why: str
) -> None:
    async with component_kit(tmp_path) as kit:
        with pytest.raises(InvalidComponent) as refused:
            await kit.component("storage", provider, {"bucket": "flow8-bucket", **config})
    assert why in str(refused.value)
    assert "hunter2" not in str(refused.value)


# -- the network policy on endpoints -------------------------------------------------------------


async def test_an_endpoint_the_operator_did_not_open_is_refused(
    tmp_path: Path, store: Store
) -> None:
    bucket = store.server.new_bucket()
    async with component_kit(tmp_path, allowed_hosts=()) as kit:
        component = await kit.component("storage", store.provider, store.config(bucket))
        play, layers = await kit.run(
            [{"ref": "w", "appId": "storage-write", "args": {"path": "a.txt", "content": "x"}}]
        )
        assert play.state is PlayState.FAIL
        error = layers["w"].error or ""
        assert "COMPONENT_REFUSED" in error
        assert "not open to components" in error
        assert "127.0.0.1" in error
        answer = await kit.components.test(COMPANY, component.id)
        assert answer["ok"] is False
        assert "not open to components" in answer["message"]
    assert store.objects(bucket) == {}


class _Resolver:
    """DNS as a test wants it: each name answers the addresses given."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int) -> list[str]:
        return self.answers[host]


def _env(tmp_path: Path, answers: dict[str, list[str]]) -> ProviderEnv:
    return ProviderEnv(
        company_id=COMPANY,
        files_dir=tmp_path,
        network=OutboundPolicy(allowed_cidrs=["127.0.0.1/32"]),
        resolver=_Resolver(answers),
    )


def _open(provider: str, config: dict[str, Any], env: ProviderEnv) -> Any:
    return open_s3(config, env) if provider == "s3" else open_gcs(config, env)


async def test_an_endpoint_name_is_checked_and_requests_go_to_the_address_checked(
    tmp_path: Path, store: Store
) -> None:
    bucket = store.server.new_bucket()
    port = store.server.endpoint.rpartition(":")[2]
    # "objectstore" resolves nowhere but in this resolver: requests reach the server only
    # because they go to the address the guard checked.
    config = store.config(bucket, endpoint=f"http://objectstore:{port}")
    provider = _open(store.provider, config, _env(tmp_path, {"objectstore": ["127.0.0.1"]}))
    try:
        await provider.operations["write"]({"path": "pinned.txt", "content": b"pinned"})
        got = await provider.operations["read"]({"path": "pinned.txt"})
        assert got["content"] == b"pinned"
        assert await provider.check() == f"connected: bucket {bucket}"
    finally:
        await provider.aclose()

    rebound = _open(store.provider, config, _env(tmp_path, {"objectstore": ["169.254.169.254"]}))
    try:
        with pytest.raises(ComponentRefused, match="not open to components"):
            await rebound.operations["write"]({"path": "x.txt", "content": b"x"})
    finally:
        await rebound.aclose()
    assert store.objects(bucket) == {"pinned.txt": b"pinned"}


async def test_a_service_account_token_uri_is_checked_like_an_endpoint(
    tmp_path: Path, gcs: GcsServer
) -> None:
    credentials, _ = service_account_json("http://169.254.169.254/token")
    async with component_kit(tmp_path) as kit:
        await configure(kit, Store("gcs", gcs), credentialsJson=credentials)
        play, layers = await kit.run(
            [{"ref": "w", "appId": "storage-write", "args": {"path": "a.txt", "content": "x"}}]
        )
    assert play.state is PlayState.FAIL
    error = layers["w"].error or ""
    assert "COMPONENT_REFUSED" in error
    assert "token_uri" in error
    assert "169.254.169.254" in error


async def test_a_redirect_to_another_host_is_not_followed(tmp_path: Path) -> None:
    metadata = "http://169.254.169.254/computeMetadata/v1/"
    with redirecting_server(metadata) as (endpoint, asked):
        async with component_kit(tmp_path) as kit:
            await kit.component("storage", "gcs", {"bucket": "flow8-bucket", "endpoint": endpoint})
            play, layers = await kit.run(
                [{"ref": "r", "appId": "storage-read", "args": {"path": "a.txt"}}]
            )
    assert asked  # the endpoint was asked, and answered with a redirect
    assert play.state is PlayState.FAIL
    error = layers["r"].error or ""
    assert "COMPONENT_REFUSED" in error
    assert "169.254.169.254" in error
    assert "redirect" in error


# -- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_secret_appears_in_no_record_answer_log_or_file(
    tmp_path: Path,
    provider: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = Store(provider, request.getfixturevalue(provider))
    canary = f"canary-{uuid.uuid4().hex}"
    canaries = [canary]
    with token_server() as tokens:
        if provider == "s3":
            secret_field = "secretAccessKey"
            extra = {"secretAccessKey": canary}
        else:
            secret_field = "credentialsJson"
            credentials, pem = service_account_json(tokens.uri, key_id=canary)
            canaries.append(pem.splitlines()[5])  # a line of the private key itself
            extra = {"credentialsJson": credentials}
        async with component_kit(tmp_path) as kit:
            bucket = store.server.new_bucket()
            component = await kit.component(
                "storage", provider, store.config(bucket, **extra), name="vault"
            )
            play, layers = await kit.run(
                [
                    {"ref": "w", "appId": "s3-upload",
                     "args": {"key": "k/a.txt", "content": "payload"}},
                    {"ref": "r", "appId": "storage-read", "args": {"path": "k/a.txt"}},
                    {"ref": "l", "appId": "storage-list", "args": {"recursive": True}},
                    {"ref": "p", "appId": "s3-presign", "args": {"key": "k/a.txt"}},
                    {"ref": "x", "appId": "storage-read", "args": {"path": "k/missing.txt"}},
                ],
                record=True,
            )  # fmt: skip
            assert play.state is PlayState.FAIL  # the last step: no such file
            assert layers["p"].output["url"]
            assert layers["x"].calls
            assert layers["x"].calls[0]["error"]
            answers = [
                (await kit.components.get(COMPANY, component.id)).summary(),
                [c.summary() for c in await kit.components.list(COMPANY)],
                await kit.components.test(COMPANY, component.id),
                kit.components.providers(),
            ]
            fetched = await kit.components.get(COMPANY, component.id)
            assert fetched.secret_fields == (secret_field,)
            assert secret_field not in fetched.config
            seen = [
                repr(play),
                repr(layers),
                json.dumps([la.calls for la in layers.values()], default=str),
                json.dumps([e.to_json() for e in kit.events], default=str),
                json.dumps(answers, default=str),
                repr(fetched),
            ]
            raw_db = _files(tmp_path)
        raw_db += _files(tmp_path)
        logged = capsys.readouterr()
    texts = [*seen, logged.out, logged.err, caplog.text]
    for secret in canaries:
        assert all(secret not in text for text in texts)
        assert secret.encode() not in raw_db


def _files(tmp_path: Path) -> bytes:
    """The raw bytes of the store's database files."""
    out = b""
    for name in ("flow8.db", "flow8.db-wal"):
        file = tmp_path / name
        if file.exists():
            out += file.read_bytes()
    return out
