"""SIGTERM: the server stops taking calls, finishes the ones in flight, and exits cleanly."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from renkei import client
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from tests.grpc_server import start_server


def _in_flight(metrics_port: int) -> int:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return int(
        next(line for line in body.splitlines() if line.startswith("renkei_grpc_in_flight ")).split()[1]
    )


def test_sigterm_finishes_in_flight_calls(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        with server.channel("jlis") as ch:
            stub = client.NumberServiceStub(ch)
            # Four 100,000-resident registrations queue on J-LIS's single registry thread: a
            # couple of seconds of work in flight when the signal arrives.
            calls = [
                stub.RegisterTestPopulation.future(
                    npb.RegisterTestPopulationRequest(count=100_000, seed=s), timeout=60
                )
                for s in range(4)
            ]
            deadline = time.monotonic() + 10
            while _in_flight(server.metrics_port) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _in_flight(server.metrics_port) == 4
            rc, out = server.terminate(timeout=60)
            results = [c.result() for c in calls]  # every in-flight call completed successfully
        assert all(len(np.frombuffer(r.individual_numbers, dtype="<u8")) == 100_000 for r in results)
        assert rc == 0, out
        assert "renkei stopped" in out and "Traceback" not in out
        with server.channel("jlis") as ch, pytest.raises(grpc.RpcError) as e:
            client.NumberServiceStub(ch).ValidateNumbers(npb.ValidateNumbersRequest(), timeout=2)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
