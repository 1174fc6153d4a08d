"""Use cases shared by the interfaces (HTTP, MCP, channels, CLI).

Each service is its own module (``flows``, ``plays``, ``kv``, ``credentials``, ``audit``,
``identity``, ...); import from them directly. Services take and return domain models;
camelCase mapping is the interface's job (``flow8.domain.api``).
"""
