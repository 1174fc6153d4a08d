"""Components: a company's named, swappable runtime capabilities (HTTP client, storage,
databases, email, console, AI models), and the one seam every module's call to them goes
through.

* ``_catalog``: the kinds, each provider's config schema and secret fields, how to open it
  (``KINDS``, ``ProviderSpec``, ``ProviderCatalog``, ``PROVIDERS``).
* ``_provider``: what a live provider is (``Provider``) and what the server lends it
  (``ProviderEnv``: the company's files directory, the network policy, worker threads).
* ``_seam``: ``ComponentHandle`` (what a step holds), ``CallRecorder``/``ComponentCall``
  (recorded calls, masked).
* Providers: ``_request`` (request/http on ``flow8.outbound``); ``_storage_local``,
  ``_storage_s3`` and ``_storage_gcs`` (``_object_store``: what the two object stores
  share); ``_sql`` (what every SQL provider shares) with ``_db_sqlite``, and
  ``_sql_server`` (host check, pool, password scrubbing) under ``_db_postgres`` and
  ``_db_mysql``; ``_email_smtp``; ``_console``; ``_ai`` (what every AI provider shares)
  with ``_ai_openai`` (OpenAI and the OpenAI-compatible APIs: Mistral, Ollama, any other)
  and ``_ai_anthropic``, priced by ``_ai_prices``. ``_paths``: the path rules of every
  storage.

Configs are stored and resolved by ``flow8.services.components``; the engine hands a step its
handles. This package knows no store and no engine (a layer of its own, under the modules).
"""

from ._catalog import KINDS, PROVIDERS, ProviderCatalog, ProviderSpec
from ._paths import clean_key
from ._provider import Operation, Provider, ProviderEnv
from ._seam import CallRecorder, ComponentCall, ComponentHandle, basic_token, plain
from .exceptions import (
    ComponentConfigError,
    ComponentError,
    ComponentFailed,
    ComponentRateLimited,
    ComponentRefused,
    ComponentUnavailable,
)

__all__ = [
    "KINDS",
    "PROVIDERS",
    "CallRecorder",
    "ComponentCall",
    "ComponentConfigError",
    "ComponentError",
    "ComponentFailed",
    "ComponentHandle",
    "ComponentRateLimited",
    "ComponentRefused",
    "ComponentUnavailable",
    "Operation",
    "Provider",
    "ProviderCatalog",
    "ProviderEnv",
    "ProviderSpec",
    "basic_token",
    "clean_key",
    "plain",
]
