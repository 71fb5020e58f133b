"""Holdings survive kill -9 at any moment after an acquisition returned (real subprocesses).

Persons arrive as J-LIS link ids, so every acquisition of a new person also journals the core's
person index for it: both must survive together."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import renkei

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import renkei

    def link(p):
        return (p * 2654435761 + 12345).to_bytes(16, "big")

    core = renkei.Core.init(sys.argv[1], checkpoint_bytes=int(sys.argv[2]))
    agencies = []
    kinds = ["japan_pension_service", "mhlw_minister", "japan_health_insurance_association"]
    for i in range(3):  # one legal person, three agencies: one type each (a repeat would be refused)
        a = core.registry.register_agency(f"agency {i}", [kinds[i]], "5010405001703")
        core.registry.add_pia(a.agency_id, "全項目評価書", approved_on="2025-01-01", expires_on="2099-12-31")
        agencies.append(a.agency_id)
    print("READY", flush=True)
    step = 0
    while True:
        agency = agencies[step % 3]
        start = step * 37
        codes = core.issue(agency, b"".join(link(p) for p in range(start, start + 50)))
        if step % 5 == 4:
            core.codes.release(agency, codes[:16])
            print(f"REL {agency} {start}", flush=True)
        print(f"ACK {agency} {start} 50", flush=True)
        step += 1
    """
)


def _link(p: int) -> bytes:
    return (p * 2654435761 + 12345).to_bytes(16, "big")


def _run_and_kill(data: Path, acks_before_kill: int, checkpoint_bytes: int) -> tuple[set, set]:  # type: ignore[type-arg]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(checkpoint_bytes)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    held: set[tuple[int, int]] = set()
    released: set[tuple[int, int]] = set()
    acks = 0
    while acks < acks_before_kill:
        line = proc.stdout.readline().split()
        if line[0] == "ACK":
            agency, start, n = map(int, line[1:])
            held.update((agency, p) for p in range(start, start + n))
            acks += 1
        else:
            agency, start = map(int, line[1:])
            released.add((agency, start))
    os.kill(proc.pid, signal.SIGKILL)  # mid-flight: the child is in its next acquisition
    proc.wait()
    proc.stdout.close()
    return held, released


def test_holdings_survive_kill_9(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    for round_ in range(4):
        data = tmp_path / f"d{round_}"
        # Small checkpoint thresholds put snapshots and journal switches in the line of fire.
        held, released = _run_and_kill(data, rng.randrange(20, 400), rng.choice([4096, 20_000, 1 << 30]))
        with renkei.Core(data) as core:
            eng = core.codes.engine

            def index(p: int) -> int:
                return int(core.codes.persons_of_links(_link(p), assign=False)[0])

            missing = [(a, p) for a, p in held if (a, p) not in released and not eng.holds(a, index(p))]
            assert not missing, f"round {round_}: {len(missing)} acknowledged holdings lost"
            assert not any(eng.holds(a, index(p)) for a, p in released)
            # the store keeps working after the crash
            assert core.codes.holdings_count(1) >= 0
            core.issue(1, _link(10**6))
            assert eng.holds(1, index(10**6))
