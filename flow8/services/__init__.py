"""Use cases shared by the interfaces (HTTP, MCP, channels, CLI): the only thing they call.

Each service is its own module or package (``flows``, ``plays``, ``kv``, ``credentials``,
``audit``, ``identity``, ``events``, ``modules``, ``storage``, ``usage``, ...); import from
them directly.
A service owns its storage (``flows.FlowRepository``, ``kv.KvStore``, ...); the engine reads
flows and KV through the protocols it declares, filled by the composition root with these.
Errors the interfaces map are re-exported by the service raising them, and those of no one
service (the engine's base, the store's) by ``exceptions``. Services take and return domain
models; camelCase mapping is the interface's job (``flow8.domain.api``).
"""
