"""Permission tables (番号法 別表第二 and ordinance rows): the engine, installed versions, the converter."""

from renkei.permissions.engine import AgencyFacts, PermissionEngine

__all__ = ["AgencyFacts", "PermissionEngine"]
