"""The wire contract's message classes under short public names (``proto/renkei/v1/``).

    from renkei import proto
    proto.linkage.InquireRequest(...)        # renkei.v1 LinkageService messages
    proto.numbers.RegisterTestPopulationRequest(count=10, seed=1)
    proto.intermediate.MidInquireRequest(...)  # an intermediate server's business API

The generated modules live in ``renkei._proto`` (protoc names them after the proto path); import
them from here.
"""

from renkei._proto.renkei.v1 import admin_service_pb2 as admin
from renkei._proto.renkei.v1 import corporate_number_service_pb2 as corporate
from renkei._proto.renkei.v1 import disclosure_service_pb2 as disclosure
from renkei._proto.renkei.v1 import intermediate_service_pb2 as intermediate
from renkei._proto.renkei.v1 import linkage_service_pb2 as linkage
from renkei._proto.renkei.v1 import number_service_pb2 as numbers
from renkei._proto.renkei.v1 import oversight_service_pb2 as oversight
from renkei._proto.renkei.v1 import person_link_service_pb2 as person_link
from renkei._proto.renkei.v1 import provision_service_pb2 as provision

__all__ = ["admin", "corporate", "disclosure", "intermediate", "linkage", "numbers", "oversight", "person_link",
           "provision"]
