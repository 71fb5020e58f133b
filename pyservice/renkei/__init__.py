"""renkei (連携): the information-linkage core of Japan's My Number system.

Integrators start here::

    import renkei
    renkei.numbers.is_valid_individual_number("6214 9832 0257")
    jlis = renkei.NumberAuthority("renkei-data")
    nta = renkei.CorporateNumberRegistry("renkei-data")
    core = renkei.Core("renkei-data")   # agencies, PIAs, 機関別符号, holdings
"""

from __future__ import annotations

from renkei import errors, numbers
from renkei._core import __version__ as _engine_version
from renkei.datadir import DataDir
from renkei.errors import RenkeiError
from renkei.jlis.authority import NumberAuthority
from renkei.linkage.core import Core
from renkei.nta.registry import CorporateNumberRegistry
from renkei.permissions.engine import AgencyFacts, PermissionEngine
from renkei.permits import PermitIssuer, PermitVerifier

__version__ = _engine_version

__all__ = [
    "AgencyFacts",
    "Core",
    "CorporateNumberRegistry",
    "DataDir",
    "NumberAuthority",
    "PermissionEngine",
    "PermitIssuer",
    "PermitVerifier",
    "RenkeiError",
    "__version__",
    "errors",
    "numbers",
]
