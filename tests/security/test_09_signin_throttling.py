"""Attack 9: locking people out by signing in wrongly on their behalf.

Five wrong passwords locked a named account for 15 minutes, even against the right password
from the account's owner: anyone who knew an email could keep its user out for good by
sending five bad guesses every quarter of an hour. Fifty failures from one address locked out
everybody behind it (an office, a proxy), whoever had failed.

Now failures count per (account, source) pair: after five, the guessing source waits 1 s,
then 2, 4, ... up to 15 minutes between attempts, while the same account signs in from any
other source as usual. A source that fails against many accounts stops at a ceiling (100
failures in 15 minutes) that only it hits. Refusals are `429` with `Retry-After`, the same for
unknown accounts as for known ones.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
from attack_kit import Target

USER = "alice@victim.example"
USER_PASSWORD = "alices-own-password-1"
ATTACKER = "127.0.0.2"
USER_SOURCE = "127.0.0.3"


def _client(target: Target, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=target.base, timeout=30, transport=transport)


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def _victim_member(target: Target) -> str:
    """Alice joins the victim company (invited by its key, accepting from her own address)."""
    r = target.victim.client.post(
        f"/api/companies/{target.victim.company_id}/members",
        json={"email": USER, "role": "operator"},
    )
    assert r.status_code == 201, r.text
    with _client(target, USER_SOURCE) as alice:
        r = alice.post(
            "/api/invitations/accept", json={"token": r.json()["token"], "password": USER_PASSWORD}
        )
        assert r.status_code == 200, r.text
        user_id: str = r.json()["user"]["id"]
        return user_id


def test_guessing_a_password_slows_the_guesser_and_never_locks_out_the_user(
    target: Target,
) -> None:
    _victim_member(target)
    stop = threading.Event()
    user_answers: list[int] = []

    def user_keeps_signing_in() -> None:
        with _client(target, USER_SOURCE) as alice:
            while not stop.is_set():
                user_answers.append(_login(alice, USER, USER_PASSWORD).status_code)
                time.sleep(0.2)

    waits: list[int] = []
    with (
        target.bystander(),
        _client(target, ATTACKER) as attacker,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        user = pool.submit(user_keeps_signing_in)
        for i in range(5):
            r = _login(attacker, USER, f"guess-number-{i}")
            assert r.status_code == 401, r.text
        for _ in range(3):
            r = _login(attacker, USER, "guess-while-waiting")
            assert r.status_code == 429, r.text
            assert r.json()["error"] == "RATE_LIMITED"
            waits.append(int(r.headers["retry-after"]))
            # Even the right password waits: the source is slowed, whatever it sends.
            assert _login(attacker, USER, USER_PASSWORD).status_code == 429
            time.sleep(waits[-1] + 0.05)
            assert _login(attacker, USER, "guess-after-waiting").status_code == 401
        stop.set()
        user.result()
    assert waits == [1, 2, 4]
    # The user was served every time, during all of it, from their own address.
    assert len(user_answers) >= 5
    assert set(user_answers) == {200}
    # And afterwards: their account still opens with their own password and its company.
    with _client(target, USER_SOURCE) as alice:
        r = _login(alice, USER, USER_PASSWORD)
        assert r.status_code == 200
        assert (r.json()["companyId"], r.json()["role"]) == (target.victim.company_id, "operator")
    # The guesser is still made to wait, without any guess having got through.
    with _client(target, ATTACKER) as attacker:
        r = _login(attacker, USER, USER_PASSWORD)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 7


def test_an_unknown_email_is_slowed_exactly_like_a_known_one(target: Target) -> None:
    _victim_member(target)
    answers: dict[str, list[tuple[int, object]]] = {}
    with target.bystander(), _client(target, ATTACKER) as attacker:
        for email in (USER, "ghost@victim.example"):
            answers[email] = []
            for i in range(6):
                r = _login(attacker, email, f"guess-number-{i}")
                answers[email].append((r.status_code, r.json()))
    known, unknown = answers.values()
    assert [s for s, _ in known] == [401] * 5 + [429]
    assert known == unknown


def test_a_source_spraying_many_accounts_stops_at_its_ceiling(target: Target) -> None:
    """100 failures from one source in 15 minutes, each against a different account (so no
    pair is ever delayed): the 101st attempt from that source is refused, for any account;
    every other source, and every account, is served."""
    _victim_member(target)
    with target.bystander(), _client(target, ATTACKER) as attacker:

        def spray(i: int) -> int:
            return _login(attacker, f"user{i}@victim.example", "password123").status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(spray, range(100)))
        assert statuses == [401] * 100
        r = _login(attacker, "user100@victim.example", "password123")
        assert r.status_code == 429, r.text
        assert 800 <= int(r.headers["retry-after"]) <= 900
        assert _login(attacker, USER, USER_PASSWORD).status_code == 429
        with _client(target, USER_SOURCE) as alice:
            assert _login(alice, USER, USER_PASSWORD).status_code == 200
    # Sources are kept apart: signing in from yet another address works as before.
    with _client(target, "127.0.0.4") as elsewhere:
        assert _login(elsewhere, USER, USER_PASSWORD).status_code == 200
