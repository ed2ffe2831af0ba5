"""Sending the outbox with the connection cut at a random point (either direction: a cut
in the client's DATA, or in the server's replies after it has taken the message).

Each case: queue 1-5 messages -> `flush()` through the cutting proxy (sometimes twice) ->
clean flush -> another clean flush (must send nothing new) -> invariants
(fault_scenarios.OutboxWorld.check): every message delivered exactly once to all of its
recipients, byte for byte, and filed in Sent once; except items the product marked
"uncertain", which were reported, were delivered at most once, and were not resent.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fault_harness import PLANS, SmtpCase, finish
from fault_scenarios import OutboxWorld, reopen
from proxy import FaultProxy
from servers.dovecot import DovecotServer
from servers.smtp import SMTPServer

from tuimail.store import Store

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("case", PLANS.smtp, ids=lambda c: c.name)
def test_outbox_flush_survives_a_cut(
    case: SmtpCase,
    fault_smtp: dict[str, SMTPServer],
    fault_dovecot: DovecotServer,
    work_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp = fault_smtp[case.tls]
    rng = random.Random(case.seed)
    dovecot = fault_dovecot
    user = dovecot.add_user(f"{case.name}-{case.seed:08x}", f"pw-{case.seed:x}")
    monkeypatch.setenv("TUIMAIL_PASSWORD_OUT", user.password)
    world = OutboxWorld(smtp, user, f"{case.name}.{case.seed:x}", rng)
    root = work_dir / "store"
    store = Store.open(root)
    problems: list[str] = []
    outcomes: list[str] = []
    fired = 0
    try:
        world.queue(store, case.items)
        data = sum(len(q.raw) for q in world.queued.values())
        upper = {
            "up": 4_000 + data * 11 // 10 + 300 * case.items,
            "down": 4_000 + 200 * case.items,
            "reads": 6 + 6 * case.items,
        }
        with FaultProxy(smtp.port) as proxy:
            for cut in case.cuts:
                before = len(proxy.stats.cuts)
                proxy.arm(cut.fault(upper))
                result, _report = world.flush(store, proxy.port)
                hit = len(proxy.stats.cuts) > before
                fired += hit
                outcomes.append(result.outcome if hit else "not-reached")
                problems.extend(result.problems)
                problems.extend(f"right after the cut: {p}" for p in store.integrity_check())
                store = reopen(store, root)
        result, _report = world.flush(store, smtp.port)
        problems.extend(result.problems)
        delivered = world.deliveries()
        again, report = world.flush(store, smtp.port)
        problems.extend(again.problems)
        if world.deliveries() != delivered:
            problems.append("a second clean flush delivered again")
        problems.extend(
            f"second clean flush tried #{o.item_id}: {o.status}"
            for o in report.outcomes
            if o.status != "skipped"
        )
        problems.extend(world.check(store))
        outcomes.extend(world.item_results(store))
    finally:
        store.close()
    finish(
        f"smtp:{case.tls}",
        case,
        problems,
        armed=len(case.cuts),
        fired=fired,
        outcomes=outcomes,
    )
