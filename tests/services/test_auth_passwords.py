"""argon2id hashing: OWASP parameters, verification, rehash detection, dummy burn."""

from __future__ import annotations

import trio

from flow8.services.identity import Argon2Params, Passwords


async def test_hash_is_argon2id_with_owasp_parameters() -> None:
    pw = Passwords()
    stored = await pw.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await pw.verify(stored, "correct horse battery")
    assert not await pw.verify(stored, "correct horse batterY")
    assert not await pw.verify("not a hash", "x")
    assert not pw.needs_rehash(stored)


async def test_parameter_change_is_detected_for_rehash() -> None:
    weak = Passwords(Argon2Params(memory_kib=8 * 1024, iterations=1))
    stored = await weak.hash("pw-0123456789")
    strong = Passwords()
    assert await strong.verify(stored, "pw-0123456789")  # old hashes still verify
    assert strong.needs_rehash(stored)
    assert strong.needs_rehash("garbage")


async def test_hashing_runs_off_the_event_loop() -> None:
    pw = Passwords()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await pw.hash("a password that takes a while")
        await pw.burn("another")
        nursery.cancel_scope.cancel()
    # The loop kept ticking while two 19 MiB hashes ran in threads.
    assert ticks >= 5
