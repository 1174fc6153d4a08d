"""A bystander, run as its own process while a security test attacks a `flow8 serve`.

It stands for everybody else using the server during the attack: it asks for `/healthz`,
reads the victim company's flows and runs one of its flows to the end, in turn, every few
milliseconds, and reports how long each answer took. Being a separate process, its clock and
its client are not slowed by whatever the attacking test process is doing.

Usage: probe.py BASE_URL API_KEY FLOW_ID; it probes until its standard input closes, then
prints one JSON object: {"count", "max_ms", "p50_ms", "worst": [...], "failures": [...],
"excused": [...]} (answers timed while the probe itself was stalled; see STALL).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

INTERVAL = 0.02
# The probe watches its own process: a thread that wakes every TICK notes every time it woke
# more than STALL late. An answer that took long while the probe itself was not running
# (the machine descheduled it: CI hosts share their cores) measures the host, not the
# server; such answers are reported under "excused" with the stall, and not counted late.
TICK = 0.005
STALL = 0.1


def watch_own_stalls(stop: threading.Event, stalls: list[tuple[float, float]]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        time.sleep(TICK)
        now = time.perf_counter()
        if now - last > TICK + STALL:
            stalls.append((last, now))
        last = now


def stalled_during(stalls: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] during which the probe itself was stalled."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in stalls)


def main() -> None:
    base, key, flow_id = sys.argv[1:4]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    samples: list[tuple[float, str]] = []
    excused: list[str] = []
    stalls: list[tuple[float, float]] = []
    threading.Thread(target=watch_own_stalls, args=(stop, stalls), daemon=True).start()
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    requests = [
        ("GET", "/healthz", None),
        ("GET", "/api/flows?size=5", None),
        ("POST", f"/api/flows/{flow_id}/run?wait=5", {"probe": True}),
    ]
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        print("ready", flush=True)
        turn = 0
        while not stop.is_set():
            method, path, body = requests[turn % len(requests)]
            turn += 1
            started = time.perf_counter()
            try:
                answer = client.request(method, path, json=body)
                elapsed = time.perf_counter() - started
                ok = answer.status_code == 200 and (
                    body is None or answer.json().get("state") == "DONE"
                )
                if not ok:
                    failures.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
            except httpx.HTTPError as e:
                elapsed = time.perf_counter() - started
                failures.append(f"{method} {path}: {type(e).__name__}: {e}")
            lost = stalled_during(stalls, started, started + elapsed)
            if lost > STALL:
                excused.append(
                    f"{elapsed * 1000:.1f} ms {method} {path} (the probe itself was stalled "
                    f"{lost * 1000:.0f} ms of it)"
                )
            else:
                samples.append((elapsed * 1000, f"{method} {path}"))
            time.sleep(INTERVAL)
    times = sorted(ms for ms, _ in samples)
    worst = sorted(samples, reverse=True)[:5]
    print(
        json.dumps(
            {
                "count": len(times),
                "max_ms": times[-1] if times else None,
                "p50_ms": times[len(times) // 2] if times else None,
                "worst": [f"{ms:.1f} ms {what}" for ms, what in worst],
                "worst_ms": sorted((ms for ms, _ in samples), reverse=True)[:20],
                "failures": failures[:20],
                "excused": excused[:20],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
