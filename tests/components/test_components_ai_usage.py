"""What AI steps spend, end to end: chat steps through the official SDK against an
OpenAI-protocol server on loopback, priced by the component's own table, summed on the play,
counted for the usage report, and stopped by a budget before the call that would go past it
(audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from components_kit import COMPANY, component_kit
from support.ai_servers import FakeAi, Reply, openai_chat
from support.local_http import Start

from flow8.domain import Budget, BudgetPeriod, PlayState, UsageTotals
from flow8.services.audit import AuditEntry
from flow8.services.usage import UsageService

KEY = "sk-usage-canary-5e2d"
# The component's own prices: 2 per million input tokens, 8 per million output tokens.
PRICES = {"house-model": {"inputPerMillion": 2.0, "outputPerMillion": 8.0}}


def _step(ref: str, index: int) -> dict[str, object]:
    return {"ref": ref, "appId": "chat", "index": index, "args": {"userMessage": f"step {ref}"}}


async def test_play_totals_equal_its_layers_and_a_budget_stops_the_next_call(
    tmp_path: Path, start: Start
) -> None:
    fake = FakeAi()
    server = await start(fake)
    answer = openai_chat("ok", model="house-model", input=100_000, output=25_000)
    fake.then(*[Reply(body=answer)] * 5)
    audited: list[AuditEntry] = []
    async with component_kit(tmp_path) as kit:
        usage = UsageService(kit.store, audited.append)
        kit.engine.budgets = usage
        await kit.component(
            "ai",
            "openai-compatible",
            {
                "model": "house-model",
                "apiKey": KEY,
                "baseUrl": f"http://127.0.0.1:{server.port}/v1",
                "prices": PRICES,
            },
        )
        # Each call: 100,000 x 2 / 1e6 + 25,000 x 8 / 1e6 = 0.2 + 0.2 = 0.4.
        flow = [_step("one", 0), _step("two", 1), _step("three", 2)]
        play, layers = await kit.run(flow)
        assert play.state is PlayState.DONE, play.error
        per_layer = [u for la in layers.values() for u in la.usage]
        assert [u.cost for u in per_layer] == [0.4, 0.4, 0.4]
        stored = await kit.engine.get_play(COMPANY, play.id)
        assert stored.usage == UsageTotals().plus(per_layer)
        assert stored.usage == UsageTotals(3, 300_000, 75_000, 1.2)
        today = datetime.now(UTC).date()
        report = await usage.report(COMPANY, today, today, "model")
        assert [(r.key, r.totals) for r in report.rows] == [
            ("openai-compatible/house-model", UsageTotals(3, 300_000, 75_000, 1.2))
        ]

        # 1.2 spent: a budget of 1.5 lets one more call start, not two.
        await usage.set_budget(COMPANY, None, Budget(BudgetPeriod.DAY, 1.5))
        calls_before = len(fake.seen)
        stopped, stopped_layers = await kit.run(flow)
        assert stopped.state is PlayState.FAIL
        assert stopped.error is not None
        assert stopped.error.startswith("step 'two': BUDGET_EXCEEDED: the company's daily budget")
        assert len(fake.seen) == calls_before + 1  # 'two' never reached the provider
        assert stopped_layers["two"].usage == ()
        assert (await kit.engine.get_play(COMPANY, stopped.id)).usage == UsageTotals(
            1, 100_000, 25_000, 0.4
        )
        assert [(e.action, e.target_id, e.details) for e in audited] == [
            ("budget_exceeded", stopped.id, {"flowId": stopped.flow_id, "ref": "two"})
        ]
