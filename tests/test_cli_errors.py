"""Every `renkei` command: on a missing data directory it creates nothing, and every failure is
one line ``renkei: <problem>; <what to do>`` with exit status 1 (2 for usage), never a traceback."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.cli.app import build_parser, main

#: Commands that create by design (and ``serve``, which runs until stopped: tried apart below).
CREATORS = {("up",), ("core", "init"), ("jlis", "init"), ("nta", "init"), ("pki", "init"), ("pki", "issue"),
            ("pki", "issue-service"), ("witness", "init"), ("jpki", "init"), ("card", "issue"), ("ppc", "init"),
            ("mid", "init")}
SERVERS = {("core", "serve"), ("jlis", "serve"), ("nta", "serve"), ("witness", "serve"), ("jpki", "serve"),
           ("ppc", "serve"), ("mid", "serve")}
#: Values for the required arguments of every command (dest → value).
VALUES = {"actor": "ops", "name": "x", "type": "municipal_mayor", "requester_type": "mhlw_minister",
          "provider_type": "municipal_mayor", "affair": "B2.1", "item": "B2.1.2.1", "title": "t",
          "expires_on": "2099-01-01", "approved_on": "2025-01-01", "kind": "101", "core": "127.0.0.1:1",
          "role": "operator", "service": "core", "principal": "operator", "file": "table.json",
          "old": "a.json", "new": "b.json", "token": "v4.public.x", "code": "0" * 26, "date_from": "2024-01-01",
          "date_to": "2024-12-31", "label": "x", "numbers": "621498320257", "codes": "24727059608",
          "number": "621498320257"}


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                           argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, p in subs[0].choices.items():
        yield from _leaves(p, (*path, name))


def _value(a: argparse.Action) -> str:
    if a.choices:
        return str(next(iter(a.choices)))
    return "1" if a.type is int else VALUES.get(a.dest, "1")


def _argv(path: tuple[str, ...], p: argparse.ArgumentParser, missing: Path) -> list[str]:
    argv = list(path)
    for a in p._actions:
        if a.option_strings:
            if a.required:
                argv += [a.option_strings[0], _value(a)]
        elif a.dest != "help":
            argv.append(_value(a))
    dests = {a.dest for a in p._actions}
    if "data_dir" in dests:
        argv += ["--data-dir", str(missing)]
    if "dir" in dests and not ("data_dir" in dests and path == ("ledger", "verify")):  # --dir is the other form
        argv += ["--dir", str(missing)]
    if "pki" in dests:
        argv += ["--pki", str(missing / "pki")]
    return argv


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_no_command_creates_anything_on_a_missing_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("RENKEI_DATA", str(work / "box"))
    missing = work / "missing"
    tried = []
    for path, p in _leaves(build_parser()):
        if path in CREATORS or path in SERVERS:
            continue
        argv = _argv(path, p, missing)
        code = main(argv)
        _, err = capsys.readouterr()
        tried.append(path)
        assert _tree(work) == [], f"renkei {' '.join(argv)} created {_tree(work)}"
        if code != 0:
            assert code == 1, (argv, code, err)
            assert err.startswith("renkei: ") and err.count("\n") == 1, (argv, err)
    assert len(tried) > 40  # every group: up/status, pki, core, jlis, nta, number, corp, agency, codes, …
    for path in SERVERS:  # serve on a missing directory: refused before anything is built
        argv = _argv(path, dict(_leaves(build_parser()))[path], missing)
        r = subprocess.run([sys.executable, "-m", "renkei.cli", *argv], capture_output=True, text=True, timeout=60,
                           cwd=work, env={**os.environ, "RENKEI_DATA": str(work / "box")})
        assert r.returncode == 1 and r.stderr.startswith("renkei: ") and r.stderr.count("\n") == 1, (argv, r.stderr)
        assert _tree(work) == []


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo box, initialised and not running."""
    from renkei.service.up import prepare

    root = tmp_path_factory.mktemp("errors") / "box"
    prepare(root, demo=True)
    return root


def _one_line(code: int, err: str, want: int = 1) -> None:
    assert code == want, err
    assert err.startswith("renkei: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_bad_invocations_get_one_line(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core, jlis = prepared / "core", prepared / "jlis"
    garbage = tmp_path / "garbage-core"
    subprocess.run(["cp", "-a", str(core), str(garbage)], check=True)
    (garbage / "registry.sqlite3").write_bytes(b"this is not sqlite" * 100)
    (garbage / "permissions.sqlite3").write_bytes(b"\x00garbage" * 100)
    no_key = tmp_path / "no-key-core"
    subprocess.run(["cp", "-a", str(core), str(no_key)], check=True)
    (no_key / "keys" / "permit-signing.key").unlink()
    pki_no_key = tmp_path / "pki"
    subprocess.run(["cp", "-a", str(prepared / "pki"), str(pki_no_key)], check=True)
    (pki_no_key / "ca.key").unlink()
    not_json = tmp_path / "table.json"
    not_json.write_text("{ not json")
    cases: list[tuple[list[str], str]] = [
        (["agency", "list", "--data-dir", str(garbage)], "not a usable SQLite database"),
        (["permissions", "versions", "--data-dir", str(garbage)], "not a usable SQLite database"),
        (["permissions", "history", "--data-dir", str(garbage)], "not a usable SQLite database"),
        (["permissions", "install", str(tmp_path / "missing.json"), "--actor", "x", "--data-dir", str(core)],
         "cannot read"),
        (["permissions", "install", str(not_json), "--actor", "x", "--data-dir", str(core)], "not JSON"),
        (["permissions", "diff", str(not_json), str(not_json)], "not JSON"),
        (["permit", "public-key", "--data-dir", str(no_key)], "permit-signing.key is missing"),
        (["pki", "issue", "--role", "operator", "--name", "x", "--dir", str(pki_no_key)], "ca.key is missing"),
        (["pki", "list", "--dir", str(pki_no_key)], "ca.key is missing"),
        (["agency", "list", "--data-dir", str(jlis)], "not of 'core'"),
        (["number", "assign", "24727059608", "--data-dir", str(core)], "not of 'jlis'"),
        (["ledger", "verify", "--data-dir", str(jlis)], "not of 'core'"),
        (["agency", "list", "--data-dir", str(core), "--ready-file", str(tmp_path / "nope.json")], "does not exist"),
        (["agency", "list", "--data-dir", str(core), "--ready-file", str(not_json)], "not JSON"),
        (["agency", "list", "--data-dir", str(core), "--target", "127.0.0.1:1", "--pki", str(prepared / "pki")],
         "does not answer"),
        (["agency", "show", "99", "--data-dir", str(core)], "no agency 99"),
        (["codes", "retire-epoch", "1", "--data-dir", str(core)], "current one"),
        (["permissions", "check", "--requester-type", "x", "--affair", "B2.1", "--provider-type", "y", "--item", "z",
          "--at", "yesterday"], "not an ISO 8601 instant"),
    ]
    for argv, words in cases:
        code = main(argv)
        _, err = capsys.readouterr()
        _one_line(code, err)
        assert words in err, (argv, err)
    # A registry file missing from an initialised directory is reported, never created afresh.
    no_registry = tmp_path / "no-registry-core"
    subprocess.run(["cp", "-a", str(core), str(no_registry)], check=True)
    for name in ("registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"):
        (no_registry / name).unlink(missing_ok=True)
    before = _tree(no_registry)
    for argv in (["agency", "list"], ["codes", "epochs"], ["core", "status"], ["agency", "pias", "1"]):
        code = main([*argv, "--data-dir", str(no_registry)])
        _, err = capsys.readouterr()
        _one_line(code, err)
        assert "registry.sqlite3 is missing" in err and _tree(no_registry) == before, (argv, err)
    for argv in (["agency"], ["nosuch"], ["agency", "show", "one"], ["permissions", "install"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        capsys.readouterr()


def test_serve_on_a_port_in_use_is_one_line(prepared: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        before = _tree(prepared / "nta")
        r = subprocess.run([sys.executable, "-m", "renkei.cli", "nta", "serve", "--data-dir", str(prepared / "nta"),
                            "--port", str(port)], capture_output=True, text=True, timeout=60)
    _one_line(r.returncode, r.stderr)
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr
    assert _tree(prepared / "nta") == before


def test_global_options_work_before_the_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo"
    code = main(["--data-dir", str(missing), "agency", "list"])
    _, err = capsys.readouterr()
    _one_line(code, err)
    assert str(missing) in err and not missing.exists()
    code = main(["--data-dir", str(missing), "status"])
    _, err = capsys.readouterr()
    _one_line(code, err)
    assert main(["--json", "agency", "types"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("{") and "type_id" in first
