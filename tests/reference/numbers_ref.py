"""Slow, obviously-correct references for the identifiers and J-LIS's FF1 conversion.

Written straight from the texts, digit by digit, with no tables and no shortcuts, so the Rust
engine can be tested against them. AES comes from the `cryptography` package (OpenSSL), an
implementation independent of the engine's `aes` crate.
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def individual_check_digit(body: str) -> int:
    """平成26年総務省令第85号 第5条: 11 − (Σ Pn×Qn mod 11); 0 when the remainder is ≤ 1."""
    assert len(body) == 11 and body.isdigit()
    total = 0
    for n in range(1, 12):
        p = int(body[11 - n])  # Pn: n-th digit from the right
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_individual(number: str) -> bool:
    return len(number) == 12 and number.isdigit() and individual_check_digit(number[:11]) == int(number[11])


def corporate_check_digit(base: str) -> int:
    """平成26年財務省令第70号 第2条: 9 − (Σ Pn×Qn mod 9), Qn = 1 (n odd) / 2 (n even)."""
    assert len(base) == 12 and base.isdigit()
    total = 0
    for n in range(1, 13):
        p = int(base[12 - n])
        q = 1 if n % 2 == 1 else 2
        total += p * q
    return 9 - total % 9


def is_valid_corporate(number: str) -> bool:
    return len(number) == 13 and number.isdigit() and corporate_check_digit(number[1:]) == int(number[0])


def resident_check_digit(body: str) -> int:
    """The hypothesised 住民票コード rule: the My Number rule over a 10-digit body."""
    assert len(body) == 10 and body.isdigit()
    total = 0
    for n in range(1, 11):
        p = int(body[10 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid_resident(code: str) -> bool:
    return len(code) == 11 and code.isdigit() and resident_check_digit(code[:10]) == int(code[10])


def _aes(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _num(digits: list[int], radix: int) -> int:
    x = 0
    for d in digits:
        x = x * radix + d
    return x


def _str(x: int, radix: int, m: int) -> list[int]:
    out = [0] * m
    for i in range(m - 1, -1, -1):
        out[i] = x % radix
        x //= radix
    return out


def ff1_encrypt(key: bytes, tweak: bytes, radix: int, x: list[int]) -> list[int]:
    """NIST SP 800-38G Algorithm 7, step by step."""
    n = len(x)
    t = len(tweak)
    u = n // 2
    v = n - u
    a, b = x[:u], x[u:]
    bb = math.ceil(math.ceil(v * math.log2(radix)) / 8)
    d = 4 * math.ceil(bb / 4) + 4
    p = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big") + t.to_bytes(4, "big")
    for i in range(10):
        q = tweak + bytes((-t - bb - 1) % 16) + bytes([i]) + _num(b, radix).to_bytes(bb, "big")
        # PRF = CBC-MAC with a zero IV over P || Q.
        r = bytes(16)
        data = p + q
        for j in range(0, len(data), 16):
            r = _aes(key, bytes(c ^ k for c, k in zip(r, data[j : j + 16], strict=True)))
        s = r
        k = 1
        while len(s) < d:
            s += _aes(key, bytes(c ^ k2 for c, k2 in zip(r, k.to_bytes(16, "big"), strict=True)))
            k += 1
        y = int.from_bytes(s[:d], "big")
        m = u if i % 2 == 0 else v
        c = (_num(a, radix) + y) % radix**m
        a, b = b, _str(c, radix, m)
    return a + b


def my_number_for(key: bytes, resident_code: str, generation: int) -> str:
    """renkei's J-LIS conversion: FF1(AES-256, tweak = b"JLIS" + generation) + check digit."""
    tweak = b"JLIS" + generation.to_bytes(4, "big")
    body = "".join(map(str, ff1_encrypt(key, tweak, 10, [int(c) for c in resident_code])))
    return body + str(individual_check_digit(body))
