"""IMAP sync with the connection cut at a random point: initial sync, incremental sync
(with changes made by another client), and sync with local changes pending (flag changes,
moves, copies, deletes, appends, some of them chained or conflicting with the server).

Each case: scenario -> sync through the cutting proxy (sometimes twice) -> clean sync ->
invariants (fault_scenarios.ImapWorld.check) -> a second clean sync finds nothing to do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_harness import PLANS, ImapCase, finish
from fault_scenarios import ImapWorld, quiet_resync_problems, reopen
from proxy import FaultProxy
from servers.dovecot import DovecotServer

from tuimail.store import Store

pytestmark = pytest.mark.servers


def prepare(world: ImapWorld, case: ImapCase, store: Store, rng: random.Random) -> None:
    world.deliver("INBOX", case.messages)
    if rng.random() < 0.5:
        world.deliver("Archive", rng.randint(1, 5))
    if rng.random() < 0.4:
        world.deliver("Trash", rng.randint(1, 3))
    if case.phase == "initial":
        return
    result, _ = world.sync(store)
    assert result.outcome == "ok" and not result.problems, f"setup sync failed: {result}"
    world.mark_synced()
    if case.phase == "incremental":
        world.server_changes(set())
        return
    touched = world.local_changes(store)
    if rng.random() < 0.6:
        conflicts: list[str] = []
        if rng.random() < 0.3 and touched:
            conflicts = rng.sample(sorted(touched), 1)
        world.server_changes(touched, conflicts=conflicts)


@pytest.mark.parametrize("case", PLANS.imap, ids=lambda c: c.name)
def test_imap_sync_survives_a_cut(
    case: ImapCase,
    imap_server: Callable[[str], DovecotServer],
    work_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = imap_server(case.mode)
    rng = random.Random(case.seed)
    user = server.add_user(f"{case.name}-{case.seed:08x}", f"pw-{case.seed:x}")
    monkeypatch.setenv("TUIMAIL_PASSWORD_ACCT", user.password)
    world = ImapWorld(server, user, f"{case.name}.{case.seed:x}", rng, case.bodies)
    root = work_dir / "store"
    store = Store.open(root)
    problems: list[str] = []
    outcomes: list[str] = []
    fired = 0
    try:
        prepare(world, case, store, rng)
        bounds = world.upper_bounds()
        target = server.imaps_port if case.tls == "implicit" else server.imap_port
        with FaultProxy(target) as proxy:
            account = world.account(proxy.port, case.tls)
            for cut in case.cuts:
                fault = cut.fault(bounds)
                before = len(proxy.stats.cuts)
                proxy.arm(fault)
                result, _ = world.sync(store, account)
                hit = len(proxy.stats.cuts) > before
                fired += hit
                outcomes.append(result.outcome if hit else "not-reached")
                problems.extend(result.problems)
                problems.extend(f"right after the cut: {p}" for p in store.integrity_check())
                store = reopen(store, root)
        result, _ = world.sync(store)
        if result.outcome != "ok":
            problems.append(f"the clean rerun failed: {result.outcome} {result.problems}")
        problems.extend(world.check(store))
        again, summary = world.sync(store)
        problems.extend(again.problems)
        problems.extend(quiet_resync_problems(summary))
    finally:
        store.close()
    finish(
        f"imap:{case.phase}",
        case,
        problems,
        armed=len(case.cuts),
        fired=fired,
        outcomes=outcomes,
        notes=world.notes,
    )
