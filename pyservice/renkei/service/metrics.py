"""Per-method request metrics in the Prometheus text format, served on a local HTTP port.

Counters are updated on the event-loop thread; the HTTP thread reads a snapshot under a lock.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


Labels = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[tuple[str, str], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self.in_flight = 0
        # Further series (limits, refusals, budgets): name -> (type, help), name -> labels -> value.
        self._described: dict[str, tuple[str, str]] = {}
        self._series: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauge_fns: dict[tuple[str, Labels], Callable[[], float]] = {}

    def describe(self, name: str, kind: str, help_text: str) -> None:
        """Declare a series (``kind`` "counter" or "gauge") before it is updated."""
        with self._lock:
            self._described[name] = (kind, help_text)

    def inc(self, name: str, labels: Labels = (), n: float = 1) -> None:
        with self._lock:
            series = self._series[name]
            series[labels] = series.get(labels, 0) + n

    def set(self, name: str, labels: Labels, value: float) -> None:
        with self._lock:
            self._series[name][labels] = value

    def gauge_fn(self, name: str, labels: Labels, fn: Callable[[], float]) -> None:
        """A gauge read from ``fn`` when the metrics are rendered (nothing to update per call)."""
        with self._lock:
            self._gauge_fns[(name, labels)] = fn

    def observe(self, method: str, code: str, seconds: float) -> None:
        with self._lock:
            self._outcomes[(method, code)] += 1
            counts = self._buckets.get(method)
            if counts is None:
                counts = self._buckets[method] = [0] * (len(BUCKETS) + 1)
            counts[bisect_left(BUCKETS, seconds)] += 1
            self._sums[method] += seconds

    def render(self) -> str:
        with self._lock:
            outcomes = sorted(self._outcomes.items())
            buckets = {m: list(c) for m, c in self._buckets.items()}
            sums = dict(self._sums)
            in_flight = self.in_flight
        lines = [
            "# HELP renkei_grpc_requests_total RPCs finished, by method and status code.",
            "# TYPE renkei_grpc_requests_total counter",
        ]
        lines += [f'renkei_grpc_requests_total{{method="{m}",code="{c}"}} {n}' for (m, c), n in outcomes]
        lines += [
            "# HELP renkei_grpc_request_duration_seconds Handling time of RPCs, by method.",
            "# TYPE renkei_grpc_request_duration_seconds histogram",
        ]
        for method in sorted(buckets):
            running = 0
            for bound, n in zip((*BUCKETS, float("inf")), buckets[method], strict=True):
                running += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'renkei_grpc_request_duration_seconds_bucket{{method="{method}",le="{le}"}} {running}'
                )
            lines.append(f'renkei_grpc_request_duration_seconds_sum{{method="{method}"}} {sums[method]:.6f}')
            lines.append(f'renkei_grpc_request_duration_seconds_count{{method="{method}"}} {running}')
        lines += [
            "# HELP renkei_grpc_in_flight RPCs being handled now.",
            "# TYPE renkei_grpc_in_flight gauge",
            f"renkei_grpc_in_flight {in_flight}",
        ]
        with self._lock:
            described = dict(self._described)
            series = {name: dict(values) for name, values in self._series.items()}
            fns = dict(self._gauge_fns)
        for (name, labels), fn in fns.items():
            series.setdefault(name, {})[labels] = float(fn())
        for name in sorted(series):
            kind, help_text = described.get(name, ("gauge", name))
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for labels, value in sorted(series[name].items()):
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                number = f"{value:.0f}" if float(value).is_integer() else f"{value:.6g}"
                lines.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsHTTPServer:
    """``GET /metrics`` on a local port, in a daemon thread."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="renkei-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
