"""Child process of the crash test: appends batches forever, printing each acknowledgement.

Record ``seq`` is always ``make_record(seq)``, so the parent knows what every acknowledged
record must hold. Printed line per commit: ``ack <first> <count> <checkpoint note, base64>``.
"""

from __future__ import annotations

import base64
import random
import sys

from ledger_helpers import make_record

from renkei.ledger import Ledger
from tests.datadirs import core_dir


def main() -> None:
    # A small write-ahead segment limit, so kills also land around segment rotations.
    lg = Ledger(core_dir(sys.argv[1]), wal_limit=1 << 20)
    rng = random.Random(int(sys.argv[2]))
    print("ready", flush=True)
    while True:
        n = lg.size
        k = rng.choice([1, 2, 7, 50, 255, 256, 300])
        res = lg.append_batch([make_record(n + i) for i in range(k)])
        assert res.first_seq == n
        note = base64.b64encode(res.checkpoint.note.encode()).decode()
        print(f"ack {res.first_seq} {res.count} {note}", flush=True)


if __name__ == "__main__":
    main()
