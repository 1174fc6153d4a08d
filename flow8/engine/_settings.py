"""Engine settings (the integrator maps ``flow8.config`` onto these)."""

from __future__ import annotations

import attrs

from flow8.store import new_id


@attrs.frozen
class EngineSettings:
    """Tunables of the engine. Defaults suit a single instance.

    * ``lease_seconds``: how long a claimed play stays ours without renewal; renewed every
      third of it. An instance that dies loses its plays after this long.
    * ``hold_delay_seconds``: delays (and ``ctx.sleep``) longer than this suspend the play
      (persisted, no actor) instead of sleeping in its actor.
    * ``max_output_bytes``: a step output larger than this (as JSON) fails the step.
    * ``poll_interval``: how often the dispatcher scans for runnable plays when idle.
    * ``max_play_crashes``: a play whose actor crashes this often (an error escaping the
      engine, not a failing step) ends FAIL with ``PLAY_CRASHED`` and its last error; before
      that it is run again after 1, 2, 4 ... seconds.
    * ``max_descendant_plays``: plays one play may start, with its subflows and theirs,
      in all (a flow that starts itself stops there: the subflow step fails).
    * ``company_plays_per_second`` and ``company_running_plays`` (0 = no limit): per company
      on this instance; see :class:`flow8.engine._admission.Admission`.
    * ``encrypt_play_data``: store plays' inputs and outputs and layers' arguments and
      outputs encrypted (AES-256-GCM, the store's secret fields) instead of as plain JSON.
    * ``max_starting_per_company`` and ``max_starting``: play starts in progress at once
      (each until its play is durable) for one company, and in all; more wait, companies
      in turn and each in arrival order (:class:`flow8.engine._fair.FairGate`). Measured
      with ``scripts/bench/api.py`` (64 clients of one company starting 1-step plays):
      unbounded, starts interleave at random and p99 latency was 105-135 ms; through a
      gate of 16 it was 78-90 ms at about the same throughput (a gate of 4 cost a third of
      it, 32 did not help the tail). The company's own limit keeps a company starting
      plays by the thousand (attack 7 in ``tests/security``) from holding every slot:
      with one gate of 16 for all, another company's start waited for one of them to
      become durable (a victim's run took 30-70 ms to start; with its own slots, 15-50).
    * ``max_queued_starts_per_company``: with this many of a company's starts waiting at
      that gate, its plays hold back before their subflow steps until the queue is shorter
      (:meth:`flow8.engine._fair.FairGate.hold_back`): a tree of plays grows no faster than
      the store takes its starts, and a play held back holds a quarter of the objects its
      queued steps would (attack 7: the collector's 55-78 ms pauses are gone).
    """

    instance_id: str = attrs.field(factory=new_id)
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    claim_batch: int = 64
    hold_delay_seconds: float = 5.0
    max_output_bytes: int = 1_000_000
    max_subflow_depth: int = 8
    idempotency_window_seconds: float = 86_400.0
    max_running_plays: int = 10_000
    max_starting: int = 64
    max_starting_per_company: int = 16
    max_queued_starts_per_company: int = 64
    max_play_crashes: int = 3
    max_descendant_plays: int = 1000
    company_plays_per_second: float = 2000.0
    company_running_plays: int = 1000
    encrypt_play_data: bool = False
