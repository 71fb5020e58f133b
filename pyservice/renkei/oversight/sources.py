"""Where the audit's inputs come from.

* **OversightService** (the default): the commission's own client certificate (principal
  ``oversight``) on the core's mutual-TLS port: ``GetLatestCheckpoint`` (the cosigned
  checkpoint), ``ListRecords`` (every record with its exact leaf bytes), ``ListAgencyFacts``
  (agency types and municipality codes; a read-only listing, so the commission never reads the
  core's files).
* **A directory** of tlog-tiles entry bundles (``tile/entries/…``, a copy of the ledger's public
  tiles), with the cosigned checkpoint from the witness's monitoring endpoint or a file, and the
  agencies from a JSON file (``renkei oversight agencies`` writes one).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx

from renkei.errors import InvalidArgumentError, NotFoundError
from renkei.oversight.audit import Agency, Entry

PAGE = 1000


class OversightSource:
    """The core's OversightService as the ``oversight`` principal."""

    def __init__(self, target: str, pki: str | os.PathLike[str]) -> None:
        from renkei import client

        self._channel = client.principal_channel("oversight", target, pki=pki)
        self._stub = client.OversightServiceStub(self._channel)
        self.name = f"OversightService at {target}"

    def close(self) -> None:
        self._channel.close()

    def checkpoint(self) -> bytes:
        from renkei._proto.renkei.v1 import oversight_service_pb2 as pb

        return bytes(self._stub.GetLatestCheckpoint(pb.GetLatestCheckpointRequest(), timeout=60).note)

    def entries(self, size: int) -> Iterator[Entry]:
        from renkei._proto.renkei.v1 import oversight_service_pb2 as pb

        token = ""
        while True:
            page = self._stub.ListRecords(pb.ListRecordsRequest(page_size=PAGE, page_token=token), timeout=120)
            for r in page.records:
                if r.sequence >= size:
                    return
                yield Entry(r.sequence, bytes(r.leaf_data))
            token = page.next_page_token
            if not token:
                return

    def agencies(self) -> list[Agency]:
        from renkei._proto.renkei.v1 import oversight_service_pb2 as pb

        out, token = [], ""
        while True:
            page = self._stub.ListAgencyFacts(pb.ListAgencyFactsRequest(page_size=PAGE, page_token=token), timeout=60)
            out += [Agency(a.agency_id, a.name, tuple(a.type_ids), a.local_government_code or None)
                    for a in page.agencies]
            token = page.next_page_token
            if not token:
                return out


def _bundle_path(root: Path, n: int) -> Path:
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return root / "tile" / "entries" / "/".join(reversed(parts))


def _parse_bundle(data: bytes, path: Path) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise InvalidArgumentError(f"{path}: truncated entry length")
        n = int.from_bytes(data[i:i + 2], "big")
        if i + 2 + n > len(data):
            raise InvalidArgumentError(f"{path}: truncated entry")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out


def directory_entries(ledger_dir: Path, size: int) -> Iterator[Entry]:
    """Entries 0 … size−1 from the C2SP tlog-tiles entry bundles under ``ledger_dir`` (a full
    bundle, else the widest partial bundle there is)."""
    for k in range((size + 255) // 256):
        want = min(256, size - 256 * k)
        full = _bundle_path(ledger_dir, k)
        if full.exists():
            path = full
        else:
            pdir = full.with_name(full.name + ".p")
            found = pdir.glob("*") if pdir.is_dir() else iter(())
            partials = sorted((int(p.name), p) for p in found if p.name.isdigit() and int(p.name) >= want)
            if not partials:
                raise NotFoundError(f"entry bundle {full} (or a partial of ≥ {want} entries) is missing")
            path = partials[-1][1]
        for i, data in enumerate(_parse_bundle(path.read_bytes(), path)[:want]):
            yield Entry(256 * k + i, data)


def witness_checkpoint(url: str, origin: str) -> bytes:
    """The latest checkpoint a witness cosigned for ``origin`` (its C2SP monitoring endpoint)."""
    r = httpx.get(f"{url.rstrip('/')}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint", timeout=30)
    if r.status_code != 200:
        raise NotFoundError(f"the witness has no checkpoint of {origin!r} ({r.status_code})")
    return r.content


def agencies_file(path: Path) -> list[Agency]:
    data = json.loads(path.read_text())
    return [Agency(int(a["agency_id"]), str(a.get("name", "")), tuple(a["type_ids"]),
                   a.get("local_government_code") or None) for a in data]


def agencies_json(agencies: list[Agency]) -> str:
    return json.dumps([{"agency_id": a.agency_id, "name": a.name, "type_ids": list(a.types),
                        "local_government_code": a.municipality or ""} for a in agencies], ensure_ascii=False,
                      indent=1)


__all__ = ["OversightSource", "agencies_file", "agencies_json", "directory_entries", "witness_checkpoint"]
