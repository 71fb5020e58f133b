"""Damaged holdings are named, never silently dropped (#11 point 8), and `renkei codes repair`
salvages every readable record, keeping the damaged files aside."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import renkei
from renkei.errors import StorageError
from renkei.ledger import ledger_vkey
from renkei.pki.ca import DevelopmentCA
from renkei.ppc.review import LOG_DIR, LOG_KEY
from renkei.ppc.review import init_data_dir as init_ppc
from renkei.service.core import init_data_dir

REPO = Path(__file__).resolve().parent.parent


def _renkei(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "renkei.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def _three_acknowledged_records(data: Path) -> tuple[Path, list[bytes]]:
    """A core whose holdings journal holds three acknowledged records of 152 bytes (456 bytes):
    each acquisition names 5 new persons, 2 held by agency 1 and 3 by agency 2."""
    # Bound to a commission and with its certificate, so that `core serve` gets to the holdings.
    _log, commission_vkey = ledger_vkey(init_ppc(data.parent / "ppc"), key_name=LOG_KEY, subdir=LOG_DIR)
    init_data_dir(data, commission_vkey=commission_vkey)
    DevelopmentCA.init(data.parent / "pki").issue_service("core", data)
    links = []
    with renkei.Core(data) as core:
        for r in range(3):
            lk = b"".join(bytes([r + 1, i]) * 8 for i in range(5))
            core.codes.engine.acquire_link_pairs(np.array([1, 1, 2, 2, 2], dtype=np.uint64), lk)
            links.append(lk)
    journal = data / "holdings" / "journal.00000000000000000001"
    return journal, links


def test_a_flipped_byte_is_named_and_repair_keeps_every_readable_record(tmp_path: Path) -> None:
    data = tmp_path / "core"
    journal, links = _three_acknowledged_records(data)
    raw = bytearray(journal.read_bytes())
    assert len(raw) == 456
    raw[40] ^= 0x01  # inside the first record: its checksum fails, two records follow it
    journal.write_bytes(bytes(raw))

    # The engine refuses to open, naming the file and the damaged record's offset.
    with pytest.raises(StorageError, match=r"journal\.00000000000000000001 is damaged at byte 0"):
        renkei.Core(data)
    assert journal.read_bytes() == raw, "nothing was dropped"
    # So does the service: it does not come up with fewer holdings.
    served = _renkei("core", "serve", "--data-dir", str(data), "--port", "0", "--public-port", "0")
    assert served.returncode != 0 and "damaged at byte 0" in served.stdout + served.stderr
    verify = _renkei("codes", "verify", "--data-dir", str(data))
    assert verify.returncode != 0 and "damaged at byte 0" in verify.stdout + verify.stderr

    # The repair: a dry run first (nothing changes), then --apply.
    dry = _renkei("codes", "repair", "--data-dir", str(data))
    assert dry.returncode == 1 and "dry run" in dry.stdout and "152 bytes at byte 0" in dry.stdout, dry.stdout
    assert journal.read_bytes() == raw
    done = _renkei("codes", "repair", "--data-dir", str(data), "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "salvaged 2 records: 15 persons (5 person indices reserved" in done.stdout
    kept = list((data / "holdings").glob("damaged-*/journal.00000000000000000001"))
    assert len(kept) == 1 and kept[0].read_bytes() == raw, "the damaged file is kept as it was"

    with renkei.Core(data) as core:
        eng = core.codes.engine
        assert eng.person_count() == 15 and eng.total() == 10
        # The lost record's persons are not guessed; the others keep their indices.
        assert eng.persons_of_links(links[0], False).tolist() == [-1] * 5
        assert eng.persons_of_links(links[1] + links[2], False).tolist() == list(range(5, 15))
        assert eng.holds(1, 5) and eng.holds(2, 14) and not eng.holds(1, 0)
        # A lost person acquired again gets a new index, never a reserved one.
        eng.acquire_links(1, links[0][:16])
        assert eng.persons_of_links(links[0][:16], False).tolist() == [15]
    assert _renkei("codes", "verify", "--data-dir", str(data)).returncode == 0


def test_an_emptied_holdings_directory_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "core"
    _three_acknowledged_records(data)
    holdings = data / "holdings"
    for f in holdings.iterdir():
        f.unlink()
    with pytest.raises(StorageError, match="is empty"):
        renkei.Core(data)
    served = _renkei("core", "serve", "--data-dir", str(data), "--port", "0", "--public-port", "0")
    assert served.returncode != 0 and "is empty" in served.stdout + served.stderr
    repaired = _renkei("codes", "repair", "--data-dir", str(data), "--apply")
    assert repaired.returncode != 0 and "restore holdings/ from a backup" in repaired.stdout + repaired.stderr
    # Completing the data directory (init again) does not make a fresh, empty store either.
    init_data_dir(data)
    assert not any(holdings.iterdir())
    holdings.rmdir()
    with pytest.raises(StorageError, match="does not exist"):
        renkei.Core(data)
