"""send-mail through the email/smtp component, against a real SMTP server on loopback
(aiosmtpd, on asyncio in a thread of its own): what arrives, TLS with the certificate
checked, logins, what is refused before anything connects, and a password that appears
nowhere but on the wire."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from components_kit import COMPANY, Kit, component_kit
from support.local_http import MapResolver, self_signed

from flow8.domain import PlayState
from flow8.services.components import InvalidComponent
from flow8.services.flows import FlowValidationError

SENDER = "Acme Robot <robot@acme.example>"
HOST = "mail.test"  # resolved to 127.0.0.1 by the TLS tests' resolver; the certificate's name
USER = "robot"


@attrs.frozen
class Received:
    """One message the server accepted: its envelope, as parsed, and whether TLS carried it."""

    greeting: str  # the name the client gave in EHLO
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    tls: bool


@attrs.define
class Inbox:
    """The server's handler: keeps what it receives; refuses recipients named ``ghost@``;
    checks logins against ``password`` (user ``robot``)."""

    password: str = "right-password"
    received: list[Received] = attrs.Factory(list)
    logins: list[tuple[str, bool]] = attrs.Factory(list)  # (mechanism, accepted)
    passwords_seen: list[str] = attrs.Factory(list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("ghost@"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        tls = server.transport is not None and (
            server.transport.get_extra_info("ssl_object") is not None
        )
        self.received.append(
            Received(
                str(session.host_name),
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                raw,
                message,
                tls,
            )
        )
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = False
        if isinstance(data, LoginPassword):
            self.passwords_seen.append(data.password.decode())
            ok = data.login == USER.encode() and data.password == self.password.encode()
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)  # the server answers 235 or 535


class MailServer(Controller):
    """aiosmtpd on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self, inbox: Inbox, port: int, **kwargs: Any) -> None:
        super().__init__(inbox, hostname="127.0.0.1", port=port, **kwargs)
        self.inbox = inbox
        self.accepted = 0

    def factory(self) -> SMTP:
        self.accepted += 1  # once per connection
        return super().factory()  # type: ignore[no-any-return]

    def start(self) -> None:
        super().start()
        self.baseline = self.accepted  # start() connects once itself, to see it answer

    @property
    def connections(self) -> int:
        """Connections accepted since it started (the start's own excluded)."""
        return self.accepted - self.baseline


Serve = Callable[..., MailServer]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(**aiosmtpd options)``: a started server, stopped when the test ends."""
    started: list[MailServer] = []

    def _serve(inbox: Inbox | None = None, **kwargs: Any) -> MailServer:
        inbox = inbox or Inbox()
        if kwargs.get("auth_required"):
            kwargs.setdefault("authenticator", inbox.authenticate)
        server = MailServer(inbox, free_port(), **kwargs)
        server.start()
        started.append(server)
        return server

    yield _serve
    for server in started:
        server.stop()


@attrs.frozen
class Certificate:
    pem: str  # what the component's caBundle holds
    server: ssl.SSLContext  # what the SMTP server presents it with


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    directory = tmp_path / "tls"
    directory.mkdir()
    cert, key = self_signed(directory, [HOST])
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return Certificate(cert.read_text(), server)


def plain(server: MailServer, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": server.port, "security": "none", "from": SENDER, **extra}


def tls_kit(tmp_path: Path) -> Any:
    """A platform whose operator opened ``mail.test``, which resolves to 127.0.0.1."""
    return component_kit(
        tmp_path, allowed_hosts=(HOST,), resolver=MapResolver({HOST: ["127.0.0.1"]})
    )


async def send(kit: Kit, args: dict[str, Any], input: Any = None) -> tuple[Any, Any]:
    play, layers = await kit.run([{"ref": "m", "appId": "send-mail", "args": args}], input)
    return play, layers["m"]


def stored_bytes(tmp_path: Path) -> bytes:
    """Every byte of the store's files (database and WAL), as they lie on disk."""
    return b"".join(p.read_bytes() for p in tmp_path.glob("flow8.db*"))


async def test_a_mail_reaches_to_cc_and_bcc_with_text_html_and_attachments(
    tmp_path: Path, serve: Serve
) -> None:
    server = serve()
    binary = bytes(range(256)) * 64
    async with component_kit(tmp_path) as kit:
        await kit.component("email", "smtp", plain(server))
        await kit.component("storage", "local", {"rootPath": "files"})
        root = kit.files / COMPANY / "files"
        (root / "invoices").mkdir(parents=True, exist_ok=True)
        (root / "invoices" / "A-1.pdf").write_bytes(binary)
        (root / "report.csv").write_text("sku,qty\nA-1,2\n")
        play, layer = await send(
            kit,
            {
                "to": "{{ $prev.args.customer }}, Bob <bob@x.example>",
                "cc": ["Carol Čapek <carol@x.example>"],
                "bcc": ["audit@acme.example"],
                "replyTo": "sales@acme.example",
                "subject": "Your order {{ $prev.args.order }} ✓",
                "text": "Thank you!",
                "html": "<p>Thank <b>you</b>!</p>",
                "attachments": [
                    "invoices/A-1.pdf",
                    {"path": "report.csv", "filename": "order.csv"},
                ],
            },
            {"customer": "Ada <ada@x.example>", "order": "A-1"},
        )
        assert play.state is PlayState.DONE, play.error
    (mail,) = server.inbox.received
    everyone = ["ada@x.example", "bob@x.example", "carol@x.example", "audit@acme.example"]
    assert mail.mail_from == "robot@acme.example"
    assert mail.greeting == "[127.0.0.1]"  # its own address, not the server's host name
    assert mail.rcpt_tos == everyone
    assert layer.output["accepted"] == everyone
    message = mail.message
    assert message["Message-ID"] == layer.output["messageId"]
    assert layer.output["messageId"].endswith("@acme.example>")
    assert message["Date"]
    assert message["From"] == SENDER
    assert message["To"] == "Ada <ada@x.example>, Bob <bob@x.example>"
    assert message["Cc"] == "Carol Čapek <carol@x.example>"
    assert message["Reply-To"] == "sales@acme.example"
    assert message["Subject"] == "Your order A-1 ✓"
    # Bcc: in the envelope, named nowhere in the message.
    assert message["Bcc"] is None
    assert b"audit@acme.example" not in mail.raw
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Thank you!"
    assert html.get_content().strip() == "<p>Thank <b>you</b>!</p>"
    files = {
        part.get_filename(): (part.get_content_type(), part.get_content())
        for part in message.iter_attachments()
    }
    assert files == {
        "A-1.pdf": ("application/pdf", binary),
        "order.csv": ("text/csv", "sku,qty\nA-1,2\n"),
    }


async def test_a_refused_recipient_is_reported_and_every_one_refused_fails_the_step(
    tmp_path: Path, serve: Serve
) -> None:
    server = serve()
    async with component_kit(tmp_path) as kit:
        await kit.component("email", "smtp", plain(server))
        play, layer = await send(
            kit, {"to": ["ada@x.example", "ghost@x.example"], "subject": "hi", "text": "."}
        )
        assert play.state is PlayState.DONE, play.error
        assert layer.output["accepted"] == ["ada@x.example"]
        assert server.inbox.received[0].rcpt_tos == ["ada@x.example"]
        play, layer = await send(kit, {"to": "ghost@x.example", "subject": "hi", "text": "."})
    assert play.state is PlayState.FAIL
    assert layer.error.startswith("COMPONENT_FAILED: ")
    assert "refused every recipient: ghost@x.example (550 5.1.1 no such mailbox here)" in (
        layer.error
    )
    assert len(server.inbox.received) == 1


async def test_starttls_checks_the_certificate_against_the_configured_host_name(
    tmp_path: Path, serve: Serve, certificate: Certificate
) -> None:
    server = serve(tls_context=certificate.server, require_starttls=True)
    config = {"host": HOST, "port": server.port, "security": "starttls", "from": SENDER}
    async with tls_kit(tmp_path) as kit:
        await kit.component("email", "smtp", {**config, "caBundle": certificate.pem})
        await kit.component("email", "smtp", config, name="system-cas", default=False)
        play, _ = await send(kit, {"to": "ada@x.example", "subject": "hi", "text": "."})
        assert play.state is PlayState.DONE, play.error
        assert [m.tls for m in server.inbox.received] == [True]
        # The server's certificate is its own CA: without it in caBundle, it is not trusted.
        play, layers = await kit.run(
            [{"ref": "m", "appId": "send-mail", "componentConfigIds": {"email": "system-cas"},
              "args": {"to": "ada@x.example", "subject": "hi", "text": "."}}]
        )  # fmt: skip
        assert play.state is PlayState.FAIL
        error = layers["m"].error or ""
        assert error.startswith("COMPONENT_FAILED: the TLS certificate of the SMTP server ")
        assert "is not trusted" in error
    assert len(server.inbox.received) == 1


async def test_starttls_the_server_does_not_offer_fails_rather_than_sending_in_clear(
    tmp_path: Path, serve: Serve
) -> None:
    server = serve()  # plain only
    async with component_kit(tmp_path) as kit:
        await kit.component("email", "smtp", plain(server, security="starttls"))
        play, layer = await send(kit, {"to": "ada@x.example", "subject": "hi", "text": "."})
    assert play.state is PlayState.FAIL
    assert "STARTTLS extension not supported" in (layer.error or "")
    assert server.inbox.received == []


async def test_implicit_tls_sends_with_the_certificate_checked(
    tmp_path: Path, serve: Serve, certificate: Certificate
) -> None:
    server = serve(ssl_context=certificate.server)
    config = {"host": HOST, "port": server.port, "security": "tls", "from": SENDER}
    async with tls_kit(tmp_path) as kit:
        await kit.component("email", "smtp", {**config, "caBundle": certificate.pem})
        play, _ = await send(kit, {"to": "ada@x.example", "subject": "hi", "text": "."})
        assert play.state is PlayState.DONE, play.error
        assert [m.tls for m in server.inbox.received] == [True]
        await kit.component("email", "smtp", config, name="system-cas", default=False)
        play, layers = await kit.run(
            [{"ref": "m", "appId": "send-mail", "componentConfigIds": {"email": "system-cas"},
              "args": {"to": "ada@x.example", "subject": "hi", "text": "."}}]
        )  # fmt: skip
        assert play.state is PlayState.FAIL
        assert "is not trusted" in (layers["m"].error or "")
    assert len(server.inbox.received) == 1


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
async def test_a_login_with_the_right_password_sends_and_a_wrong_one_fails_clearly(
    tmp_path: Path, serve: Serve, certificate: Certificate, mechanism: str
) -> None:
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    server = serve(
        tls_context=certificate.server,
        require_starttls=True,
        auth_required=True,
        auth_exclude_mechanism=[other],
    )
    config = {
        "host": HOST,
        "port": server.port,
        "security": "starttls",
        "from": SENDER,
        "caBundle": certificate.pem,
        "username": USER,
    }
    async with tls_kit(tmp_path) as kit:
        await kit.component("email", "smtp", {**config, "password": "right-password"})
        await kit.component(
            "email", "smtp", {**config, "password": "wrong-password"}, name="wrong", default=False
        )
        play, _ = await send(kit, {"to": "ada@x.example", "subject": "hi", "text": "."})
        assert play.state is PlayState.DONE, play.error
        play, layers = await kit.run(
            [{"ref": "m", "appId": "send-mail", "componentConfigIds": {"email": "wrong"},
              "args": {"to": "ada@x.example", "subject": "hi", "text": "."}}]
        )  # fmt: skip
        assert play.state is PlayState.FAIL
        error = layers["m"].error or ""
        assert error.startswith(
            f"COMPONENT_FAILED: the SMTP server {HOST}:{server.port} refused the login of "
            f"'{USER}': 535 "
        )
        assert "wrong-password" not in error
    assert server.inbox.logins == [(mechanism, True), (mechanism, False)]
    assert len(server.inbox.received) == 1


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"subject": "Hi\r\nBcc: victim@x.example"}, "subject"),
        ({"subject": "Hi\nX-Evil: 1"}, "subject"),
        ({"to": "ada@x.example\r\nBcc: victim@x.example"}, "to"),
        ({"cc": ["ok@x.example", "Eve <eve@x.example>\nBcc: victim@x.example"]}, "cc"),
        ({"replyTo": "a@x.example\rX-Evil: 1"}, "replyTo"),
        ({"from": "robot@acme.example\nBcc: victim@x.example"}, "from"),
        (
            {"attachments": [{"path": "a.txt", "filename": "a.txt\r\nX-Evil: 1"}]},
            "attachments[0].filename",
        ),
    ],
)
async def test_a_line_break_in_a_header_value_is_refused_before_connecting(
    tmp_path: Path, serve: Serve, args: dict[str, Any], field: str
) -> None:
    server = serve()
    async with component_kit(tmp_path) as kit:
        await kit.component("email", "smtp", plain(server))
        await kit.component("storage", "local", {"rootPath": "files"})
        (kit.files / COMPANY / "files").mkdir(parents=True, exist_ok=True)
        (kit.files / COMPANY / "files" / "a.txt").write_text("a")
        play, layer = await send(kit, {"to": "ada@x.example", "subject": "hi", **args})
    assert play.state is PlayState.FAIL
    error = layer.error or ""
    assert error.startswith(f"COMPONENT_REFUSED: {field}"), error
    assert "CR, LF and NUL are refused" in error
    assert server.connections == 0
    assert server.inbox.received == []


@pytest.mark.parametrize(
    ("args", "field", "shown"),
    [
        ({"to": "not-an-address"}, "to", "not-an-address"),
        ({"to": ["ada@x.example", "bob@"]}, "to", "bob@"),
        ({"cc": "ada@x.example, nobody"}, "cc", "nobody"),
        ({"bcc": ["a b@x.example"]}, "bcc", "a b@x.example"),
        ({"replyTo": "sales@"}, "replyTo", "sales@"),
        ({"from": "robot"}, "from", "robot"),
        ({"to": "ada@exämple.com"}, "to", "ada@exämple.com"),
    ],
)
async def test_a_bad_address_is_refused_naming_its_field(
    tmp_path: Path, serve: Serve, args: dict[str, Any], field: str, shown: str
) -> None:
    server = serve()
    async with component_kit(tmp_path) as kit:
        await kit.component("email", "smtp", plain(server))
        play, layer = await send(kit, {"to": "ada@x.example", "subject": "hi", **args})
    assert play.state is PlayState.FAIL
    error = layer.error or ""
    assert error.startswith(f"COMPONENT_REFUSED: {field}: "), error
    assert "is not an email address" in error
    assert shown in error
    assert server.connections == 0


async def test_a_component_with_a_bad_sender_is_refused_when_saved(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        for sender in ("robot", "a@x.example, b@x.example", "robot@acme.example\nBcc: x@y.z"):
            config = {"host": "127.0.0.1", "security": "none", "from": sender}
            with pytest.raises(InvalidComponent) as refused:
                await kit.component("email", "smtp", config)
            assert "from" in str(refused.value), sender
        with pytest.raises(InvalidComponent) as refused:
            await kit.component(
                "email", "smtp", {"host": "127.0.0.1", "from": SENDER, "caBundle": "not PEM"}
            )
        assert "caBundle" in str(refused.value)
        with pytest.raises(InvalidComponent) as refused:
            await kit.component(
                "email", "smtp", {"host": "127.0.0.1", "from": SENDER, "username": USER}
            )
        assert "both username and password" in str(refused.value)
        with pytest.raises(InvalidComponent) as refused:
            await kit.component(
                "email",
                "smtp",
                {"host": "127.0.0.1", "from": SENDER, "username": USER, "password": "pässwörd"},
            )
        assert "must be ASCII" in str(refused.value)
        assert "pässwörd" not in str(refused.value)


async def test_nothing_listening_fails_the_step_and_the_check_clearly(tmp_path: Path) -> None:
    port = free_port()
    async with component_kit(tmp_path) as kit:
        made = await kit.component(
            "email", "smtp", {"host": "127.0.0.1", "port": port, "security": "none", "from": SENDER}
        )
        play, layer = await send(kit, {"to": "ada@x.example", "subject": "hi", "text": "."})
        assert play.state is PlayState.FAIL
        expected = (
            f"COMPONENT_FAILED: nothing is listening at the SMTP server 127.0.0.1:{port} "
            "(connection refused)"
        )
        assert layer.error == expected
        checked = await kit.components.test(COMPANY, made.id)
        assert (checked["ok"], checked["message"]) == (False, expected)


async def test_a_host_the_operator_did_not_open_is_refused_without_connecting(
    tmp_path: Path, serve: Serve
) -> None:
    server = serve()
    async with component_kit(tmp_path, allowed_hosts=()) as kit:
        made = await kit.component("email", "smtp", plain(server))
        play, layer = await send(kit, {"to": "ada@x.example", "subject": "hi", "text": "."})
        assert play.state is PlayState.FAIL
        error = layer.error or ""
        assert error.startswith("COMPONENT_REFUSED: the SMTP host '127.0.0.1' is not open to ")
        assert "components.allowedHosts" in error
        checked = await kit.components.test(COMPANY, made.id)
        assert checked["ok"] is False
        assert "is not open to components" in checked["message"]
    assert server.connections == 0


async def test_the_connectivity_check_connects_logs_in_and_sends_nothing(
    tmp_path: Path, serve: Serve, certificate: Certificate
) -> None:
    open_relay = serve()
    secured = serve(tls_context=certificate.server, require_starttls=True, auth_required=True)
    config = {"host": HOST, "port": secured.port, "security": "starttls", "from": SENDER}
    login = {**config, "caBundle": certificate.pem, "username": USER}
    async with tls_kit(tmp_path) as kit:
        relay = await kit.component("email", "smtp", {**plain(open_relay), "host": HOST})
        good = await kit.component(
            "email", "smtp", {**login, "password": "right-password"}, name="good", default=False
        )
        bad = await kit.component(
            "email", "smtp", {**login, "password": "wrong-password"}, name="bad", default=False
        )
        untrusted = await kit.component("email", "smtp", config, name="untrusted", default=False)
        answers = {
            c.name: await kit.components.test(COMPANY, c.id) for c in (relay, good, bad, untrusted)
        }
    assert answers["email-smtp"]["ok"] is True
    assert answers["email-smtp"]["message"] == f"connected: {HOST}"
    assert answers["good"]["ok"] is True
    assert answers["good"]["message"] == f"connected: {HOST} (STARTTLS, login ok)"
    assert answers["bad"]["ok"] is False
    assert f"refused the login of '{USER}': 535 " in answers["bad"]["message"]
    assert answers["untrusted"]["ok"] is False
    assert "is not trusted" in answers["untrusted"]["message"]
    assert (open_relay.connections, secured.connections) == (1, 3)
    assert open_relay.inbox.received == secured.inbox.received == []


async def test_send_mail_needs_an_email_component_and_attachments_a_storage_one(
    tmp_path: Path, serve: Serve
) -> None:
    server = serve()
    async with component_kit(tmp_path) as kit:
        with pytest.raises(FlowValidationError) as refused:
            await send(kit, {"to": "ada@x.example", "subject": "hi"})
        assert "step 'm' (send-mail) needs a email component" in str(refused.value)
        await kit.component("email", "smtp", plain(server))
        play, _ = await send(kit, {"to": "ada@x.example", "subject": "hi"})
        assert play.state is PlayState.DONE, play.error  # no storage needed without attachments
        play, layer = await send(
            kit, {"to": "ada@x.example", "subject": "hi", "attachments": ["a.pdf"]}
        )
    assert play.state is PlayState.FAIL
    assert "has no default storage component" in (layer.error or "")
    assert len(server.inbox.received) == 1


async def test_the_smtp_password_is_used_on_the_wire_and_appears_nowhere_else(
    tmp_path: Path,
    serve: Serve,
    certificate: Certificate,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "canary-5b1f0e7a-smtp-2c9d-44e1-a6f3"
    inbox = Inbox(password=canary)
    server = serve(inbox, tls_context=certificate.server, auth_required=True)
    config = {
        "host": HOST,
        "port": server.port,
        "security": "starttls",
        "from": SENDER,
        "caBundle": certificate.pem,
        "username": USER,
    }
    async with tls_kit(tmp_path) as kit:
        good = await kit.component("email", "smtp", {**config, "password": canary})
        bad = await kit.component(
            "email",
            "smtp",
            {**config, "password": canary + "-but-wrong"},
            name="bad",
            default=False,
        )
        await kit.component("storage", "local", {"rootPath": "files"})
        (kit.files / COMPANY / "files").mkdir(parents=True, exist_ok=True)
        (kit.files / COMPANY / "files" / "a.txt").write_text("attached")
        mail = {"to": "ada@x.example", "subject": "hi", "text": ".", "attachments": ["a.txt"]}
        sent, sent_layers = await kit.run(
            [{"ref": "m", "appId": "send-mail", "args": mail}], record=True
        )
        refused, refused_layers = await kit.run(
            [{"ref": "m", "appId": "send-mail", "componentConfigIds": {"email": "bad"},
              "args": mail}],
            record=True,
        )  # fmt: skip
        assert sent.state is PlayState.DONE, sent.error
        assert refused.state is PlayState.FAIL
        assert "535" in (refused_layers["m"].error or "")
        # The calls were recorded (the send's input, its answer, its error).
        for layers in (sent_layers, refused_layers):
            assert [c["operation"] for c in layers["m"].calls or ()] == ["read", "send"]
        listed = await kit.components.list(COMPANY)
        assert {c.name: c.secret_fields for c in listed if c.kind == "email"} == {
            good.name: ("password",),
            bad.name: ("password",),
        }
        assert all("password" not in c.config for c in listed)
        answers = [
            listed,
            await kit.components.get(COMPANY, good.id),
            await kit.components.test(COMPANY, good.id),
            await kit.components.test(COMPANY, bad.id),
            kit.components.providers(),
        ]
        plays = [await kit.engine.get_play(COMPANY, p.id) for p in (sent, refused)]
        everything = json.dumps(
            {
                "layers": [repr(la) for la in (*sent_layers.values(), *refused_layers.values())],
                "calls": [la.calls for la in (*sent_layers.values(), *refused_layers.values())],
                "plays": [repr(p) for p in (sent, refused, *plays)],
                "events": [repr(e) for e in kit.events],
                "answers": repr(answers),
            },
            default=str,
        )
        assert canary not in everything
        assert canary.encode() not in stored_bytes(tmp_path)
    # It was on the wire: the server saw it, and accepted it once (the good component's send
    # and its check).
    assert canary in inbox.passwords_seen
    assert inbox.logins.count(("PLAIN", True)) + inbox.logins.count(("LOGIN", True)) == 2
    out, err = capsys.readouterr()
    assert canary not in out + err
    assert canary not in caplog.text
    assert canary.encode() not in stored_bytes(tmp_path)
