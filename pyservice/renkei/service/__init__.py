"""The service processes of renkei: what every process shares (server, auth, status mapping,
runtime, metrics) and one subpackage per process (``core``, ``jlis``, ``nta``), plus ``up`` (the
box) and ``demo`` (the demo country)."""
