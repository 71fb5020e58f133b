"""``add-checkpoint`` of C2SP tlog-witness: the witness's checks, in the spec's order.

The request body is ``old <size>\\n``, up to 63 base64 consistency-proof lines, an empty line,
then the signed checkpoint. Each refusal is an error of :mod:`renkei.errors`; the HTTP layer
maps them one to one onto the spec's status codes:

=====================================  ======  ==============================================
error                                  status  when
=====================================  ======  ==============================================
:class:`InvalidArgumentError`          400     malformed body, note or checkpoint; old > size
:class:`UnknownLogError`               404     the origin is not a log the witness trusts
:class:`UntrustedCheckpointError`      403     no trusted key's signature, or one that fails
:class:`CheckpointConflictError`       409     old is not the size last cosigned (body: size)
:class:`InconsistentCheckpointError`   422     bad proof; a proof from old 0; size 0 with a
                                               root other than SHA-256(""); the same size
                                               with another root (a split view)
=====================================  ======  ==============================================

Only when every check passes is the new state stored (compare-and-set, durable) and the
cosignature returned.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from renkei.errors import (
    CheckpointConflictError,
    InconsistentCheckpointError,
    InvalidArgumentError,
    NoteError,
    ProofError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from renkei.ledger import verify_consistency
from renkei.witness.cosignature import CosignatureKey
from renkei.witness.note import ED25519, EMPTY_ROOT, CheckpointBody, SignedNote, Verifier, decode_base64
from renkei.witness.state import LogState, WitnessState

log = logging.getLogger("renkei.witness")

MAX_PROOF_LINES = 63
#: Request bodies above this are refused before parsing (a checkpoint with 100 post-quantum
#: signatures would still fit).
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class TrustedLog:
    """A log the witness follows: its origin and the verifier keys of its checkpoint signers."""

    origin: str
    verifiers: tuple[Verifier, ...]

    @classmethod
    def of(cls, origin: str, vkeys: Iterable[str]) -> TrustedLog:
        vs = tuple(Verifier.parse(k) for k in vkeys)
        if not origin or not vs:
            raise InvalidArgumentError("a trusted log needs an origin and at least one verifier key")
        if any(v.sig_type != ED25519 for v in vs):
            raise InvalidArgumentError("a log's checkpoint key is an Ed25519 (0x01) note key")
        return cls(origin, vs)


@dataclass(frozen=True)
class AddCheckpointRequest:
    old: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpointRequest:
        head, sep, checkpoint = body.partition(b"\n\n")
        if not sep:
            raise InvalidArgumentError("the body is an old size line, proof lines, an empty line and a checkpoint")
        lines = head.split(b"\n")
        first = lines[0]
        if not first.startswith(b"old "):
            raise InvalidArgumentError("the first line is 'old <size>'")
        digits = first[4:]
        if not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0") or int(digits) >= 1 << 64:
            raise InvalidArgumentError("the old size is a decimal without leading zeros")
        proof = lines[1:]
        if len(proof) > MAX_PROOF_LINES:
            raise InvalidArgumentError(f"at most {MAX_PROOF_LINES} consistency proof lines")
        hashes = []
        for p in proof:
            try:
                h = decode_base64(p.decode("ascii"), "a proof line")
            except UnicodeDecodeError:
                raise InvalidArgumentError("a proof line is base64") from None
            if len(h) != 32:
                raise InvalidArgumentError("a proof line is one 32-byte hash")
            hashes.append(h)
        return cls(int(digits), tuple(hashes), checkpoint)


class Witness:
    """A C2SP witness: its key, the logs it trusts, its state."""

    def __init__(self, key: CosignatureKey, logs: Iterable[TrustedLog], state: WitnessState,
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.logs = {t.origin: t for t in logs}
        self.state = state
        self._clock = clock
        self._by_hash = {hashlib.sha256(o.encode()).hexdigest(): o for o in self.logs}

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def vkey(self) -> str:
        return self.key.vkey

    def add_checkpoint(self, body: bytes) -> str:
        """Check and cosign; returns the cosignature line(s). Raises the errors above."""
        if len(body) > MAX_BODY_BYTES:
            raise InvalidArgumentError("request body too large")
        req = AddCheckpointRequest.parse(body)
        note = SignedNote.parse(req.checkpoint)
        cp = CheckpointBody.parse(note.text)
        trusted = self.logs.get(cp.origin)
        if trusted is None:
            raise UnknownLogError("this witness does not follow that log (origin)")
        try:
            verified = note.verify(list(trusted.verifiers))
        except NoteError as e:
            raise UntrustedCheckpointError(f"a trusted key's signature fails: {e}") from None
        if not verified:
            raise UntrustedCheckpointError("no signature of a key trusted for this origin")
        if req.old > cp.size:
            raise InvalidArgumentError(f"old size {req.old} is larger than the checkpoint's size {cp.size}")
        stored = self.state.latest(cp.origin)
        self._check_consistency(cp, req, stored)
        # Only the log signatures that verified go into the stored (monitoring) checkpoint.
        kept = {(v.name, v.key_id) for v, _ in verified}
        log_lines = "".join(s.line for s in note.signatures if (s.name, s.key_id) in kept)
        timestamp = max(1, int(self._clock()))
        line = self.key.cosign(note.text, timestamp)
        self.state.compare_and_set(cp.origin, stored, cp.size, cp.root, note.text + "\n" + log_lines + line)
        return line

    def _check_consistency(self, cp: CheckpointBody, req: AddCheckpointRequest, stored: LogState | None) -> None:
        size = 0 if stored is None else stored.size
        if req.old != size:
            raise CheckpointConflictError(f"the witness's size is {size}, not {req.old}", size)
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            raise InconsistentCheckpointError("a checkpoint of size 0 has the root of the empty tree")
        if req.old == 0:
            if req.proof:
                raise InconsistentCheckpointError("from old size 0 the consistency proof is empty")
            return
        assert stored is not None
        if cp.size == req.old and cp.root != stored.root:
            log.error("SPLIT VIEW: log %r signed two roots for size %d (witness keeps the first)", cp.origin, cp.size)
            raise InconsistentCheckpointError(
                f"the witness cosigned another root for size {cp.size}: the log shows a split view")
        try:
            verify_consistency(req.old, cp.size, stored.root, cp.root, list(req.proof))
        except ProofError:
            log.error("INCONSISTENT: log %r size %d is not consistent with the cosigned size %d",
                      cp.origin, cp.size, req.old)
            raise InconsistentCheckpointError(
                f"the consistency proof from {req.old} to {cp.size} does not verify") from None

    def monitoring_checkpoint(self, origin_hash: str) -> str | None:
        """The latest cosigned checkpoint of the log whose origin hashes (SHA-256, lower-case hex)
        to ``origin_hash`` (the spec's monitoring endpoint); None when never cosigned."""
        origin = self._by_hash.get(origin_hash)
        if origin is None:
            return None
        stored = self.state.latest(origin)
        return None if stored is None else stored.note


__all__ = ["MAX_PROOF_LINES", "AddCheckpointRequest", "TrustedLog", "Witness"]
