"""Metrics in the Prometheus text format, served on a local HTTP port.

Every process has the per-method request metrics (``renkei_grpc_*``); a service adds its own
collectors with :meth:`Metrics.add` (:class:`Counter`, :class:`Histogram`, :class:`GaugeFn` read
at scrape time). Updates may come from any thread; each collector takes its own lock and the
HTTP thread reads a snapshot. Label sets are bounded: agencies beyond :data:`MAX_AGENCY_LABELS`
share the label ``other`` (:class:`AgencyLabels`). docs/ops/ has the dashboard and alert rules
built on these names (``tests/test_metrics.py`` checks every name they use is served).
"""

from __future__ import annotations

import logging
import math
import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

log = logging.getLogger("renkei.service")

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


#: Distinct agencies that get a label of their own; the rest are counted as ``other``.
MAX_AGENCY_LABELS = 500

LabelValues = tuple[str, ...]
C = TypeVar("C", bound="Collector")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: LabelValues) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Collector:
    name: str
    help: str
    kind: str

    def samples(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}", *self.samples()]


class Counter(Collector):
    """A counter with a fixed set of label names."""

    kind = "counter"

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help, labels
        self._lock = threading.Lock()
        self._values: dict[LabelValues, float] = defaultdict(float)

    def inc(self, *values: str, n: float = 1) -> None:
        with self._lock:
            self._values[values] += n

    def add_counts(self, counts: Mapping[LabelValues, float]) -> None:
        with self._lock:
            for values, n in counts.items():
                self._values[values] += n

    def value(self, *values: str) -> float:
        with self._lock:
            return self._values.get(values, 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, v)} {_number(n)}" for v, n in items]


class Histogram(Collector):
    """A histogram without labels."""

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help, buckets
        self._lock = threading.Lock()
        self._counts = [0] * (len(buckets) + 1)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._counts[bisect_left(self.buckets, seconds)] += 1
            self._sum += seconds

    def samples(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
            running += n
            out.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        return [*out, f"{self.name}_sum {total:.6f}", f"{self.name}_count {running}"]


class GaugeFn(Collector):
    """A gauge read at scrape time: ``fn`` returns a value, or values by label values. A
    failing ``fn`` leaves the gauge out of that scrape (and logs why, once a minute at most)."""

    kind = "gauge"

    def __init__(self, name: str, help: str, fn: Callable[[], float | Mapping[LabelValues, float]],
                 labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names, self._fn = name, help, labels, fn

    def samples(self) -> list[str]:
        try:
            got = self._fn()
        except Exception:
            log.warning("metric %s could not be read", self.name, exc_info=True)
            return []
        if isinstance(got, Mapping):
            return [f"{self.name}{_labels(self.label_names, v)} {_number(n)}" for v, n in sorted(got.items())]
        return [f"{self.name} {_number(got)}"]


class Gauge(Collector):
    """A gauge with label names: values set, or read from per-label-value sources at scrape time
    (several owners — e.g. a process's two ports — can feed one family)."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help, labels
        self._lock = threading.Lock()
        self._values: dict[LabelValues, float] = {}
        self._sources: dict[LabelValues, Callable[[], float]] = {}

    def set(self, values: LabelValues, value: float) -> None:
        with self._lock:
            self._values[values] = value

    def source(self, values: LabelValues, fn: Callable[[], float]) -> None:
        with self._lock:
            self._sources[values] = fn

    def samples(self) -> list[str]:
        with self._lock:
            values = dict(self._values)
            sources = dict(self._sources)
        for v, fn in sources.items():
            values[v] = float(fn())
        return [f"{self.name}{_labels(self.label_names, v)} {_number(n)}" for v, n in sorted(values.items())]


class AgencyLabels:
    """The label of an agency id: its own for the first ``limit`` distinct agencies seen,
    ``other`` after that (a bounded label set however many agencies call)."""

    def __init__(self, limit: int = MAX_AGENCY_LABELS) -> None:
        self._limit = limit
        self._known: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, agency_id: int) -> str:
        if agency_id in self._known:
            return str(agency_id)
        with self._lock:
            if len(self._known) < self._limit:
                self._known.add(agency_id)
                return str(agency_id)
        return "other"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[tuple[str, str], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self._collectors: list[Collector] = []
        self.in_flight = 0
        self.limits_hit = self.counter(
            "renkei_limits_hit_total",
            "Calls refused with RESOURCE_EXHAUSTED by a documented limit, by reason (e.g. BATCH_TOO_LARGE).",
            ("reason",))

    def add(self, collector: Collector) -> Collector:
        """Serve ``collector`` too (its name must be new)."""
        with self._lock:
            if any(c.name == collector.name for c in self._collectors):
                raise ValueError(f"metric {collector.name} is registered already")
            self._collectors.append(collector)
        return collector

    def _shared(self, cls: type[C], name: str, labels: tuple[str, ...], make: Callable[[], C]) -> C:
        """The family ``name``: the one registered already (same kind and labels), or a new one."""
        with self._lock:
            for c in self._collectors:
                if c.name == name:
                    if not isinstance(c, cls) or getattr(c, "label_names", ()) != labels:
                        raise ValueError(f"metric {name} is registered already as another kind")
                    return c
            made = make()
            self._collectors.append(made)
            return made

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Counter:
        """The counter family ``name`` (shared: asking again returns the same one)."""
        return self._shared(Counter, name, labels, lambda: Counter(name, help, labels))

    def labeled_gauge(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Gauge:
        """A gauge family set by its owners or read from their sources (shared by name)."""
        return self._shared(Gauge, name, labels, lambda: Gauge(name, help, labels))

    def histogram(self, name: str, help: str, buckets: tuple[float, ...] = ()) -> Histogram:
        h = Histogram(name, help, buckets or BUCKETS)
        self.add(h)
        return h

    def gauge(self, name: str, help: str, fn: Callable[[], float | Mapping[LabelValues, float]],
              labels: tuple[str, ...] = ()) -> GaugeFn:
        g = GaugeFn(name, help, fn, labels)
        self.add(g)
        return g

    def collectors(self) -> Iterable[Collector]:
        with self._lock:
            return list(self._collectors)

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
        for c in self.collectors():
            lines += c.render()
        return "\n".join(lines) + "\n"


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
