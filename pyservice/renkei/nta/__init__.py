"""The National Tax Agency's public corporate-number registry (法人番号, NTA Web-API v4 semantics)."""

from renkei.nta.registry import CorporateNumberRegistry, Corporation, Page

__all__ = ["CorporateNumberRegistry", "Corporation", "Page"]
