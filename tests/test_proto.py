"""The committed generated code matches proto/, and the contract follows its conventions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from renkei._proto.renkei.v1 import (
    admin_service_pb2,
    card_service_pb2,
    corporate_number_service_pb2,
    disclosure_service_pb2,
    linkage_service_pb2,
    number_service_pb2,
    oversight_service_pb2,
    person_info_service_pb2,
    person_link_service_pb2,
    pia_decision_service_pb2,
    pia_review_service_pb2,
)

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    admin_service_pb2,
    card_service_pb2,
    corporate_number_service_pb2,
    disclosure_service_pb2,
    linkage_service_pb2,
    number_service_pb2,
    oversight_service_pb2,
    person_info_service_pb2,
    person_link_service_pb2,
    pia_decision_service_pb2,
    pia_review_service_pb2,
]


def test_generated_code_is_up_to_date() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def test_one_service_per_file_in_package_renkei_v1() -> None:
    names = []
    for module in MODULES:
        assert module.DESCRIPTOR.package == "renkei.v1"
        services = list(module.DESCRIPTOR.services_by_name)
        assert len(services) == 1
        assert module.DESCRIPTOR.name == f"renkei/v1/{_snake(services[0])}.proto"
        names += services
    assert sorted(names) == [
        "AdminService",
        "CardService",
        "CorporateNumberService",
        "DisclosureService",
        "LinkageService",
        "NumberService",
        "OversightService",
        "PersonInfoService",
        "PersonLinkService",
        "PiaDecisionService",
        "PiaReviewService",
    ]


def test_enums_have_unspecified_zero() -> None:
    for module in MODULES:
        enums = list(module.DESCRIPTOR.enum_types_by_name.values())
        for message in module.DESCRIPTOR.message_types_by_name.values():
            enums += message.enum_types
        for enum in enums:
            assert enum.values_by_number[0].name.endswith("UNSPECIFIED"), enum.full_name


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
