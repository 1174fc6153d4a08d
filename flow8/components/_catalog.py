"""Kinds and providers: what a company can configure, each provider's config schema, which
of its fields are secrets, and how to open it.

One table drives the API's validation (``GET /api/components/providers`` publishes the same
schemas), the masking of secret fields and the opening of providers, so a config the schema
accepts is one the provider can be opened with.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import trio

from flow8.interpreter import settle_after_import

from ._provider import Provider, ProviderEnv
from .exceptions import ComponentUnavailable

Opener = Callable[[Mapping[str, Any], ProviderEnv], Provider]

KINDS: Mapping[str, str] = {
    "request": "HTTP requests through the outbound guard (operation: send).",
    "storage": "Files (operations: read, write, move, copy, delete, exists, list, presign).",
    "db": "SQL databases (operations: query, insert, update, upsert, delete).",
    "email": "Sending mail (operation: send).",
    "console": "Per-play log lines (operation: log).",
    "ai": "AI models (operations: chat, embeddings; anthropic: chat only).",
}
"""Every component kind, with the operations each of its providers answers."""


@attrs.frozen
class ProviderSpec:
    """A provider of a kind.

    ``opener`` is ``"module:function"`` inside ``flow8.components``, imported only when a
    config of this provider is opened, so an optional library (boto3, psycopg) missing from
    the install costs nothing until someone uses it; ``extra`` names the pip extra that
    installs it. ``builtin_default``: the provider with an empty config is what a step gets
    when its company configured nothing of the kind (the guarded HTTP client, the console).
    """

    kind: str
    provider: str
    description: str
    config_schema: Mapping[str, Any]
    opener: str
    secret_fields: tuple[str, ...] = ()
    extra: str | None = None
    builtin_default: bool = False

    @property
    def module(self) -> str:
        """The module of ``flow8.components`` that holds the opener."""
        return "flow8.components." + self.opener.partition(":")[0]

    async def load(self) -> None:
        """Import the opener's module (and the library it wraps) in a worker thread, the
        first time: anthropic's SDK takes a second or two to import, which on the event loop
        would stall every tenant's requests and plays; then settle what it brought out of
        the collector's sight (``flow8.interpreter``). A missing library is left to
        :meth:`open`, which names it."""
        if self.module in sys.modules:
            return
        try:
            await trio.to_thread.run_sync(importlib.import_module, self.module)
        except ImportError:
            return
        settle_after_import()

    def open(self, config: Mapping[str, Any], env: ProviderEnv) -> Provider:
        """The provider for ``config`` (its module imported here if :meth:`load` was not
        awaited first)."""
        function = self.opener.partition(":")[2]
        try:
            module = importlib.import_module(self.module)
        except ImportError as e:
            raise ComponentUnavailable(
                f"the {self.kind}/{self.provider} provider needs a library that is not "
                f"installed ({e.name}): install flow8 with the '{self.extra}' extra"
                if self.extra
                else f"the {self.kind}/{self.provider} provider cannot be loaded: {e}"
            ) from None
        opener: Opener = getattr(module, function)
        return opener(config, env)

    def describe(self) -> dict[str, Any]:
        """The API's entry (``GET /api/components/providers``)."""
        return {
            "kind": self.kind,
            "provider": self.provider,
            "description": self.description,
            "configSchema": self.config_schema,
            "secretFields": list(self.secret_fields),
            "extra": self.extra,
            "builtinDefault": self.builtin_default,
        }


def _object(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


_TEXT = {"type": "string", "minLength": 1, "maxLength": 1024}
_SECRET = {"type": "string", "minLength": 1, "maxLength": 16384}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_HOSTS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 253}}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}

_SQL_SERVER = _object(
    {
        "host": _TEXT,
        "port": _PORT,
        "database": _TEXT,
        "user": _TEXT,
        "password": _SECRET,
        "sslMode": {"enum": ["disable", "prefer", "require", "verify-ca", "verify-full"]},
        "readOnly": {"type": "boolean"},
        "statementTimeoutMs": {"type": "integer", "minimum": 1, "maximum": 3_600_000},
        "maxRows": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    },
    ("host", "database", "user"),
)

_PRICE = {"type": "number", "minimum": 0, "maximum": 1_000_000}
_PRICES = {"inputPerMillion": _PRICE, "outputPerMillion": _PRICE}


def _ai(key_required: bool, base_url_required: bool = False) -> dict[str, Any]:
    """The config of an ai provider (``_ai.settings_of`` reads it)."""
    required = ("model",) + (("apiKey",) if key_required else ())
    return _object(
        {
            "model": {**_TEXT, "description": "the model a step uses unless it names one"},
            "embeddingModel": {
                **_TEXT,
                "description": "the model of embeddings steps (default: the provider's own)",
            },
            "apiKey": _SECRET,
            "baseUrl": {**_TEXT, "description": "the API's URL, checked like every host"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 0.7},
            "maxTokens": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 2048},
            "timeoutSeconds": {**_POSITIVE, "maximum": 3600, "default": 30},
            "maxRetries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 2},
            "topP": {"type": "number", "minimum": 0, "maximum": 1},
            "prices": {
                "description": "model -> price per million tokens, in the company's currency "
                "(before the built-in public prices): {model: {inputPerMillion, "
                "outputPerMillion}}, or a list of {model, inputPerMillion, outputPerMillion} "
                "for model names with a dot (the store takes no dot in a field name)",
                "anyOf": [
                    {
                        "type": "object",
                        "propertyNames": {"pattern": r"^[^.$][^.]*$"},
                        "additionalProperties": _object(_PRICES, tuple(_PRICES)),
                        "maxProperties": 200,
                    },
                    {
                        "type": "array",
                        "items": _object({"model": _TEXT, **_PRICES}, ("model", *_PRICES)),
                        "maxItems": 200,
                    },
                ],
            },
        },
        required + (("baseUrl",) if base_url_required else ()),
    )


PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "request",
        "http",
        "HTTP(S) client with the outbound guard: internal addresses are refused unless "
        "allowed here by host name or CIDR.",
        _object(
            {
                "allowedHosts": _HOSTS,
                "allowedCidrs": {"type": "array", "items": _TEXT},
                "timeoutSeconds": {**_POSITIVE, "maximum": 3600},
                "maxResponseBytes": {"type": "integer", "minimum": 1, "maximum": 1 << 30},
                "verifyTls": {"type": "boolean"},
                "caBundle": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 262144,
                    "description": "PEM text of the certificates to trust (not a file name)",
                },
                "proxy": _TEXT,
            }
        ),
        "_request:open_http",
        secret_fields=("proxy",),  # a proxy URL may carry its password
        builtin_default=True,
    ),
    ProviderSpec(
        "storage",
        "local",
        "A directory on the server: relative roots live in the company's own files "
        "directory; absolute ones must be under a root the operator opened.",
        _object({"rootPath": _TEXT}, ("rootPath",)),
        "_storage_local:open_local",
    ),
    ProviderSpec(
        "storage",
        "s3",
        "An S3 bucket (AWS, or MinIO, R2 and the like through `endpoint`).",
        _object(
            {
                "bucket": _TEXT,
                "region": _TEXT,
                "endpoint": _TEXT,
                "accessKeyId": _TEXT,
                "secretAccessKey": _SECRET,
            },
            ("bucket",),
        ),
        "_storage_s3:open_s3",
        secret_fields=("secretAccessKey",),
        extra="s3",
    ),
    ProviderSpec(
        "storage",
        "gcs",
        "A Google Cloud Storage bucket (`endpoint` for an emulator).",
        _object(
            {
                "bucket": _TEXT,
                "projectId": _TEXT,
                "endpoint": _TEXT,
                "credentialsJson": {"type": "string", "minLength": 2, "maxLength": 65536},
            },
            ("bucket",),
        ),
        "_storage_gcs:open_gcs",
        secret_fields=("credentialsJson",),
        extra="gcs",
    ),
    ProviderSpec(
        "db",
        "postgres",
        "PostgreSQL (psycopg 3).",
        _SQL_SERVER,
        "_db_postgres:open_postgres",
        secret_fields=("password",),
        extra="postgres",
    ),
    ProviderSpec(
        "db",
        "mysql",
        "MySQL or MariaDB (PyMySQL).",
        _SQL_SERVER,
        "_db_mysql:open_mysql",
        secret_fields=("password",),
        extra="mysql",
    ),
    ProviderSpec(
        "db",
        "sqlite",
        "A SQLite file: a relative path lives in the company's own files directory.",
        _object({"path": _TEXT, "readOnly": {"type": "boolean"}}, ("path",)),
        "_db_sqlite:open_sqlite",
    ),
    ProviderSpec(
        "email",
        "smtp",
        "An SMTP server (STARTTLS, implicit TLS or plain; optional login).",
        _object(
            {
                "host": _TEXT,
                "port": _PORT,
                "security": {"enum": ["starttls", "tls", "none"]},
                "username": _TEXT,
                "password": _SECRET,
                "from": _TEXT,
                # PEM certificates trusted instead of the system's (a relay's private CA).
                "caBundle": {"type": "string", "minLength": 1, "maxLength": 262144},
            },
            ("host", "from"),
        ),
        "_email_smtp:open_smtp",
        secret_fields=("password",),
    ),
    ProviderSpec(
        "ai",
        "openai",
        "OpenAI's API (chat completions, embeddings), with the official openai SDK.",
        _ai(key_required=True),
        "_ai_openai:open_openai",
        secret_fields=("apiKey",),
        extra="ai",
    ),
    ProviderSpec(
        "ai",
        "anthropic",
        "Anthropic's Messages API (chat only), with the official anthropic SDK.",
        _ai(key_required=True),
        "_ai_anthropic:open_anthropic",
        secret_fields=("apiKey",),
        extra="ai",
    ),
    ProviderSpec(
        "ai",
        "mistral",
        "Mistral's API (OpenAI's protocol, through the openai SDK).",
        _ai(key_required=True),
        "_ai_openai:open_mistral",
        secret_fields=("apiKey",),
        extra="ai",
    ),
    ProviderSpec(
        "ai",
        "ollama",
        "An Ollama server's OpenAI-compatible API (default http://localhost:11434/v1, "
        "which an operator must open to components).",
        _ai(key_required=False),
        "_ai_openai:open_ollama",
        secret_fields=("apiKey",),
        extra="ai",
    ),
    ProviderSpec(
        "ai",
        "openai-compatible",
        "Any server speaking OpenAI's chat completions protocol at `baseUrl` (vLLM, "
        "LiteLLM, LM Studio, a cloud's gateway).",
        _ai(key_required=False, base_url_required=True),
        "_ai_openai:open_compatible",
        secret_fields=("apiKey",),
        extra="ai",
    ),
    ProviderSpec(
        "console",
        "console",
        "Log lines on the play: streamed as events and kept with the step.",
        _object({}),
        "_console:open_console",
        builtin_default=True,
    ),
)


@attrs.frozen
class ProviderCatalog:
    """(kind, provider) -> :class:`ProviderSpec`."""

    specs: Mapping[tuple[str, str], ProviderSpec]

    @classmethod
    def of(cls, specs: tuple[ProviderSpec, ...] = PROVIDERS) -> ProviderCatalog:
        return cls({(s.kind, s.provider): s for s in specs})

    def find(self, kind: str, provider: str) -> ProviderSpec | None:
        return self.specs.get((kind, provider))

    def providers(self, kind: str) -> list[str]:
        return sorted(p for k, p in self.specs if k == kind)

    def builtin_default(self, kind: str) -> ProviderSpec | None:
        return next((s for s in self if s.kind == kind and s.builtin_default), None)

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(sorted(self.specs.values(), key=lambda s: (s.kind, s.provider)))
