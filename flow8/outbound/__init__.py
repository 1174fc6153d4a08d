"""The outbound guard: HTTP requests from flows that cannot reach what they must not.

Resolves a host once, refuses internal addresses (loopback, link-local and cloud metadata,
private, CGNAT, multicast, reserved, unspecified; IPv4 and IPv6, embeddings and numeric
spellings included) unless the policy allows them by name or CIDR, connects to the address
it checked, checks every redirect again, allows only http and https, and bounds the
response's size and time. A pure library: no store, no engine. See ``README.md`` here.

```python
async with OutboundClient(OutboundPolicy(allowed_hosts=["crm.corp.example"])) as client:
    response = await client.request("GET", "https://crm.corp.example/api/v1/contacts")
```
"""

from ._addresses import IPAddress, IPNetwork, embedded_ipv4, parse_ip_host, refusal_reason
from ._client import PRIVATE_HEADERS, OutboundClient, OutboundResponse
from ._policy import OutboundPolicy
from ._resolve import Resolver, SystemResolver, resolve_checked
from ._transport import ALLOWED_SCHEMES, GuardedTransport
from ._urls import redact_url
from .exceptions import OutboundError, OutboundFailed, OutboundLimitExceeded, OutboundRefused

__all__ = [
    "ALLOWED_SCHEMES",
    "PRIVATE_HEADERS",
    "GuardedTransport",
    "IPAddress",
    "IPNetwork",
    "OutboundClient",
    "OutboundError",
    "OutboundFailed",
    "OutboundLimitExceeded",
    "OutboundPolicy",
    "OutboundRefused",
    "OutboundResponse",
    "Resolver",
    "SystemResolver",
    "embedded_ipv4",
    "parse_ip_host",
    "redact_url",
    "refusal_reason",
    "resolve_checked",
]
