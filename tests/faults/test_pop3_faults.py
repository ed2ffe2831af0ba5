"""POP3 download with the connection cut at a random point, with leave_on_server true
and false, into an empty store or after earlier downloads.

Each case: scenario -> sync through the cutting proxy (sometimes twice) -> clean sync ->
invariants (fault_scenarios.Pop3World.check: every message once, byte for byte; the
server keeps them all or ends up empty) -> a second clean sync downloads nothing.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fault_harness import PLANS, Pop3Case, finish
from fault_scenarios import Pop3World, reopen
from proxy import FaultProxy
from servers.dovecot import DovecotServer

from tuimail.store import Store

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("case", PLANS.pop3, ids=lambda c: c.name)
def test_pop3_download_survives_a_cut(
    case: Pop3Case, fault_dovecot: DovecotServer, work_dir: Path
) -> None:
    rng = random.Random(case.seed)
    dovecot = fault_dovecot
    user = dovecot.add_user(f"{case.name}-{case.seed:08x}", f"pw-{case.seed:x}")
    world = Pop3World(dovecot, user, f"{case.name}.{case.seed:x}", rng, case.leave_on_server)
    root = work_dir / "store"
    store = Store.open(root)
    problems: list[str] = []
    outcomes: list[str] = []
    fired = 0
    try:
        if case.phase == "incremental":
            world.deliver(rng.randint(5, case.messages))
            setup = world.sync(store)
            assert setup.outcome == "ok" and not setup.problems, f"setup sync failed: {setup}"
        world.deliver(case.messages)
        upper = {
            "down": 8_000 + world.on_server_bytes() * 11 // 10,
            "up": 1_500 + 40 * 80,
            "reads": 12,
        }
        target = dovecot.pop3s_port if case.tls == "implicit" else dovecot.pop3_port
        with FaultProxy(target) as proxy:
            account = world.account(proxy.port, case.tls)
            for cut in case.cuts:
                before = len(proxy.stats.cuts)
                proxy.arm(cut.fault(upper))
                result = world.sync(store, account)
                hit = len(proxy.stats.cuts) > before
                fired += hit
                outcomes.append(result.outcome if hit else "not-reached")
                problems.extend(result.problems)
                problems.extend(f"right after the cut: {p}" for p in store.integrity_check())
                store = reopen(store, root)
        result = world.sync(store)
        if result.outcome != "ok":
            problems.append(f"the clean rerun failed: {result.outcome} {result.problems}")
        problems.extend(world.check(store))
        again = world.sync(store)
        problems.extend(again.problems)
        if again.summary is None or again.summary.new:
            new = again.summary.new if again.summary else "?"
            problems.append(f"a second clean sync downloaded {new} message(s) again")
    finally:
        store.close()
    finish(
        f"pop3:{'leave' if case.leave_on_server else 'delete'}",
        case,
        problems,
        armed=len(case.cuts),
        fired=fired,
        outcomes=outcomes,
    )
