"""J-LIS (地方公共団体情報システム機構): the authority that makes, changes and resolves My Numbers.

:class:`NumberAuthority` is the registry; :mod:`renkei.jlis.relay` is its side of code
acquisition (番号法 第21条の2).
"""

from renkei.jlis.authority import NumberAuthority, NumberRecord

__all__ = ["NumberAuthority", "NumberRecord"]
