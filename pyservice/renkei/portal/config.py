"""The portal's data directory (``renkei portal init``): what it pins and how it names agencies.

    renkei-service.json     service "portal"
    jpki-auth-ca.pem        the JPKI 利用者証明用 CA(s) a login must chain to (pinned at init)
    portal.json             the core ledger's verifier key (checkpoints), agency names by id

The portal holds no secret key: sessions are random tokens kept in memory (a restart logs
everyone out), and nothing it stores names a person but the core's pseudonym.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PortalConfig:
    data_dir: DataDir
    auth_ca_pem: bytes
    ledger_vkey: str
    agencies: dict[int, str]
    sign_ca_pem: bytes | None = None

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
                   sign.read_bytes() if sign.exists() else None)

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


__all__ = ["PortalConfig", "init_data_dir"]
