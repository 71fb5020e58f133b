"""The portal's data directory (``renkei portal init``): what it pins and how it names agencies.

    renkei-service.json     service "portal"
    jpki-auth-ca.pem        the JPKI 利用者証明用 CA(s) a login must chain to (pinned at init)
    portal.json             the core ledger's verifier key (checkpoints), agency names by id, and
                            the agencies' types (which of them あなたの情報 can ask, and for what)
    agency/                 the portal's own agency certificate and key toward the core (cert.pem,
                            key.pem 0600, ca.pem): マイナポータル as the requester of 自己情報表示

The portal's only secret key is its agency key (agency/key.pem, 0600; its TLS client key toward
the core's LinkageService): sessions are random tokens kept in memory (a restart logs
everyone out), and nothing it stores names a person but the core's pseudonym.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from renkei.datadir import DataDir, write_atomic
from renkei.errors import InvalidArgumentError, NotInitializedError

SERVICE = "portal"
CA_FILE = "jpki-auth-ca.pem"
#: The JPKI 署名用 CA: pinned for ワンストップ申請 (signed applications); without it the portal takes none.
SIGN_CA_FILE = "jpki-sign-ca.pem"
#: The portal's client certificate toward intermediate servers (cert.pem, key.pem, ca.pem; role portal).
MID_CLIENT = "mid-client"
CONFIG_FILE = "portal.json"
#: The portal's own agency credentials toward the core (あなたの情報: it inquires as an agency).
AGENCY_CLIENT = "agency"


@dataclass(frozen=True)
class PortalConfig:
    data_dir: DataDir
    auth_ca_pem: bytes
    ledger_vkey: str
    agencies: dict[int, str]
    sign_ca_pem: bytes | None = None
    #: Agency id → its agency types (別表第二 types): what あなたの情報 may ask each for.
    agency_types: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PortalConfig:
        data_dir = DataDir(path, SERVICE)
        try:
            doc = json.loads(data_dir.file(CONFIG_FILE).read_text(encoding="utf-8"))
            ca = data_dir.file(CA_FILE).read_bytes()
        except FileNotFoundError as e:
            raise NotInitializedError(f"{e.filename} is missing: run `renkei portal init`") from None
        sign = data_dir.file(SIGN_CA_FILE)
        return cls(data_dir, ca, str(doc["ledger_vkey"]), {int(k): str(v) for k, v in doc["agencies"].items()},
                   sign.read_bytes() if sign.exists() else None,
                   {int(k): tuple(str(t) for t in v) for k, v in doc.get("agency_types", {}).items()})

    def agency_name(self, agency_id: int) -> str:
        return self.agencies.get(agency_id, f"機関 {agency_id}")


def init_data_dir(path: str | os.PathLike[str], *, auth_ca_pem: bytes, ledger_vkey: str,
                  agencies: dict[int, str], sign_ca_pem: bytes | None = None) -> PortalConfig:
    """Create (or complete) the portal's directory; the pinned CA and the config are written once
    and kept (re-pinning is an operator's deliberate edit, not a side effect of init)."""
    if b"BEGIN CERTIFICATE" not in auth_ca_pem:
        raise InvalidArgumentError("the JPKI auth CA must be PEM certificates")
    data_dir = DataDir.init(path, SERVICE)
    if not data_dir.file(CA_FILE).exists():
        write_atomic(data_dir.file(CA_FILE), auth_ca_pem, 0o600)  # every file of a box is private
    if sign_ca_pem is not None and not data_dir.file(SIGN_CA_FILE).exists():
        if b"BEGIN CERTIFICATE" not in sign_ca_pem:
            raise InvalidArgumentError("the JPKI signature CA must be PEM certificates")
        write_atomic(data_dir.file(SIGN_CA_FILE), sign_ca_pem, 0o600)
    if not data_dir.file(CONFIG_FILE).exists():
        doc = {"ledger_vkey": ledger_vkey, "agencies": {str(k): v for k, v in sorted(agencies.items())}}
        write_atomic(data_dir.file(CONFIG_FILE), json.dumps(doc, ensure_ascii=False, indent=1).encode(), 0o600)
    return PortalConfig.open(Path(path))


def add_agencies(path: str | os.PathLike[str], agencies: dict[int, tuple[str, tuple[str, ...]]]) -> None:
    """Name (and type) agencies portal.json does not know yet (a box grown since its init);
    what it has is kept."""
    data_dir = DataDir(path, SERVICE)
    doc = json.loads(data_dir.file(CONFIG_FILE).read_text(encoding="utf-8"))
    names, types = doc.setdefault("agencies", {}), doc.setdefault("agency_types", {})
    changed = False
    for agency_id, (name, kinds) in sorted(agencies.items()):
        if str(agency_id) not in names:
            names[str(agency_id)], changed = name, True
        if str(agency_id) not in types:
            types[str(agency_id)], changed = list(kinds), True
    if changed:
        write_atomic(data_dir.file(CONFIG_FILE), json.dumps(doc, ensure_ascii=False, indent=1).encode(), 0o600)


__all__ = ["AGENCY_CLIENT", "PortalConfig", "add_agencies", "init_data_dir"]
