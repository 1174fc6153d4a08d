"""``email/smtp``: mail through an SMTP server (``smtplib`` in a worker thread).

Config: ``host``, ``port`` (by ``security``: 587 for ``starttls``, the default; 465 for
``tls``, implicit TLS; 25 for ``none``), ``username`` and ``password`` (a login when both are
given), ``from`` (the default sender) and ``caBundle`` (PEM certificates trusted *instead* of
the system's, for a relay with a private CA). Certificates are always verified: STARTTLS
that the server does not offer fails, it never falls back to plain text.

Operation ``send {from, to, cc, bcc, replyTo, subject, text, html, attachments}`` ->
``{messageId, accepted, refused}``. ``to``, ``cc``, ``bcc`` and ``replyTo`` are a string or a
list of strings, each one or more addresses (``"Ada <ada@example.com>, bob@example.com"``);
``attachments`` are ``{filename, content (bytes), mimeType}``. The message has a Message-ID
and a Date; ``bcc`` recipients get it (they are in the envelope) but are named in no header.
``refused`` maps the recipients the server refused to its reply when it accepted others
(when it refuses them all, the send fails). CR or LF in a header value (subject, address,
file name) is refused: it would let a flow's data add headers.

Each send (and :meth:`SmtpProvider.check`) resolves the host through the components' network
policy (``flow8.outbound.resolve_checked``: an internal address is refused unless an operator
opened it) and connects to the address it checked, never resolving again; TLS still checks
the certificate against the configured host name. One connection per send, each socket
operation bounded by :data:`TIMEOUT_SECONDS`.

Errors quote the server's reply (a refused login, a refused recipient), never the password.
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any, TypeVar

import attrs

from flow8.outbound import OutboundFailed, OutboundRefused, resolve_checked

from ._provider import Operation, ProviderEnv
from .exceptions import ComponentConfigError, ComponentFailed, ComponentRefused

TIMEOUT_SECONDS = 30.0
"""Each socket operation of an SMTP conversation (connect, a command, the data) at most."""
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
"""All of one message's attachments together (most servers refuse larger messages)."""
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*")
_MIME_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
_BREAKS = ("\r", "\n", "\x00")

T = TypeVar("T")


@attrs.frozen
class _Settings:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    sender: Address
    context: ssl.SSLContext | None


def open_smtp(config: Mapping[str, Any], env: ProviderEnv) -> SmtpProvider:
    security = config.get("security") or "starttls"
    if security not in DEFAULT_PORTS:
        raise ComponentConfigError("security must be starttls, tls or none")
    username, password = config.get("username"), config.get("password")
    if (username is None) != (password is None):
        raise ComponentConfigError("give both username and password (a login), or neither")
    if not all(v is None or (isinstance(v, str) and v.isascii()) for v in (username, password)):
        # SMTP AUTH (smtplib) carries ASCII only; the message says which field, not its value.
        raise ComponentConfigError("username and password must be ASCII text for an SMTP login")
    try:
        (sender,) = _addresses("from", config.get("from"), ComponentConfigError)
    except ValueError:
        raise ComponentConfigError("from must be one address") from None
    context: ssl.SSLContext | None = None
    if security != "none":
        context = _tls_context(config.get("caBundle"))
    return SmtpProvider(
        _Settings(
            host=str(config["host"]),
            port=int(config.get("port") or DEFAULT_PORTS[security]),
            security=security,
            username=username,
            password=password,
            sender=sender,
            context=context,
        ),
        env,
    )


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    if ca_bundle is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cadata=ca_bundle)
    except (ssl.SSLError, ValueError):
        raise ComponentConfigError("caBundle holds no PEM certificate that can be read") from None


class SmtpProvider:
    def __init__(self, settings: _Settings, env: ProviderEnv) -> None:
        self._settings = settings
        self._env = env
        self.operations: Mapping[str, Operation] = {"send": self._send}

    async def _send(self, input: Mapping[str, Any]) -> dict[str, Any]:
        s = self._settings
        message, sender, recipients = _message(input, s.sender)
        addresses = await self._addresses()

        def send() -> dict[str, tuple[int, bytes]]:
            client = self._connect(addresses)
            try:
                refused = client.send_message(message, sender, recipients)
                # Sent: a failing goodbye must not fail the step (a retry would send again).
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()
            finally:
                client.close()
            return refused

        refused = await self._run(send)
        return {
            "messageId": str(message["Message-ID"]),
            "accepted": [r for r in recipients if r not in refused],
            "refused": {r: _reply(*refused[r]) for r in recipients if r in refused},
        }

    async def check(self) -> str:
        s = self._settings
        addresses = await self._addresses()

        def check() -> None:
            client = self._connect(addresses)
            try:
                code, reply = client.noop()
                if code != 250:
                    raise smtplib.SMTPResponseException(code, reply)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()
            finally:
                client.close()

        await self._run(check)
        done = [s.security.upper()] if s.security != "none" else []
        if s.username is not None:
            done.append("login ok")
        return f"connected: {s.host}" + (f" ({', '.join(done)})" if done else "")

    async def aclose(self) -> None:
        """Nothing to release: each send has a connection of its own."""

    async def _addresses(self) -> list[str]:
        s, env = self._settings, self._env
        try:
            checked = await resolve_checked(s.host, s.port, env.network, env.resolver)
        except OutboundRefused as e:
            raise ComponentRefused(
                f"the SMTP host {s.host!r} is not open to components ({e.reason}); an "
                "operator can open it in components.allowedHosts"
            ) from None
        except OutboundFailed as e:
            raise ComponentFailed(f"the SMTP host {s.host!r}: {e.detail}") from None
        return [str(a) for a in checked]

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            result: T = await self._env.in_thread(fn)
        except (smtplib.SMTPException, OSError) as e:
            raise ComponentFailed(self._scrub(self._why(e))) from None
        return result

    def _connect(self, addresses: Sequence[str]) -> smtplib.SMTP:
        """A conversation with the server at one of the checked ``addresses`` (the first that
        answers), greeted, secured and logged in as configured. Runs in a worker thread."""
        s = self._settings
        last: OSError | None = None
        for address in addresses:
            client: smtplib.SMTP
            if s.security == "tls":
                client = _PinnedSMTPSSL(address, s.context)
            else:
                client = _PinnedSMTP(address)
            try:
                client.connect(s.host, s.port)
            except (smtplib.SMTPException, ssl.SSLError):
                client.close()
                raise
            except OSError as e:  # nothing listening there, unreachable: try the next
                client.close()
                last = e
                continue
            try:
                client.ehlo()
                if s.security == "starttls":
                    client.starttls(context=s.context)
                    client.ehlo()
                if s.username is not None and s.password is not None:
                    client.login(s.username, s.password)
            except BaseException:
                client.close()
                raise
            return client
        assert last is not None  # resolve_checked answers at least one address
        raise last

    def _why(self, error: smtplib.SMTPException | OSError) -> str:
        s = self._settings
        where = f"the SMTP server {s.host}:{s.port}"
        match error:
            case smtplib.SMTPAuthenticationError():
                return f"{where} refused the login of {s.username!r}: {_reply_of(error)}"
            case smtplib.SMTPRecipientsRefused():
                refused = "; ".join(f"{r} ({_reply(*v)})" for r, v in error.recipients.items())
                return f"{where} refused every recipient: {refused}"
            case smtplib.SMTPSenderRefused():
                return f"{where} refused the sender {error.sender!r}: {_reply_of(error)}"
            case smtplib.SMTPDataError():
                return f"{where} refused the message: {_reply_of(error)}"
            case smtplib.SMTPNotSupportedError():
                return f"{where} cannot do what this component needs: {error}"
            case smtplib.SMTPServerDisconnected():
                return f"{where} closed the connection: {error or 'without a reply'}"
            case smtplib.SMTPResponseException():
                return f"{where} answered {_reply_of(error)}"
            case smtplib.SMTPException():
                return f"{where}: {error}"
            case ssl.SSLCertVerificationError():
                return (
                    f"the TLS certificate of {where} is not trusted ({error.verify_message}); "
                    "caBundle names the certificates to trust for a private CA"
                )
            case ssl.SSLError():
                return f"TLS with {where} failed: {error.reason or error}"
            case ConnectionRefusedError():
                return f"nothing is listening at {where} (connection refused)"
            case TimeoutError():
                return f"{where} did not answer within {TIMEOUT_SECONDS:g} seconds"
            case _:
                return f"cannot reach {where}: {error.strerror or error}"

    def _scrub(self, text: str) -> str:
        """``text`` without the password in any form a server could echo back."""
        s = self._settings
        if not s.password:
            return text
        forms = [
            s.password,
            base64.b64encode(s.password.encode()).decode("ascii"),
            base64.b64encode(f"\0{s.username}\0{s.password}".encode()).decode("ascii"),
        ]
        for form in forms:
            text = text.replace(form, "***")
        return text


def _pinned_socket(client: smtplib.SMTP, address: str, port: int, timeout: float) -> socket.socket:
    """A connection to ``address``; the client greets with that connection's own address
    (an RFC 5321 address literal) rather than the server's host name, which smtplib would
    look up in DNS and which the mail server has no need to learn."""
    sock = socket.create_connection((address, port), timeout, client.source_address)
    local = str(sock.getsockname()[0])
    client.local_hostname = f"[IPv6:{local}]" if ":" in local else f"[{local}]"
    return sock


class _PinnedSMTP(smtplib.SMTP):
    """SMTP to a checked address, whatever ``host`` resolves to now (``host`` stays the
    name STARTTLS verifies the certificate against)."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__(local_hostname="localhost", timeout=TIMEOUT_SECONDS)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = host  # what starttls() checks the certificate against
        return _pinned_socket(self, self._address, port, timeout)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit TLS to a checked address, the certificate checked against ``host``."""

    def __init__(self, address: str, context: ssl.SSLContext | None) -> None:
        self._address = address
        super().__init__(local_hostname="localhost", timeout=TIMEOUT_SECONDS, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = _pinned_socket(self, self._address, port, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}"[:500]


def _reply_of(error: smtplib.SMTPResponseException) -> str:
    return _reply(error.smtp_code, error.smtp_error)


# -- the message ----------------------------------------------------------------------------


def _one_line(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ComponentRefused(f"{field} must be a string")
    if any(c in value for c in _BREAKS):
        raise ComponentRefused(
            f"{field} must be one line: CR, LF and NUL are refused (they would add mail headers)"
        )
    return value


def _addresses(
    field: str, value: Any, error: type[ComponentRefused | ComponentConfigError] = ComponentRefused
) -> list[Address]:
    """Every address of ``value`` (a string of one or more addresses, or a list of them),
    checked; raises ``error`` naming ``field``."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise error(f"{field} must be an address or a list of addresses")
    found: list[Address] = []
    for item in items:
        if any(c in item for c in _BREAKS):
            raise error(
                f"{field}: CR, LF and NUL are refused in an address (they would add mail headers)"
            )
        parsed = getaddresses([item])
        if not item.strip() or not parsed:
            raise error(f"{field}: {item[:100]!r} is not an email address")
        for name, spec in parsed:
            if not _ADDR_SPEC.fullmatch(spec) or spec not in item:
                shown = spec if spec and spec in item else item
                raise error(
                    f"{field}: {shown[:100]!r} is not an email address (name@domain, ASCII)"
                )
            try:
                found.append(Address(display_name=name, addr_spec=spec))
            except (ValueError, IndexError, HeaderParseError):
                raise error(f"{field}: {spec[:100]!r} is not an email address") from None
    return found


def _attachment(index: int, item: Any) -> tuple[bytes, str, str, str]:
    where = f"attachments[{index}]"
    if not isinstance(item, Mapping):
        raise ComponentRefused(f"{where} must be an object {{filename, content, mimeType}}")
    filename = _one_line(f"{where}.filename", item.get("filename"))
    if not filename.strip():
        raise ComponentRefused(f"{where}.filename must not be blank")
    content = item.get("content")
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise ComponentRefused(f"{where}.content must be bytes")
    mime = item.get("mimeType") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    mime = _one_line(f"{where}.mimeType", mime).split(";")[0].strip().lower()
    if not _MIME_TYPE.fullmatch(mime):
        raise ComponentRefused(f"{where}.mimeType {mime[:80]!r} is not a MIME type (type/subtype)")
    maintype, _, subtype = mime.partition("/")
    if maintype in ("multipart", "message"):
        maintype, subtype = "application", "octet-stream"
    return bytes(content), maintype, subtype, filename


def _message(
    input: Mapping[str, Any], default_sender: Address
) -> tuple[EmailMessage, str, list[str]]:
    """The message, its envelope sender and its recipients (to, cc and bcc, each once)."""
    if input.get("from"):
        senders = _addresses("from", input["from"])
        if len(senders) != 1:
            raise ComponentRefused("from must be one address")
        sender = senders[0]
    else:
        sender = default_sender
    to = _addresses("to", input.get("to") or [])
    cc = _addresses("cc", input.get("cc") or [])
    bcc = _addresses("bcc", input.get("bcc") or [])
    reply_to = _addresses("replyTo", input.get("replyTo") or [])
    if not (to or cc or bcc):
        raise ComponentRefused("to: give at least one recipient")
    subject = _one_line("subject", input.get("subject") or "")
    text, html = input.get("text"), input.get("html")
    for name, body in (("text", text), ("html", html)):
        if body is not None and not isinstance(body, str):
            raise ComponentRefused(f"{name} must be a string")
    attachments = input.get("attachments") or []
    if not isinstance(attachments, list | tuple):
        raise ComponentRefused("attachments must be a list")
    files = [_attachment(i, a) for i, a in enumerate(attachments)]
    if sum(len(f[0]) for f in files) > MAX_ATTACHMENT_BYTES:
        raise ComponentRefused(
            f"the attachments exceed {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB together"
        )

    message = EmailMessage()
    message["From"] = sender
    if to:
        message["To"] = to
    if cc:
        message["Cc"] = cc
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    if html is not None and text is None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(text or "")
        if html is not None:
            message.add_alternative(html, subtype="html")
    for content, maintype, subtype, filename in files:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    recipients: list[str] = []
    for address in (*to, *cc, *bcc):
        if address.addr_spec not in recipients:
            recipients.append(address.addr_spec)
    return message, sender.addr_spec, recipients
