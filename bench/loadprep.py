"""Preparing a load run: the population, the agencies' codes and the corporations, all real.

Used by ``bench.load`` (the orchestrator) and read by ``bench.locustfile`` and the grpc.aio
driver. Everything the load touches exists before the clock starts:

* corporations are assigned through ``CorporateNumberRegistry`` on the data directory before the
  server opens it (public look-ups then find real records);
* the residents are registered by J-LIS over gRPC (``NumberService.RegisterTestPopulation``,
  100,000 a call), the same path a deployment uses;
* every demo agency in the mix acquires codes for the whole population over gRPC
  (``LinkageService.AcquireCodes``, 100,000 a call), so each inquiry names a held person whose
  provider holds them too: the load is all real work, none of it refused.

The result is a small JSON file plus ``.npy`` arrays in the run's temporary directory; the
locust processes find it through the ``RENKEI_BENCH_PREP`` environment variable.
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
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb

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


#: Combinations permitted by the bundled 2015 別表第二 for the demo agencies of ``renkei serve``
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


@dataclass
class Prep:
    """What a load client needs: where the server is and the prepared population."""

    target: str
    public_target: str
    data_dir: str
    ca: str
    batch_size: int
    corporate_numbers: list[str]
    linkage: bool
    directory: str
    _numbers: npt.NDArray[np.uint64] | None = field(default=None, repr=False)
    _codes: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict, repr=False)

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


def assign_corporations(data_dir: Path, count: int, seed: int) -> list[str]:
    """Assign ``count`` companies (株式会社, Tokyo) in the registry before the server opens it."""
    from renkei.nta.registry import CorporateNumberRegistry

    rng = random.Random(seed)
    bases = rng.sample(range(10**11, 6 * 10**11), count)  # 会社法人等番号: first digit 1–5
    numbers: list[str] = []
    with CorporateNumberRegistry(str(data_dir)) as registry:
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
    """Whether the server serves LinkageService (UNIMPLEMENTED before the engines are wired)."""
    try:
        client.LinkageServiceStub(channel).GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=30)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
            return False
        raise
    return True


def acquire_codes(channel: grpc.Channel, numbers: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """The calling agency's codes for every number (bulk AcquireCodes), as an (n, 16) array."""
    stub = client.LinkageServiceStub(channel)
    parts = []
    for start in range(0, len(numbers), MAX_PER_CALL):
        chunk = numbers[start : start + MAX_PER_CALL].astype("<u8")
        r = stub.AcquireCodes(lpb.AcquireCodesRequest(individual_numbers=chunk.tobytes()), timeout=300)
        parts.append(np.frombuffer(r.agency_codes, dtype=np.uint8).reshape(-1, CODE_BYTES))
    codes = np.concatenate(parts)
    if len(codes) != len(numbers):
        raise RuntimeError(f"AcquireCodes returned {len(codes)} codes for {len(numbers)} numbers")
    return codes
