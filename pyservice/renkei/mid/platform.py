"""An intermediate server's logic, without the network: tenants, the provider side (answer an
inquiry from 副本, sealed and signed) and the requester side (open and check an answer).

The service process (:mod:`renkei.service.mid`) adds the gRPC plumbing: the business API, the
tenants' channels to the core and J-LIS, and the attendance streams on which the core sends
provision calls.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from renkei.datadir import DataDir, write_atomic
from renkei.errors import InvalidArgumentError, NotFoundError, PermitError
from renkei.mid import sealing
from renkei.mid.store import MidStore
from renkei.permissions.engine import default_table_path
from renkei.permits import PermitVerifier, VerifiedPermit

SERVICE = "mid"
CODE_LEN = 16
PROVIDED = "provided"
NO_DATA = "no data"


@dataclass(frozen=True)
class Tenant:
    """An agency hosted by this intermediate server."""

    agency_id: int
    name: str
    types: tuple[str, ...]

    @property
    def principal(self) -> str:
        return f"agency-{self.agency_id}"


@dataclass(frozen=True)
class TenantCredentials:
    """Where a tenant's certificate and key (toward the core and J-LIS) are."""

    certificate: Path
    private_key: Path
    ca: Path


#: The operational codes (TM… 特定個人情報名コード, JT… 事務手続コード) of the bundled table.
OPERATIONAL_CODES = Path(__file__).resolve().parent.parent / "data" / "mid" / "operational_codes.csv"
_OPERATIONAL = re.compile(r"(TM|JT)[0-9]{14}")


def read_operational_codes(path: Path = OPERATIONAL_CODES) -> list[tuple[str, str, str]]:
    """(kind "item"/"affair", code, table id) rows of an operational-code file (``#`` comments)."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    out = []
    for row in csv.DictReader(lines):
        kind, code = row["kind"], row["code"]
        family = "TM" if kind == "item" else "JT"
        if kind not in ("item", "affair") or not _OPERATIONAL.fullmatch(code) or code[:2] != family:
            raise InvalidArgumentError(f"{path}: {code!r} is not a {kind} operational code (TM/JT + 14 digits)")
        out.append((kind, code, row["id"]))
    return out


class Catalog:
    """Items and affairs of the permission table by id, 別表第二 code or operational alias
    (JT… 事務手続コード, TM… 特定個人情報名コード, from ``data/mid/operational_codes.csv`` for the
    bundled table), and what an agency type may provide."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        bundled = document is None
        doc = document if document is not None else json.loads(default_table_path().read_text(encoding="utf-8"))
        self._items: dict[str, str] = {}
        self._affairs: dict[str, str] = {}
        self.item_names: dict[str, str] = {}
        for it in doc["items"]:
            for key in (it["id"], it["code"], *it.get("codes", ())):
                self._items[key] = it["id"]
            self.item_names[it["id"]] = it["name"]
        for af in doc["affairs"]:
            for key in (af["id"], af["code"], *af.get("codes", ())):
                self._affairs[key] = af["id"]
        self._rows = doc["rows"]
        self.operational: dict[str, str] = {}  # table id -> its operational code
        if bundled:
            # 自己情報表示 (the portal's entitlement, a table version of its own): its affair, so
            # that a provider can answer the disclosure system's permits.
            from renkei.permissions.self_disclosure import FILE as SELF_DISCLOSURE

            extra = json.loads(SELF_DISCLOSURE.read_text(encoding="utf-8"))
            for af in extra["affairs"]:
                for key in (af["id"], af["code"], *af.get("codes", ())):
                    self._affairs.setdefault(key, af["id"])
            for kind, code, ident in read_operational_codes():
                table = self._items if kind == "item" else self._affairs
                if ident not in table:
                    raise InvalidArgumentError(f"{OPERATIONAL_CODES}: {code} names {ident!r}, not in the table")
                table[code] = ident
                self.operational[ident] = code

    def item(self, name: str) -> str:
        try:
            return self._items[name]
        except KeyError:
            raise InvalidArgumentError("unknown item (特定個人情報): not an id, code or TM code of the table") from None

    def affair(self, name: str) -> str:
        try:
            return self._affairs[name]
        except KeyError:
            raise InvalidArgumentError("unknown affair (事務): not an id, code or JT code of the table") from None

    def providable(self, types: tuple[str, ...]) -> set[str]:
        """Item ids some row lets an agency of these types provide."""
        return {i for r in self._rows if set(r["providers"]) & set(types) for i in r["items"]}


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgumentError(f"{path}: not an EC private key")
    return key


class Platform:
    """Tenants, their store and keys. Thread-safe."""

    def __init__(self, data_dir: DataDir, catalog: Catalog | None = None) -> None:
        self.data_dir = data_dir
        self.store = MidStore(data_dir)
        self.catalog = catalog or Catalog()
        self.tenants = {t.agency_id: t for t in read_tenants(data_dir)}
        self._keys: dict[int, ec.EllipticCurvePrivateKey] = {}
        self._verifier: PermitVerifier | None = None

    @classmethod
    def init(cls, path: str | os.PathLike[str], tenants: list[Tenant]) -> DataDir:
        """Create (or complete) an intermediate server's data directory hosting ``tenants``."""
        data_dir = DataDir.init(path, SERVICE)
        known = {t.agency_id: t for t in (read_tenants(data_dir) if (data_dir.path / "tenants.json").exists()
                                          else [])}
        for t in tenants:
            known[t.agency_id] = t
        # The tenants' certificates and private keys go here: a private folder, whatever the umask.
        (data_dir.path / "tenants").mkdir(mode=0o700, exist_ok=True)
        os.chmod(data_dir.path / "tenants", 0o700)
        write_atomic(data_dir.path / "tenants.json", json.dumps(
            [{"agency_id": t.agency_id, "name": t.name, "types": list(t.types)} for t in known.values()],
            ensure_ascii=False, indent=1).encode(), 0o600)
        MidStore(data_dir).close()
        return data_dir

    def close(self) -> None:
        self.store.close()

    def tenant(self, agency_id: int) -> Tenant:
        try:
            return self.tenants[agency_id]
        except KeyError:
            raise NotFoundError(f"agency {agency_id} is not hosted by this intermediate server") from None

    def credentials(self, agency_id: int) -> TenantCredentials:
        folder = self.data_dir.path / "tenants" / f"agency-{self.tenant(agency_id).agency_id}"
        return TenantCredentials(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")

    def signing_key(self, agency_id: int) -> ec.EllipticCurvePrivateKey:
        key = self._keys.get(agency_id)
        if key is None:
            key = self._keys[agency_id] = load_private_key(self.credentials(agency_id).private_key)
        return key

    def set_permit_key(self, public_key: bytes) -> None:
        """The core's permit-verification key (from LinkageService.GetPublicKeys)."""
        self._verifier = PermitVerifier(public_key)

    # -- provider side ------------------------------------------------------------------------

    def answer(self, agency_id: int, *, permit_token: str, permit_id: bytes, requester: int, affair: str,
               items: list[str], codes: bytes, fiscal_year: int, as_of: str,
               recipient_public_key: bytes) -> tuple[bytes, bytes, bytes, str]:
        """Answer a provision call: verify the permit offline, find the persons by the tenant's
        codes, read their 副本 in force, seal to the requester and sign. ``items`` are as the
        permit names them (its short codes).

        Returns (header, sealed, signature, outcome). Raises :class:`PermitError` for a permit
        the tenant must not honour.
        """
        if self._verifier is None:
            raise PermitError("the core's permit key is not known yet")
        tenant = self.tenant(agency_id)
        n = len(codes) // CODE_LEN
        if n == 0 or len(codes) % CODE_LEN:
            raise InvalidArgumentError("provider codes must be 16 bytes each")
        if n == 1:
            claims = self._verifier.verify(permit_token)
            if claims.person != codes or list(claims.items) != list(items):
                raise PermitError("the permit names another person or other items")
        else:
            claims = self._verify_batch(permit_token, codes, items)  # each leaf binds the items
        # The core forwards what the permit says; a call that differs from it is not honoured.
        if (claims.provider != str(tenant.agency_id) or claims.requester != str(requester)
                or claims.permit_id != permit_id or self.catalog.affair(claims.affair) != self.catalog.affair(affair)):
            raise PermitError("the call does not match its permit (parties, permit id or affair)")
        affair = self.catalog.affair(affair)
        items = [self.catalog.item(i) for i in items]
        persons = [codes[i * CODE_LEN:(i + 1) * CODE_LEN] for i in range(n)]
        atenas = self.store.atenas_of_codes(tenant.agency_id, [c for c in persons if any(c)])
        held = iter(atenas)
        by_index = [next(held) if any(c) else None for c in persons]
        at = date.fromisoformat(as_of) if as_of else None
        found = self.store.duplicates_for(tenant.agency_id, [a for a in by_index if a], items,
                                          at=at, fiscal_year=fiscal_year or None)
        answer = {"persons": [{"index": i, "records": found.get(a, []) if a else []}
                              for i, a in enumerate(by_index) if any(persons[i])]}
        outcome = PROVIDED if any(p["records"] for p in answer["persons"]) else NO_DATA
        header = sealing.ProvisionHeader(permit_id, requester, tenant.agency_id, affair, tuple(items), n, outcome)
        plaintext = orjson.dumps(answer)  # compact UTF-8 JSON, as json.dumps(ensure_ascii=False) but 10× faster
        sealed = sealing.seal(header, plaintext, recipient_public_key)
        signature = sealing.sign(header, sealed, self.signing_key(tenant.agency_id))
        self.store.record_exchange(tenant.agency_id, "provider", requester, affair, items,
                                   by_index[0] if n == 1 else None, n, outcome, claims.ledger_seq, permit_id,
                                   hashlib.sha256(sealed).digest())
        return header.encode(), sealed, signature, outcome

    def _verify_batch(self, token: str, codes: bytes, items: list[str]) -> VerifiedPermit:
        """A batch permit covers exactly these codes and items: its root is the tree rebuilt
        from them (one signature check, not one per person)."""
        from renkei._core.permits import BatchTree

        assert self._verifier is not None
        tree = BatchTree(codes, items)
        first = next((i for i in range(len(codes) // CODE_LEN) if any(codes[i * CODE_LEN:(i + 1) * CODE_LEN])), None)
        if first is None:
            raise PermitError("a batch with no permitted person")
        claims = self._verifier.verify_batch_item(token, first, codes[first * CODE_LEN:(first + 1) * CODE_LEN],
                                                  items, bytes(tree.proof(first)))
        if claims.root != bytes(tree.root):
            raise PermitError("the batch permit does not cover these persons")
        return claims

    # -- requester side -----------------------------------------------------------------------

    @staticmethod
    def open_answer(header_bytes: bytes, sealed: bytes, signature: bytes, provider_certificate: bytes,
                    ca_pem: bytes, recipient: X25519PrivateKey, *, permit_id: bytes, requester: int,
                    provider: int) -> tuple[sealing.ProvisionHeader, dict[str, Any]]:
        """Verify the provider's signature and the binding, then open: (header, answer)."""
        header = sealing.ProvisionHeader.decode(header_bytes)
        if (header.permit_id, header.requester, header.provider) != (permit_id, requester, provider):
            raise sealing.ProvisionTamperedError("the provision is bound to another inquiry")
        sealing.verify(header, sealed, signature, provider_certificate, ca_pem)
        plain = sealing.open_sealed(header, sealed, recipient)
        try:
            return header, dict(orjson.loads(plain))
        except (ValueError, TypeError):
            raise sealing.ProvisionTamperedError("the opened provision is not a renkei answer") from None


def read_tenants(data_dir: DataDir) -> list[Tenant]:
    path = data_dir.path / "tenants.json"
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFoundError(f"{path} is missing: run `renkei mid init` with --tenant") from None
    return [Tenant(int(r["agency_id"]), str(r["name"]), tuple(r["types"])) for r in rows]


__all__ = ["NO_DATA", "PROVIDED", "Catalog", "Platform", "Tenant", "TenantCredentials", "read_tenants"]
