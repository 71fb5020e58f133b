from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from tests.pg_cluster import PgCluster

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    return d


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    """A PostgreSQL primary + synchronous standby for the whole session (tests/pg_cluster.py),
    started only when a test asks for it. Tests that kill or promote make their own."""
    from tests.pg_cluster import PgCluster, pg_bindir

    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (pg_config --bindir)")
    cluster = PgCluster.start()
    yield cluster
    cluster.stop()


_databases = itertools.count(1)


def store_url(request: pytest.FixtureRequest, driver: str) -> str | None:
    """None for the embedded driver; for PostgreSQL a fresh database on the session's cluster."""
    if driver == "embedded":
        return None
    cluster: PgCluster = request.getfixturevalue("pg")
    return cluster.create_database(f"renkei_{os.getpid()}_{next(_databases)}")
