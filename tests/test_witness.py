"""The witness's domain without HTTP: cosignature/v1 against an independent vector, signed
notes against the Go sumdb / C2SP vectors, and add-checkpoint's checks on a real state file."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from renkei.errors import (
    CheckpointConflictError,
    InconsistentCheckpointError,
    InvalidArgumentError,
    NoteError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from renkei.witness.cosignature import CosignatureKey
from renkei.witness.note import CheckpointBody, SignedNote, Verifier
from renkei.witness.protocol import TrustedLog, Witness
from renkei.witness.state import WitnessState
from tests.tlog_witness_spec import SpecLog, body

VECTORS = json.loads((Path(__file__).parent / "data" / "tlog-vectors" / "signed-note-vectors.json").read_text())

# The spec's example checkpoint (tlog-cosignature) and a cosignature over it made by an
# independent implementation (recorded in the project's research notes): name, seed =
# SHA-256("renkei test witness seed"), time 1679315147.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
VECTOR_NAME = "witness.example/ppc"
VECTOR_VKEY = "witness.example/ppc+7365b796+BO7rIgLWrGcJrJV8s9Sl/FbkmyLUIs1mA3dqSgO4B4OO"
VECTOR_LINE = ("— witness.example/ppc c2W3lgAAAABkGFDLU+hSdmbtdLcagn0POLDUfbC79FLvbuEiSjwbntbpQVUPn2w2/uDG8J"
               "venAEp6Dwbk20lZ2aCpzMI4p3PHmw5Dg==\n")


def test_cosignature_v1_matches_the_independent_vector() -> None:
    key = CosignatureKey(VECTOR_NAME, hashlib.sha256(b"renkei test witness seed").digest())
    assert key.vkey == VECTOR_VKEY
    line = key.cosign(SPEC_TEXT, 1679315147)
    assert line == VECTOR_LINE
    # The timestamp bytes are those of the spec's own example line (…AAAABkGFDL…).
    assert base64.b64decode(line.split()[-1])[4:12] == (1679315147).to_bytes(8, "big")
    note = SignedNote.parse((SPEC_TEXT + "\n" + line).encode())
    [(v, ts)] = note.verify([Verifier.parse(VECTOR_VKEY)])
    assert ts == 1679315147 and v.sig_type == 0x04
    # The same bytes under another time, or over another text, do not verify.
    for text, t in ((SPEC_TEXT, 1679315148), (SPEC_TEXT.replace("20852163", "20852164"), 1679315147)):
        raw = base64.b64decode(line.split()[-1])
        forged = raw[:4] + t.to_bytes(8, "big") + raw[12:]
        bad = SignedNote.parse(f"{text}\n— {VECTOR_NAME} {base64.b64encode(forged).decode()}\n".encode())
        with pytest.raises(NoteError):
            bad.verify([Verifier.parse(VECTOR_VKEY)])
    with pytest.raises(InvalidArgumentError):
        key.cosign(SPEC_TEXT, 0)


def test_signed_note_vectors() -> None:
    for v in VECTORS["vectors"]:
        verifier = Verifier.parse(v["vkey"])
        assert str(verifier) == v["vkey"]
        if "signature_line" in v:
            note = SignedNote.parse((v["note_text"] + "\n" + v["signature_line"]).encode())
            [(got, ts)] = note.verify([verifier])
            assert got == verifier and ts is None
    spec = next(v for v in VECTORS["vectors"] if "signed_note" in v and v["name"].startswith("C2SP"))
    assert SignedNote.parse(spec["signed_note"].encode()).verify([Verifier.parse(spec["vkey"])])
    good = VECTORS["vectors"][0]["vkey"]
    for cut in range(len(good)):
        with pytest.raises(NoteError):
            Verifier.parse(good[:cut])


def test_malformed_notes_and_checkpoints_are_refused() -> None:
    dash = "\u2014".encode()
    for bad in (b"no signatures\n", b"text\n\n" + dash + b" x\n", b"text\n\nsig\n",
                b"te\x01xt\n\n" + dash + b" a AAAAAAA=\n", b"text\n\n" + dash + b" a AAAA\n",
                b"text\n\n" + dash + b" a AAAAAAA=", b"\xff\n\n" + dash + b" a AAAAAAA=\n"):
        with pytest.raises(InvalidArgumentError):
            SignedNote.parse(bad)
    for text in ("o\n1\n", "o\n01\nAAAA\n", "o\n-1\n" + "A" * 43 + "=\n", "\n1\n" + "A" * 43 + "=\n",
                 "o\n1\nAAAA\n", "o\n1\n" + "A" * 43 + "=\n\n"):
        with pytest.raises(InvalidArgumentError):
            CheckpointBody.parse(text)
    assert CheckpointBody.parse("o\n18446744073709551615\n" + "A" * 43 + "=\next\n").size == 2**64 - 1


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    from renkei.service.witness import init_data_dir

    d = init_data_dir(tmp_path / "w", "w.test/one")
    logs = [SpecLog("a.test/log", b"a" * 32), SpecLog("b.test/log", b"b" * 32)]
    return Witness(CosignatureKey("w.test/one", d.secret_key("witness-key")),
                   [TrustedLog.of(lg.origin, [lg.vkey]) for lg in logs], WitnessState(d), clock=lambda: 1700000000.5)


def test_add_checkpoint_checks_in_order(witness: Witness) -> None:
    a = SpecLog("a.test/log", b"a" * 32)
    a.append(4)
    with pytest.raises(UnknownLogError):
        witness.add_checkpoint(body(0, [], SpecLog("c.test/log", b"c" * 32).checkpoint(0)))
    with pytest.raises(UntrustedCheckpointError):
        witness.add_checkpoint(body(0, [], a.text(4) + "\n" + a.sign(a.text(4), corrupt=True)))
    with pytest.raises(InvalidArgumentError):
        witness.add_checkpoint(body(5, [], a.checkpoint(4)))
    line = witness.add_checkpoint(body(0, [], a.checkpoint(4)))
    [(_, ts)] = SignedNote.parse((a.checkpoint(4) + line).encode()).verify([witness.key.verifier])
    assert ts == 1700000000
    with pytest.raises(CheckpointConflictError) as conflict:
        witness.add_checkpoint(body(3, a.proof(3, 4), a.checkpoint(4)))
    assert conflict.value.size == 4
    with pytest.raises(InconsistentCheckpointError):
        witness.add_checkpoint(body(4, [], a.checkpoint(4, root=bytes(32))))
    # Another log's state is its own.
    b = SpecLog("b.test/log", b"b" * 32)
    b.append(2)
    witness.add_checkpoint(body(0, [], b.checkpoint(2)))
    assert [(s.origin, s.size) for s in witness.state.all()] == [("a.test/log", 4), ("b.test/log", 2)]


def test_trusted_logs_take_ed25519_note_keys_only() -> None:
    key = CosignatureKey("w.test/one", bytes(32))
    with pytest.raises(InvalidArgumentError):
        TrustedLog.of("a.test/log", [key.vkey])
    with pytest.raises(NoteError):
        TrustedLog.of("a.test/log", ["not a key"])
