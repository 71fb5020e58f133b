"""Locust users for a running renkei box: agencies over mutual TLS and public look-ups.

    RENKEI_BENCH_PREP=/path/prep.json locust -f bench/locustfile.py --headless ...

Normally started by ``python -m bench.load``, which prepares the population, writes the
preparation file (``bench.loadprep``) and picks the user classes. Following the locust gRPC
example (stack.md §2): grpc is patched for gevent before any channel exists, each simulated
user owns its channels and sync stubs — an agency's to the linkage core and to J-LIS with its
client certificate, and one to the NTA's public port (no certificate) — and every call fires one
locust request event with its outcome. A code acquisition is three calls (ReserveAcquisitionNumbers
at the core, RelayAcquisitions at J-LIS, CollectCodes at the core) and fires one event,
``AcquireCode``, for the three together. A BatchInquire whose items are not all permitted, or an
acquisition not issued, counts as a failure: the prepared population holds every person at both
ends, so a refusal means the box got something wrong.

Users, each a closed loop (the next call leaves when the answer arrives), with the 別表第二
combinations of ``bench.loadprep.INQUIRY_PLANS``:

* ``MunicipalityUser`` — 横浜市長 (agency 2), 国民健康保険 (項 42): asks 千代田区 for local tax
  information one person at a time (窓口), asks 全国健康保険協会 in batches, and acquires codes
  for new residents (転入).
* ``MunicipalTaxUser`` — 千代田区長's tax office (agency 1), 地方税 (項 27): asks 日本年金機構
  for pension information singly and in batches (年金からの特別徴収), and looks up 法人番号 of
  companies (法人住民税). The local tax office is the tax administration that uses the linkage:
  the demo agencies have no 国税庁 certificate and the 2015 別表第二 gives it no requester row.
* ``HealthInsurerUser`` — 全国健康保険協会 (agency 5), 健康保険 (項 2): asks the municipality for
  local tax information (被扶養者認定) and the pension service in batches; acquires codes for new
  members.
* ``PensionServiceUser`` — 日本年金機構 (agency 3): not a requester in the 2015 別表第二 (it
  provides), so its load is code acquisition for new insured persons plus 法人番号 look-ups of
  employers (厚生年金 enrolment).
* ``CorporateLookupUser`` — anyone (banks, businesses, the public) on the NTA's public port:
  the 法人番号 look-up the National Tax Agency publishes.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists (stack.md §2)

import grpc  # noqa: E402
from locust import User, constant, task  # noqa: E402

from bench.loadprep import (  # noqa: E402
    INQUIRY_PLANS,
    InquiryPlan,
    Prep,
    acquisition_error,
    batch_outcome_error,
    provision_terms,
)
from renkei import client  # noqa: E402
from renkei.proto import corporate as cpb  # noqa: E402
from renkei.proto import linkage as lpb  # noqa: E402

TIMEOUT = 30.0
_prep: Prep | None = None


def prep() -> Prep:
    """The preparation file named by RENKEI_BENCH_PREP, loaded once per locust process."""
    global _prep
    if _prep is None:
        path = os.environ.get("RENKEI_BENCH_PREP")
        if not path:
            raise RuntimeError("RENKEI_BENCH_PREP is not set: run through `python -m bench.load`")
        _prep = Prep.load(path)
    return _prep


class RenkeiUser(User):
    """One simulated client with its own channels; subclasses name the principal."""

    abstract = True
    wait_time = constant(0)
    agency_id = 0  # the agency whose certificate the user presents (its plans' requester)
    public = False

    def on_start(self) -> None:
        p = prep()
        # Channels connect on their first call: a user opens only the connections its tasks use.
        self.channels = [p.nta_channel()]
        self.corporate = client.CorporateNumberServiceStub(self.channels[0])
        if not self.public:
            core, jlis = p.core_channel(self.agency_id), p.jlis_channel(self.agency_id)
            self.channels += [core, jlis]
            self.linkage = client.LinkageServiceStub(core)
            self.numbers = client.NumberServiceStub(jlis)

    def on_stop(self) -> None:
        for channel in self.channels:
            channel.close()

    def _call(
        self, name: str, fn: Callable[..., Any], request: Any, check: Callable[[Any], str | None] | None = None,
        length: Callable[[Any], int] = lambda r: int(r.ByteSize()),
    ) -> Any:
        """Call, time and report to locust: one request event per call."""
        start = time.perf_counter()
        response = None
        exception: BaseException | None = None
        try:
            response = fn(request, timeout=TIMEOUT)
            problem = check(response) if check is not None else None
            if problem is not None:
                exception = RuntimeError(problem)
        except grpc.RpcError as e:
            exception = RuntimeError(f"{e.code().name}: {e.details()}")  # type: ignore[attr-defined]
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length(response) if response is not None else 0,
            response=response,
            context=None,
            exception=exception,
        )
        return response

    # -- the calls, shared by the agency users ---------------------------------------------

    def _requester(self, plan: InquiryPlan) -> None:
        if plan.requester != self.agency_id:  # the code must be the caller's own
            raise RuntimeError(f"plan of agency {plan.requester} used by agency {self.agency_id}")

    def inquire(self, plan: InquiryPlan) -> None:
        self._requester(plan)
        codes = prep().codes(plan.requester)
        i = random.randrange(len(codes))
        request = lpb.InquireRequest(
            agency_code=codes[i].tobytes(),
            affair=plan.affair,
            provider_agency_id=plan.provider,
            information_items=list(plan.items),
            request_id=uuid.uuid4().hex, terms=provision_terms(),
        )
        self._call("Inquire", self.linkage.Inquire, request)

    def batch_inquire(self, plan: InquiryPlan) -> None:
        self._requester(plan)
        p = prep()
        codes = p.codes(plan.requester)
        start = random.randrange(len(codes) - p.batch_size + 1)
        request = lpb.BatchInquireRequest(
            agency_codes=codes[start : start + p.batch_size].tobytes(),
            affair=plan.affair,
            provider_agency_id=plan.provider,
            information_items=list(plan.items),
            request_id=uuid.uuid4().hex, terms=provision_terms(),
        )
        self._call(f"BatchInquire[{p.batch_size}]", self.linkage.BatchInquire, request, batch_outcome_error)

    def acquire_code(self) -> None:
        """One code for a random registered resident: reserve at the core, relay through J-LIS
        (as this agency), collect at the core — one locust event for the three calls."""
        numbers = prep().numbers
        i = random.randrange(len(numbers))

        def acquire(request: Any, timeout: float) -> tuple[bytes, Any]:
            return client.acquire_codes(self.linkage, self.numbers, request, timeout=timeout)

        self._call("AcquireCode", acquire, numbers[i : i + 1], lambda r: acquisition_error(r[1], 1),
                   length=lambda r: len(r[0]))

    def corporate_lookup(self) -> None:
        corporations = prep().corporate_numbers
        request = cpb.BatchGetCorporationsRequest(corporate_numbers=random.sample(corporations, 3))
        self._call(
            "BatchGetCorporations",
            self.corporate.BatchGetCorporations,
            request,
            lambda r: None if len(r.corporations) == 3 else f"{len(r.corporations)} of 3 corporations found",
        )


class MunicipalityUser(RenkeiUser):
    weight = 3
    agency_id = 2

    @task(6)
    def local_tax_inquiry(self) -> None:
        self.inquire(INQUIRY_PLANS["nhi-local-tax"])

    @task(1)
    def medical_batch(self) -> None:
        self.batch_inquire(INQUIRY_PLANS["nhi-medical"])

    @task(3)
    def new_resident(self) -> None:
        self.acquire_code()


class MunicipalTaxUser(RenkeiUser):
    weight = 2
    agency_id = 1

    @task(6)
    def pension_inquiry(self) -> None:
        self.inquire(INQUIRY_PLANS["local-tax-pension"])

    @task(1)
    def pension_batch(self) -> None:
        self.batch_inquire(INQUIRY_PLANS["local-tax-pension"])

    @task(3)
    def company_lookup(self) -> None:
        self.corporate_lookup()


class HealthInsurerUser(RenkeiUser):
    weight = 2
    agency_id = 5

    @task(6)
    def dependant_tax_inquiry(self) -> None:
        self.inquire(INQUIRY_PLANS["insurer-local-tax"])

    @task(1)
    def pension_batch(self) -> None:
        self.batch_inquire(INQUIRY_PLANS["insurer-pension"])

    @task(3)
    def new_member(self) -> None:
        self.acquire_code()


class PensionServiceUser(RenkeiUser):
    weight = 1
    agency_id = 3

    @task(3)
    def new_insured(self) -> None:
        self.acquire_code()

    @task(1)
    def employer_lookup(self) -> None:
        self.corporate_lookup()


class CorporateLookupUser(RenkeiUser):
    weight = 1
    public = True

    @task
    def lookup(self) -> None:
        self.corporate_lookup()
