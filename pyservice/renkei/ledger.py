"""The provision ledger (情報提供等記録): a tamper-evident record of every inquiry.

Every inquiry the core decides, permitted or denied, becomes a :class:`LedgerRecord`. Records
are leaves of an RFC 6962 / RFC 9162 Merkle tree kept in the C2SP tlog-tiles layout under
``<data dir>/ledger``; each commit publishes a C2SP checkpoint signed with the core's Ed25519
log key. An append returns only when its record, the tiles covering it and a checkpoint
covering it are durable (group commit: concurrent appenders share one flush).

The public files (``checkpoint``, ``tile/``) name no person: each leaf is the record with the
pseudonym replaced by a commitment (record layout 2); the commitment's opening (salt ‖
pseudonym) is private and goes only to whom may see it. The person sees their own records
(:meth:`Ledger.records_for_pseudonym`) with their openings and an inclusion proof each; the PPC
fetches checkpoints, consistency proofs and opened records. Records older than seven years
(施行令 第30条) lose their bodies and openings but keep their hashes (:meth:`Ledger.retention`).

Module-level :func:`verify_inclusion`, :func:`verify_consistency`, :func:`open_note` and
:func:`verify_checkpoint` check proofs and notes from anyone, without a ledger.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from renkei._core import ledger as _l
from renkei.datadir import DataDir, write_atomic
from renkei.errors import InvalidArgumentError, NoteError

DEFAULT_ORIGIN = "renkei.example/ledger"
KEY_NAME = "ledger-log"
RETENTION_YEARS = 7
_EPOCH = date(1970, 1, 1)


def _days(d: date) -> int:
    return (d - _EPOCH).days


def _us(t: datetime) -> int:
    if t.tzinfo is None:
        raise InvalidArgumentError("record time must be timezone-aware")
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


#: 提供 outcome codes (a provision record's ``provision``).
PROVIDED, NO_DATA, PROVIDER_UNAVAILABLE, TIMED_OUT, REFUSED = range(5)
PROVISION_TOKENS = {PROVIDED: "provided", NO_DATA: "no data", PROVIDER_UNAVAILABLE: "provider unavailable",
                    TIMED_OUT: "timed out", REFUSED: "refused by provider"}


@dataclass(frozen=True)
class LedgerRecord:
    """One record of the ledger: a 照会 (inquiry) or the 提供 (provision) that answers one.

    A 照会: ``denied_code`` 0 means permitted (then ``permit_id`` is the permit's 16 bytes); a
    denial has a non-zero code, a short ``reason`` and a zero permit id. Its ``time`` is 照会日時.

    A 提供 (``provision`` set: its outcome code, ``PROVIDED`` … ``REFUSED``) copies the parties,
    affair, items, table version, permit id, person, 不開示 and 委任元 of the 照会 at
    ``inquiry_seq``; its ``time`` is 提供日時, ``reason`` says why it failed, and
    ``ciphertext_sha256`` is the hash of the answer the core relayed (zero when none).

    ``pseudonym`` is the person's 32-byte portal pseudonym, a keyed value the caller computes
    (never a My Number or an agency code). ``withheld`` is the 不開示 flag: the record is not
    shown to the person until ``disclose_after`` (never, when that is ``None``). ``time`` is
    the ledger's clock at append when ``None``. ``seq`` is set on records read back.
    """

    requester: int
    provider: int
    affair: str
    items: Sequence[str]
    table_hash: bytes
    pseudonym: bytes
    permit_id: bytes = bytes(16)
    denied_code: int = 0
    reason: str = ""
    withheld: bool = False
    disclose_after: date | None = None
    time: datetime | None = None
    seq: int | None = None
    #: 委任元: the agency the requester acted for.
    delegator: int | None = None
    provision: int | None = None
    inquiry_seq: int | None = None
    ciphertext_sha256: bytes | None = None

    @property
    def permitted(self) -> bool:
        """A permitted 照会."""
        return self.provision is None and self.denied_code == 0

    @property
    def is_provision(self) -> bool:
        return self.provision is not None

    def to_core(self) -> _l.Record:
        """The engine's immutable record (checked as the layout requires)."""
        return _l.Record(
            seq=self.seq or 0,
            time_us=0 if self.time is None else _us(self.time),
            requester=self.requester,
            provider=self.provider,
            affair=self.affair,
            items=list(self.items),
            table_hash=self.table_hash,
            denied_code=self.denied_code,
            reason=self.reason,
            permit_id=self.permit_id,
            pseudonym=self.pseudonym,
            withheld=self.withheld,
            disclose_after=None if self.disclose_after is None else _days(self.disclose_after),
            delegator=self.delegator,
            provision=None if self.provision is None else (
                self.provision, self.inquiry_seq or 0, self.ciphertext_sha256 or bytes(32)),
        )

    def encode(self) -> bytes:
        """The record in binary layout v1 (docs/arch/ledger.md)."""
        return self.to_core().encode()

    @classmethod
    def from_core(cls, r: _l.Record) -> LedgerRecord:
        return cls(
            requester=r.requester,
            provider=r.provider,
            affair=r.affair,
            items=r.items,
            table_hash=r.table_hash,
            pseudonym=r.pseudonym,
            permit_id=r.permit_id,
            denied_code=r.denied_code,
            reason=r.reason,
            withheld=r.withheld,
            disclose_after=None if r.disclose_after is None else _EPOCH + timedelta(days=r.disclose_after),
            time=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=r.time_us),
            seq=r.seq,
            delegator=r.delegator,
            provision=None if r.provision is None else r.provision[0],
            inquiry_seq=None if r.provision is None else r.provision[1],
            ciphertext_sha256=None if r.provision is None else r.provision[2],
        )

    @classmethod
    def decode(cls, data: bytes, opening: bytes | None = None) -> LedgerRecord:
        """A layout-1 record, or a public leaf (layout 2) with its opening (checked)."""
        return cls.from_core(_l.decode_record(data, opening))

    @classmethod
    def decode_public(cls, leaf: bytes) -> tuple[LedgerRecord, bytes]:
        """A public leaf (layout 2, as the entry bundles hold it) without its opening: the record
        with an all-zero pseudonym, and its 32-byte person commitment. What anyone reading the
        public files (e.g. the commission's audit) sees of a record."""
        r, commitment = _l.decode_public_record(leaf)
        return cls.from_core(r), commitment


def provision_records(inquiries: bytes, first_seq: int, outcome: int, detail: str = "",
                      ciphertext_sha256: bytes = bytes(32), at: datetime | None = None) -> bytes:
    """The 提供 records (packed) answering packed 照会 records whose first is at ``first_seq``:
    one per permitted inquiry (the GIL is released)."""
    at = at or datetime.now(UTC)
    return _l.provision_records(inquiries, first_seq, _us(at), outcome, detail, ciphertext_sha256)


def pack_records(records: Iterable[LedgerRecord | bytes]) -> bytes:
    """The packed batch form: uint16-BE length-prefixed v1 records (as in entry bundles)."""
    return _l.pack_records([r if isinstance(r, bytes) else r.encode() for r in records])


class PackedAppender(Protocol):
    """A ledger driver the inquiry path appends through (renkei.store.pgledger.PgLedger)."""

    def append_packed(self, packed: bytes) -> tuple[int, int, str]: ...


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the C2SP checkpoint body fields and the whole signed note."""

    origin: str
    size: int
    root: bytes
    note: str

    @classmethod
    def from_note(cls, note: str) -> Checkpoint:
        text = note[: note.rindex("\n\n") + 1]
        origin, size, root, _ext = _l.parse_checkpoint(text)
        return cls(origin, size, root, note)


@dataclass(frozen=True)
class Appended:
    first_seq: int
    count: int
    checkpoint: Checkpoint


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    size: int
    leaf_hash: bytes
    hashes: list[bytes]
    root: bytes

    def verify(self) -> None:
        verify_inclusion(self.seq, self.size, self.leaf_hash, self.hashes, self.root)

    def to_dict(self) -> dict[str, object]:
        b64 = base64.b64encode
        return {"seq": self.seq, "size": self.size, "leaf_hash": b64(self.leaf_hash).decode(),
                "proof": [b64(h).decode() for h in self.hashes], "root": b64(self.root).decode()}


@dataclass(frozen=True)
class ConsistencyProof:
    size1: int
    size2: int
    root1: bytes
    root2: bytes
    hashes: list[bytes]

    def verify(self) -> None:
        verify_consistency(self.size1, self.size2, self.root1, self.root2, self.hashes)

    def to_dict(self) -> dict[str, object]:
        b64 = base64.b64encode
        return {"size1": self.size1, "size2": self.size2, "root1": b64(self.root1).decode(),
                "root2": b64(self.root2).decode(), "proof": [b64(h).decode() for h in self.hashes]}


#: Denial codes of the record layout → the reason tokens shown to the commission and the person.
OUTCOME_TOKENS = {
    0: "permitted",
    1: "CODE_REFUSED",
    4: "ROW_NOT_PERMITTED",
    5: "PROVIDER_NOT_HOLDING",
    6: "PROVIDER_UNAVAILABLE",
    7: "REQUESTER_NOT_ELIGIBLE",
    8: "REQUEST_ID_REUSED",
}


def outcome_token(denied_code: int) -> str:
    return OUTCOME_TOKENS.get(denied_code, f"DENIED_{denied_code}")


@dataclass(frozen=True)
class StoredRecord:
    """A record read back from the ledger (opened: with the pseudonym), its public leaf bytes
    (what the tree hashes; the person only as a commitment) and the commitment's opening
    (salt ‖ pseudonym, 48 bytes), which anyone given it can check with :func:`opens`."""

    record: LedgerRecord
    entry: bytes
    opening: bytes = b""

    @property
    def outcome(self) -> str:
        if self.record.provision is not None:
            return PROVISION_TOKENS.get(self.record.provision, f"PROVISION_{self.record.provision}")
        return outcome_token(self.record.denied_code)


@dataclass(frozen=True)
class PersonRecord:
    """One of the person's records: opened, its public leaf, the proof of that leaf, and the
    opening that shows the leaf is about the person."""

    record: LedgerRecord
    entry: bytes
    proof: InclusionProof
    opening: bytes = b""


@dataclass(frozen=True)
class PersonPage:
    """A page of a person's records, newest first. Pass ``next_before`` to get the next page."""

    records: list[PersonRecord]
    next_before: int | None
    checkpoint: Checkpoint


class Ledger:
    """The core's provision ledger in ``<data dir>/ledger``.

    The Ed25519 log key is derived from ``keys/ledger-log.key`` (32 random bytes, mode 0600).
    The origin line names the log; it is fixed when the ledger is created (``ledger/origin``).

    Other services reuse the engine for their own tamper-evident logs: J-LIS's query log, the
    commission's PIA decisions. They pass their data directory, their own ``key_name`` and
    ``origin``, and a ``subdir`` when ``ledger`` is not the name they want.
    """

    def __init__(
        self, data_dir: DataDir | str | os.PathLike[str], origin: str | None = None, wal_limit: int | None = None,
        *, key_name: str = KEY_NAME, subdir: str = "ledger",
    ) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, "core")
        self.path = self.data_dir.subdir(subdir)
        self.origin = _fix_origin(self.path, origin)
        seed = self.data_dir.secret_key(key_name)
        self._l = _l.Ledger(self.path, self.origin, seed, wal_limit)
        self.vkey: str = self._l.vkey()
        vk = self.path / "vkey"
        if not vk.exists():
            write_atomic(vk, (self.vkey + "\n").encode(), 0o600)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, size={self.size})"

    def close(self) -> None:
        """Release the ledger directory (its writer lock). The object is unusable afterwards."""
        self._l.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self._l.size()

    @property
    def appender(self) -> _l.Ledger | PackedAppender:
        """What the inquiry path (renkei._core.inquiry) appends through: the engine ledger here;
        the PostgreSQL driver (renkei.store.pgledger) gives an object with ``append_packed``."""
        return self._l

    def root_at(self, size: int) -> bytes:
        """The root of the tree of ``size`` leaves (at most the ledger's size)."""
        return self._l.root_at(size)

    def min_index(self) -> int:
        """Records below this have no body any more (retention)."""
        return self._l.min_index()

    def index_columns(self, start: int, end: int) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """The oversight index's columns of records ``start..end`` (seq, time, requester,
        provider, denial code, affair), read without the GIL."""
        return self._l.index_columns(start, end)

    def published_at(self) -> float:
        """When the latest checkpoint was published (Unix seconds)."""
        return os.stat(self.path / "checkpoint").st_mtime

    def append(self, record: LedgerRecord) -> int:
        """Append one record; returns its sequence number once it is durable and covered by a
        published checkpoint."""
        seq, _note = self._l.append_one(record.encode())
        return seq

    def append_batch(self, records: Sequence[LedgerRecord] | bytes | np.ndarray) -> Appended:
        """Append many records in one commit: a sequence of :class:`LedgerRecord` or the packed
        form (``bytes`` or a uint8 array, see :func:`pack_records`). The GIL is released."""
        if isinstance(records, np.ndarray) and records.dtype != np.uint8:
            raise InvalidArgumentError(f"packed records must be a uint8 array, got {records.dtype}")
        packed: bytes | np.ndarray = (
            records if isinstance(records, bytes | np.ndarray) else pack_records(records)
        )
        first, count, note = self._l.append_packed(packed)
        return Appended(first, count, Checkpoint.from_note(note))

    def checkpoint(self) -> Checkpoint:
        """The latest published signed checkpoint."""
        return Checkpoint.from_note(self._l.checkpoint())

    def checkpoints(self) -> list[Checkpoint]:
        """The stored checkpoint history, oldest first: every checkpoint at least 256 records
        after the previous stored one (``ledger/checkpoints``), plus the latest, so an auditor
        can fetch an older one and check consistency."""
        return [Checkpoint.from_note(n) for n in self._l.checkpoints()]

    def checkpoint_at(self, size: int) -> Checkpoint:
        """The checkpoint of tree ``size`` when it is stored or the latest; :class:`NotFoundError`
        otherwise."""
        return Checkpoint.from_note(self._l.checkpoint_at(size))

    def get(self, seq: int) -> LedgerRecord | None:
        """Record ``seq`` opened (with the pseudonym), checked against its leaf hash in the tree
        and its opening against its commitment (:class:`LedgerDamageError` naming the file
        otherwise); ``None`` when retention has dropped its body."""
        r = self._l.record(seq)
        return None if r is None else LedgerRecord.from_core(r)

    def stored(self, seqs: Sequence[int]) -> list[StoredRecord]:
        """Records by sequence number, each opened with its public leaf and opening (checked);
        retired ones left out. One scan over the span when it is dense, else one by one."""
        if not seqs:
            return []
        lo, hi = min(seqs), max(seqs) + 1
        if hi - lo < 4 * len(seqs) + 256:
            leaves, opens = self._l.entries(lo, hi), self._l.openings(lo, hi)
            pairs = [(leaves[s - lo], opens[s - lo]) for s in seqs]
        else:
            pairs = [(self._l.entry(s), self._l.openings(s, s + 1)[0]) for s in seqs]
        return [StoredRecord(LedgerRecord.decode(e, o), bytes(e), bytes(o)) for e, o in pairs
                if e is not None and o is not None]

    def prove_inclusion(self, seq: int, size: int | None = None) -> InclusionProof:
        """Inclusion proof of record ``seq`` in the tree of ``size`` (default: latest)."""
        size = self.size if size is None else size
        hashes = self._l.inclusion_proof(seq, size)
        entry = self._l.entry(seq)
        leaf = _l.leaf_hash(entry) if entry is not None else self._leaf_from_tree(seq)
        return InclusionProof(seq, size, leaf, hashes, self._l.root_at(size))

    def _leaf_from_tree(self, seq: int) -> bytes:
        # Body retired: the leaf hash is still in the level-0 tile.
        tile = self.path / "tile" / "0" / _index_path(seq // 256)
        data = tile.read_bytes()
        k = seq % 256
        return data[k * 32 : k * 32 + 32]

    def prove_consistency(self, old: int, new: int | None = None) -> ConsistencyProof:
        """Consistency proof between the trees of ``old`` and ``new`` (default: latest) leaves."""
        new = self.size if new is None else new
        hashes = self._l.consistency_proof(old, new)
        return ConsistencyProof(old, new, self._l.root_at(old), self._l.root_at(new), hashes)

    def records_for_pseudonym(
        self, pseudonym: bytes, page_size: int = 50, before: int | None = None, today: date | None = None
    ) -> PersonPage:
        """The person's records, newest first, ``page_size`` per page, each with an inclusion
        proof against the latest checkpoint. 不開示 records are held back until their
        disclose-after date (``today`` defaults to the local date)."""
        if page_size < 1:
            raise InvalidArgumentError("page_size must be at least 1")
        today = date.today() if today is None else today
        recs, next_before, note = self._l.records_for_pseudonym(pseudonym, before, page_size, _days(today))
        cp = Checkpoint.from_note(note)
        out = [
            PersonRecord(LedgerRecord.decode(e, o), e,
                         InclusionProof(seq, cp.size, _l.leaf_hash(e), proof, cp.root), o)
            for seq, e, o, proof in recs
        ]
        return PersonPage(out, next_before, cp)

    def retention(self, now: datetime | None = None, years: int = RETENTION_YEARS) -> int:
        """Drop the bodies of records older than ``years`` (施行令 第30条: 7), keeping their
        hashes so the tree and every proof stay valid. Safe to interrupt and rerun. Returns the
        number of record bodies dropped by this call."""
        return self._l.retain(retention_cutoff_us(now, years))

    def verify(self) -> dict[str, int]:
        """Recompute everything from the files; raises :class:`~renkei.errors.LedgerDamageError`
        naming the first damaged record or file."""
        return verify_ledger_dir(self.path, self.vkey)


def retention_cutoff_us(now: datetime | None = None, years: int = RETENTION_YEARS) -> int:
    """The time (µs since 1970) before which records are past retention at ``now``."""
    now = datetime.now(UTC) if now is None else now
    try:
        cutoff = now.replace(year=now.year - years)
    except ValueError:  # 29 February
        cutoff = now.replace(year=now.year - years, day=28)
    return _us(cutoff)


def open_ledger(data_dir: DataDir, origin: str | None = None, *, background: bool = True) -> Ledger:
    """The core's ledger on the store ``data_dir`` is bound to (docs/arch/store.md): the files
    (default) or PostgreSQL (``store.conninfo``: renkei.store.pgledger; its tiles in the object
    store ``tiles.url`` names, when bound: renkei.store.objects). ``background``: a
    PostgreSQL ledger runs its integrator in a thread (a read-only tool passes False)."""
    from renkei.store import store_conninfo

    conninfo = store_conninfo(data_dir)
    if conninfo is None:
        return Ledger(data_dir, origin)
    from renkei.store import tile_store
    from renkei.store.pgledger import PgLedger

    return PgLedger(data_dir, conninfo, origin, background=background, tiles=tile_store(data_dir))


def _index_path(n: int) -> str:
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def _fix_origin(path: Path, origin: str | None) -> str:
    f = path / "origin"
    if f.exists():
        stored = f.read_text().strip()
        if origin is not None and origin != stored:
            raise InvalidArgumentError(f"this ledger's origin is {stored!r}, not {origin!r}")
        return stored
    origin = origin or os.environ.get("RENKEI_LEDGER_ORIGIN", DEFAULT_ORIGIN)
    _l.vkey_for(origin, bytes(32))  # validates the name
    write_atomic(f, (origin + "\n").encode(), 0o600)
    return origin


def ledger_vkey(data_dir: DataDir, *, key_name: str = KEY_NAME, subdir: str = "ledger") -> tuple[Path, str]:
    """(ledger directory, verifier key) of a data directory's ledger, without opening it."""
    path = data_dir.path / subdir
    origin_file = path / "origin"
    if not origin_file.exists():
        raise InvalidArgumentError(f"no ledger in {data_dir.path}")
    return path, _l.vkey_for(origin_file.read_text().strip(), data_dir.secret_key(key_name))


def verify_ledger_dir(path: str | os.PathLike[str], vkey: str) -> dict[str, int]:
    """The operator's check of its ledger directory, read-only (no recovery): every public and
    private file; raises ``LedgerDamageError`` naming the first damaged record or file."""
    return dict(_l.verify_dir(Path(path), vkey))


def verify_log_dir(
    path: str | os.PathLike[str], vkey: str, origin: str | None = None, renkei: bool | None = None
) -> dict[str, int]:
    """Verify any C2SP tlog-tiles log from its verifier key alone (a public copy of the ledger,
    or another log): the signed checkpoint, every entry bundle's leaf hashes, every tile, the
    root. Entries are checked as renkei records when ``renkei`` (default: when the directory
    has renkei's ``format`` file); private files are checked when present. ``origin`` is the
    checkpoint's origin line (default: the key's name). Raises ``LedgerDamageError``."""
    return dict(_l.verify_public(Path(path), vkey, origin, renkei))


def opens(leaf: bytes, opening: bytes) -> bool:
    """Whether ``opening`` (salt ‖ pseudonym) opens the person commitment of a public leaf."""
    return _l.opens(leaf, opening)


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check an RFC 9162 inclusion proof; raises :class:`~renkei.errors.ProofError`."""
    _l.verify_inclusion(index, size, leaf_hash, list(proof), root)


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check an RFC 9162 consistency proof; raises :class:`~renkei.errors.ProofError`.
    A proof from size 0 is always refused; equal sizes need an empty proof and equal roots."""
    _l.verify_consistency(size1, size2, root1, root2, list(proof))


def open_note(note: str | bytes, vkeys: Sequence[str]) -> str:
    """Open a C2SP signed note: its text when a known key signed it and no known key's
    signature fails. Raises :class:`~renkei.errors.NoteError`."""
    return _l.open_note(note.encode() if isinstance(note, str) else note, list(vkeys))


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """(name, key id, Ed25519 public key) of a note verifier key; raises ``NoteError``."""
    return _l.parse_vkey(vkey)


def sign_note(text: str, skey: str) -> str:
    """Sign ``text`` with a Go-format ``PRIVATE+KEY+…`` Ed25519 note key."""
    return _l.sign_note(text, skey=skey)


def verify_checkpoint(note: str | bytes, vkey: str, origin: str | None = None) -> Checkpoint:
    """Open a signed checkpoint with the log's verifier key; checks the origin line."""
    raw = note.encode() if isinstance(note, str) else note
    text = open_note(raw, [vkey])
    cp_origin, size, root, _ext = _l.parse_checkpoint(text)
    want = origin or parse_vkey(vkey)[0]
    if cp_origin != want:
        raise NoteError(f"checkpoint origin {cp_origin!r} is not {want!r}")
    return Checkpoint(cp_origin, size, root, raw.decode())
