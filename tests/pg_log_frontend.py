"""A ledger front-end process for tests/test_store_tlog.py: appends batches to a PgLog and, when
elected, integrates. One line per event on stdout (flushed): ``ack FIRST COUNT NAME-START
STARTED`` (the append's start, Unix time), ``integrator EPOCH``, ``unavailable``.

    python -m tests.pg_log_frontend URL ORIGIN SEED_HEX NAME
"""

from __future__ import annotations

import sys
import time

from renkei.errors import FailedPreconditionError, ResourceExhaustedError, StoreUnavailableError
from renkei.store.tlog import PgLog

BATCH = 8


def main(url: str, origin: str, seed_hex: str, name: str) -> None:
    log = PgLog(url, origin, bytes.fromhex(seed_hex))
    i = 0
    integrator = False
    while True:
        try:
            if log.elect():
                if not integrator:
                    print(f"integrator {log.epoch}", flush=True)
                integrator = True
                log.integrate()
            else:
                integrator = False
            entries = [f"{name}-{i + k}".encode() for k in range(BATCH)]
            started = time.time()
            first = log.append(entries)
            i += BATCH
            print(f"ack {first} {BATCH} {name}-{i - BATCH} {started:.6f}", flush=True)
        except (StoreUnavailableError, ResourceExhaustedError):
            print("unavailable", flush=True)
            time.sleep(0.05)
        except FailedPreconditionError:
            integrator = False  # fenced: another front-end was elected
        time.sleep(0.005)


if __name__ == "__main__":
    main(*sys.argv[1:5])
