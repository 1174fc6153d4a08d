"""The MCP server (port ``MCP_PORT``, 4445): the official ``mcp`` SDK's Streamable HTTP
transport serving flow8's tools to AI agents, per caller (an API key with the ``mcp`` scope
or a JWT), as the ``mcp`` child of the supervision tree."""

from ._app import PATHS, McpApp, McpSettings
from ._auth import JWT_ALGORITHMS, MCP_SCOPE, Authenticator, AuthFailed
from ._child import CannotListen, mcp_child, serve_mcp
from ._tools import BUILT_INS, McpDeps, McpRoutes, Toolbox, play_result

__all__ = [
    "BUILT_INS",
    "JWT_ALGORITHMS",
    "MCP_SCOPE",
    "PATHS",
    "AuthFailed",
    "Authenticator",
    "CannotListen",
    "McpApp",
    "McpDeps",
    "McpRoutes",
    "McpSettings",
    "Toolbox",
    "mcp_child",
    "play_result",
    "serve_mcp",
]
