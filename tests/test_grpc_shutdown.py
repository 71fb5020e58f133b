"""SIGTERM: a service stops taking calls, finishes the ones in flight, and exits cleanly."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from renkei import client
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from tests.grpc_server import start_box


def _in_flight(metrics_port: int) -> int:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return int(
        next(line for line in body.splitlines() if line.startswith("renkei_grpc_in_flight ")).split()[1]
    )


def test_sigterm_finishes_in_flight_calls(tmp_path: Path) -> None:
    server = start_box(tmp_path / "box")
    metrics = server.metrics_port("jlis")
    try:
        with server.channel("jlis", "jlis") as ch:
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
            while _in_flight(metrics) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _in_flight(metrics) == 4
            os.kill(server.pid("jlis"), signal.SIGTERM)
            results = [c.result() for c in calls]  # every in-flight call completed successfully
        assert all(len(np.frombuffer(r.individual_numbers, dtype="<u8")) == 100_000 for r in results)
        deadline = time.monotonic() + 30
        while "jlis exited with code" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        out = server.output()
        assert "[jlis] renkei jlis stopped" in out and "Traceback" not in out
        assert "jlis exited with code 0" in out  # the box reports it and keeps the others running
        with server.channel("jlis", "jlis") as ch, pytest.raises(grpc.RpcError) as e:
            client.NumberServiceStub(ch).ValidateNumbers(npb.ValidateNumbersRequest(), timeout=2)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        rc, out = server.terminate()
    assert rc == 0, out
