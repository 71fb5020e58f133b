"""The log's side of C2SP tlog-witness: submit a checkpoint to a witness, read its answer.

A 200 answer's lines are checked here: the witness's own lines (its name and cosignature/v1 key
id) must verify over the checkpoint's text with its verifier key, others are ignored (spec:
"the client MUST ignore any cosignatures from unknown keys"). A 409 answer carries the size the
witness holds (``text/x.tlog.size``). Everything else is a refusal with its status.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from renkei.errors import InvalidArgumentError, NoteError
from renkei.witness.note import COSIGNATURE_V1, Signature, Verifier


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log submits to: its submission URL prefix and its verifier key."""

    url: str
    verifier: Verifier

    @classmethod
    def parse(cls, value: str) -> WitnessEndpoint:
        """``URL=VKEY`` (split at the first '='; the URL has none), e.g.
        ``http://127.0.0.1:50055=ppc.example/w1+1234abcd+BA…``."""
        url, sep, vkey = value.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"a witness is URL=VKEY with an http(s) URL, got {value!r}")
        v = Verifier.parse(vkey)
        if v.sig_type != COSIGNATURE_V1:
            raise InvalidArgumentError("a witness's verifier key is a cosignature/v1 (0x04) key")
        return cls(url.rstrip("/"), v)

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def vkey(self) -> str:
        return str(self.verifier)


@dataclass(frozen=True)
class Cosigned:
    """The witness cosigned: its verified line(s) and their timestamp (the newest)."""

    lines: str
    timestamp: int


@dataclass(frozen=True)
class Conflict:
    """409: the witness holds ``size`` for this log; resubmit from it."""

    size: int | None  # None when the answer carried no size (not per spec)


@dataclass(frozen=True)
class Refused:
    status: int
    message: str


Outcome = Cosigned | Conflict | Refused


def request_body(old: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def read_cosignatures(witness: WitnessEndpoint, text: str, answer: bytes) -> Cosigned:
    """The witness's lines of a 200 answer, each verified; raises :class:`NoteError`."""
    try:
        decoded = answer.decode()
    except UnicodeDecodeError:
        raise NoteError("the witness's answer is not UTF-8") from None
    if not decoded.endswith("\n"):
        raise NoteError("the witness's answer is not signature lines")
    mine = []
    for raw in decoded[:-1].split("\n"):
        try:
            sig = Signature.parse_line(raw)
        except InvalidArgumentError as e:
            raise NoteError(f"the witness's answer has a malformed line: {e}") from None
        if (sig.name, sig.key_id) == (witness.verifier.name, witness.verifier.key_id):
            ts = witness.verifier.verify(text, sig.sig)
            assert ts is not None
            mine.append((ts, sig.line))
    if not mine:
        raise NoteError(f"the answer carries no cosignature of {witness.name}")
    return Cosigned("".join(line for _, line in mine), max(ts for ts, _ in mine))


async def submit(client: httpx.AsyncClient, witness: WitnessEndpoint, old: int, proof: list[bytes],
                 note: str, text: str) -> Outcome:
    """POST <url>/add-checkpoint; raises ``httpx.HTTPError`` when the witness cannot be reached."""
    r = await client.post(f"{witness.url}/add-checkpoint", content=request_body(old, proof, note))
    if r.status_code == 200:
        try:
            return read_cosignatures(witness, text, r.content)
        except NoteError as e:
            return Refused(200, f"unusable answer: {e}")
    if r.status_code == 409:
        body = r.content.decode(errors="replace")
        if r.headers.get("content-type", "").split(";")[0].strip() == "text/x.tlog.size" and body.endswith("\n") \
                and body[:-1].isdigit():
            return Conflict(int(body[:-1]))
        return Conflict(None)
    return Refused(r.status_code, r.content.decode(errors="replace").strip()[:200])


__all__ = ["Conflict", "Cosigned", "Outcome", "Refused", "WitnessEndpoint", "read_cosignatures", "request_body",
           "submit"]
