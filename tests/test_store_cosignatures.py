"""The witness cosignatures the core gathers (renkei.linkage.cosigning.CosignatureStore) on both
store drivers: the same statements on SQLite and PostgreSQL (docs/arch/store.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from renkei.datadir import DataDir
from renkei.linkage.cosigning import SPACING, CosignatureStore
from renkei.store import bind_store
from tests.conftest import store_url


@pytest.fixture(params=["embedded", "postgresql"])
def core_dir(request: pytest.FixtureRequest, tmp_path: Path) -> DataDir:
    d = DataDir.init(tmp_path / "core", "core", {"ledger-log": 32})
    url = store_url(request, request.param)
    if url is not None:
        bind_store(d, url, fresh=True)
    return d


def test_cosignatures_are_kept_on_either_driver(core_dir: DataDir) -> None:
    s = CosignatureStore(core_dir)
    assert s.witness_size("w1") == 0 and s.newest(1) is None and s.cosigned(10) is None
    s.record("w1", 10, "note 10\n", "— w1 a\n", 100)
    s.record("w2", 10, "note 10\n", "— w2 b\n", 101)
    assert s.cosigned(10) == ("note 10\n", [("— w1 a\n", 100), ("— w2 b\n", 101)])
    assert s.newest(2) == 10 and s.newest(3) is None
    assert s.witness_size("w1") == 10
    s.set_witness_size("w1", 12)
    assert s.witness_size("w1") == 12
    # The same witness again for the size: replaced; another root for the size: the old ones go.
    s.record("w1", 10, "note 10\n", "— w1 c\n", 102)
    assert s.cosigned(10) == ("note 10\n", [("— w1 c\n", 102), ("— w2 b\n", 101)])
    s.record("w1", 10, "other 10\n", "— w1 d\n", 103)
    assert s.cosigned(10) == ("other 10\n", [("— w1 d\n", 103)])
    # Checkpoints closer than SPACING to the one before are dropped when a newer one comes.
    s.record("w1", 10 + SPACING, "note a\n", "— w1 e\n", 104)
    s.record("w1", 11 + SPACING, "note b\n", "— w1 f\n", 105)
    s.record("w1", 12 + SPACING, "note c\n", "— w1 g\n", 106)
    assert s.cosigned(11 + SPACING) is None and s.cosigned(10 + SPACING) is not None
    assert s.newest(1) == 12 + SPACING
    s.close()
    again = CosignatureStore(core_dir)  # durable: reopened, the same
    assert again.cosigned(12 + SPACING) == ("note c\n", [("— w1 g\n", 106)])
    assert again.witness_size("w1") == 12 + SPACING
    again.close()
    sqlite = (core_dir.path / "cosignatures.sqlite3").exists()
    assert sqlite == (not (core_dir.path / "store.conninfo").exists())
