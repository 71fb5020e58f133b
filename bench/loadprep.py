"""Preparing a load run: the population, the agencies' codes and the corporations, all real.

Used by ``bench.load`` (the orchestrator) and read by ``bench.locustfile`` and the grpc.aio
driver. Everything the load touches exists before the clock starts:

* corporations are assigned through ``CorporateNumberRegistry`` in the box's NTA data directory
  before the NTA starts (public look-ups then find real records);
* the residents are registered by J-LIS over gRPC (``NumberService.RegisterTestPopulation`` of
  a J-LIS started with ``--demo``, 100,000 a call), the same path a deployment uses;
* every demo agency in the mix acquires codes for the whole population over gRPC with its own
  certificate (``renkei.client.acquire_codes``: ``ReserveAcquisitionNumbers`` at the core,
  ``RelayAcquisitions`` at J-LIS, ``CollectCodes`` at the core; 100,000 a round), so each
  inquiry names a held person whose provider holds them too: the load is all real work, none of
  it refused.

The result is a small JSON file (the core's, J-LIS's and the NTA's endpoints, the box's PKI
directory and CA) plus ``.npy`` arrays in the run's temporary directory; the locust processes
find it through the ``RENKEI_BENCH_PREP`` environment variable.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from renkei import client
from renkei.mid.sealing import new_recipient_key
from renkei.proto import linkage as lpb
from renkei.proto import numbers as npb

CODE_BYTES = 16
MAX_PER_CALL = 100_000


@dataclass(frozen=True)
class InquiryPlan:
    """One 別表第二 combination the load asks: requester, affair (事務), provider and items."""

    requester: int
    affair: str
    provider: int
    items: tuple[str, ...]
    row: str  # the 別表第二 row that permits it, for the report


#: Combinations permitted by the bundled 2015 別表第二 for the demo agencies of ``renkei up --demo``
#: (1 千代田区長, 2 横浜市長: municipal_mayor; 3 日本年金機構; 5 全国健康保険協会). Affairs and
#: items by their table ids (the engine also takes the B2.* codes).
INQUIRY_PLANS: dict[str, InquiryPlan] = {
    # 国民健康保険 (項 42): 横浜市 asks 千代田区 (previous address) for local tax information.
    "nhi-local-tax": InquiryPlan(2, "beppyo2-42", 1, ("local_tax_info",), "B2.42.2"),
    # 国民健康保険 (項 42): 横浜市 asks the health insurer about earlier medical insurance.
    "nhi-medical": InquiryPlan(2, "beppyo2-42", 5, ("medical_insurance_benefit_info",), "B2.42.1"),
    # 地方税 (項 27): 千代田区's tax office asks the pension service for pension information.
    "local-tax-pension": InquiryPlan(1, "beppyo2-27", 3, ("pension_benefit_info",), "B2.27.5"),
    # 健康保険 (項 2): the health insurer asks the municipality for local tax information.
    "insurer-local-tax": InquiryPlan(5, "beppyo2-2", 1, ("local_tax_info",), "B2.2.3"),
    # 健康保険 (項 2): the health insurer asks the pension service for pension information.
    "insurer-pension": InquiryPlan(5, "beppyo2-2", 3, ("pension_benefit_info",), "B2.2.4"),
}
#: Locust user classes of ``bench/locustfile.py`` (named here so that the orchestrator need not
#: import the locustfile, which patches the process for gevent): those needing LinkageService,
#: and the public ones.
AGENCY_USERS = ("MunicipalityUser", "MunicipalTaxUser", "HealthInsurerUser", "PensionServiceUser")
PUBLIC_USERS = ("CorporateLookupUser",)
#: Agencies that hold the population (requesters and providers of the plans).
HOLDING_AGENCIES = (1, 2, 3, 5)


def batch_outcome_error(response: lpb.BatchInquireResponse) -> str | None:
    """None when every item was permitted; otherwise what went wrong (a failed request)."""
    outcomes = np.frombuffer(response.outcomes, dtype=np.uint8)
    refused = int(np.count_nonzero(outcomes))
    if refused:
        codes = np.unique(outcomes[outcomes != 0]).tolist()
        return f"{refused} of {outcomes.size} items refused (denial codes {codes})"
    return None


def acquisition_error(statuses: bytes | npt.NDArray[np.uint8], expected: int) -> str | None:
    """None when all ``expected`` codes were issued (AcquisitionStatus 0 each); otherwise what
    went wrong (a failed request: the population is J-LIS's own)."""
    values = np.frombuffer(statuses, dtype=np.uint8) if isinstance(statuses, bytes) else statuses
    if values.size != expected:
        return f"{values.size} acquisition statuses for {expected} numbers"
    bad = values[values != 0]
    if bad.size:
        return f"{bad.size} of {expected} codes not issued (acquisition statuses {np.unique(bad).tolist()})"
    return None


@dataclass
class Prep:
    """What a load client needs: where the box's services are and the prepared population."""

    core_target: str  # the linkage core's mutual-TLS endpoint (LinkageService)
    jlis_target: str  # J-LIS's mutual-TLS endpoint (NumberService: the acquisitions' relay)
    nta_target: str  # the NTA's public endpoint (CorporateNumberService, no client certificate)
    pki: str  # the box's PKI directory: clients/<principal>/{cert,key,ca}.pem
    ca: str  # the box's CA certificate (server TLS of the public port)
    batch_size: int
    corporate_numbers: list[str]
    linkage: bool
    directory: str
    _numbers: npt.NDArray[np.uint64] | None = field(default=None, repr=False)
    _codes: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict, repr=False)

    def core_channel(self, agency_id: int, *, aio: bool = False) -> client.Channel:
        """Mutual TLS to the core as agency ``agency_id`` (its demo certificate)."""
        return client.agency_channel(agency_id, self.core_target, pki=self.pki, aio=aio)

    def jlis_channel(self, agency_id: int, *, aio: bool = False) -> client.Channel:
        """Mutual TLS to J-LIS as agency ``agency_id`` (RelayAcquisitions takes the agency's certificate)."""
        return client.agency_channel(agency_id, self.jlis_target, pki=self.pki, aio=aio)

    def nta_channel(self, *, aio: bool = False) -> client.Channel:
        """Server TLS to the NTA's public port."""
        return client.public_channel(self.nta_target, ca=self.ca, aio=aio)

    @property
    def numbers(self) -> npt.NDArray[np.uint64]:
        if self._numbers is None:
            self._numbers = np.load(Path(self.directory) / "numbers.npy")
        return self._numbers

    def codes(self, agency_id: int) -> npt.NDArray[np.uint8]:
        """The agency's codes of the population, one row of 16 bytes per person."""
        if agency_id not in self._codes:
            self._codes[agency_id] = np.load(Path(self.directory) / f"codes-{agency_id}.npy")
        return self._codes[agency_id]

    def save(self) -> Path:
        path = Path(self.directory) / "prep.json"
        public = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        path.write_text(json.dumps(public, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Prep:
        values: dict[str, Any] = json.loads(Path(path).read_text())
        return cls(**values)


def assign_corporations(nta_dir: Path, count: int, seed: int) -> list[str]:
    """Assign ``count`` companies (株式会社, Tokyo) in a new NTA data directory before the NTA
    starts (``renkei up`` then only starts it)."""
    from renkei.nta.registry import CorporateNumberRegistry

    rng = random.Random(seed)
    bases = rng.sample(range(10**11, 6 * 10**11), count)  # 会社法人等番号: first digit 1–5
    numbers: list[str] = []
    with CorporateNumberRegistry.init(nta_dir) as registry:
        for i, base in enumerate(bases):
            record = registry.assign(
                name=f"株式会社ベンチマーク{i:05d}", kind="301", base=f"{base:012d}",
                assignment_date="2015-10-05", prefecture_code="13", city_code="101",
                prefecture_name="東京都", city_name="千代田区", street_number=f"霞が関{i % 9 + 1}丁目",
                post_code="1000013",
            )
            numbers.append(record.corporate_number)
    return numbers


def register_population(channel: grpc.Channel, persons: int, seed: int) -> npt.NDArray[np.uint64]:
    """J-LIS registers ``persons`` synthetic residents; returns their My Numbers."""
    stub = client.NumberServiceStub(channel)
    parts = []
    left, call = persons, 0
    while left > 0:
        n = min(left, MAX_PER_CALL)
        r = stub.RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=n, seed=seed * 1_000_003 + call), timeout=300
        )
        parts.append(np.frombuffer(r.individual_numbers, dtype="<u8"))
        left -= n
        call += 1
    numbers = np.unique(np.concatenate(parts))  # seeds are independent: drop any coincidence
    return numbers.astype(np.uint64)


def linkage_available(channel: grpc.Channel) -> bool:
    """Whether the core serves LinkageService (UNIMPLEMENTED before the engines are wired)."""
    try:
        client.LinkageServiceStub(channel).GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=30)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
            return False
        raise
    return True


def acquire_codes(core: grpc.Channel, jlis: grpc.Channel, numbers: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """The calling agency's codes for every number, as an (n, 16) array: ``client.acquire_codes``
    (reserve at the core, relay through J-LIS, collect at the core) over the agency's channels to
    the core and to J-LIS. Any number not issued is an error: the population is J-LIS's own."""
    codes, statuses = client.acquire_codes(
        client.LinkageServiceStub(core), client.NumberServiceStub(jlis), numbers, timeout=300
    )
    problem = acquisition_error(statuses, len(numbers))
    if problem is not None or len(codes) != CODE_BYTES * len(numbers):
        raise RuntimeError(problem or f"{len(codes) // CODE_BYTES} codes for {len(numbers)} numbers")
    return np.frombuffer(codes, dtype=np.uint8).reshape(-1, CODE_BYTES)


def provision_terms() -> lpb.ProvisionTerms:
    """Provision terms as a requester's intermediate server sends them: a fresh X25519 recipient
    key per inquiry (the provider seals its answer to it; the load driver never opens it)."""
    _private, public = new_recipient_key()
    return lpb.ProvisionTerms(recipient_public_key=public)
