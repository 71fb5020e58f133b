"""The `renkei` command line for numbers and corporate numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from renkei.cli.app import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_number_check_exit_codes_and_no_echo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "number", "check", "6214 9832 0257", "5-8356-7825-6246", "24727059608")
    assert code == 0
    assert out.count("OK") == 3 and "個人番号" in out and "法人番号" in out and "住民票コード" in out
    code, out, _ = run(capsys, "number", "check", "621498320257", "621498320258", "12ab", "")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("#1: OK") and "check digit" in lines[1] and "BAD" in lines[2] and "BAD" in lines[3]
    assert "621498320258" not in out and "621498320257" not in out


def test_numbers_from_a_file_stay_off_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "numbers.txt"
    f.write_text("6214 9832 0257\n\n621498320258\n", encoding="utf-8")
    code, out, _ = run(capsys, "number", "check", "--file", str(f))
    assert code == 1 and out.splitlines()[0].startswith("#1: OK") and "BAD" in out.splitlines()[1]
    assert "621498320258" not in out and len(out.splitlines()) == 2
    code, _, err = run(capsys, "number", "check", "--file", str(tmp_path / "missing.txt"))
    assert code == 1 and err.startswith("renkei: cannot read") and err.count("\n") == 1


def test_number_assign_and_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "number", "assign", "24727059608", "--data-dir", str(tmp_path))
    assert code == 1 and "renkei jlis init" in err and not any(tmp_path.iterdir())  # nothing created
    assert run(capsys, "jlis", "init", "--data-dir", str(tmp_path))[0] == 0
    code, out, _ = run(capsys, "number", "assign", "24727059608", "--data-dir", str(tmp_path))
    assert code == 0 and len(out.strip()) == 12
    number = out.strip()
    code, out2, _ = run(capsys, "number", "change", number, "--data-dir", str(tmp_path))
    assert code == 0 and out2.strip() != number
    code, _, err = run(capsys, "number", "change", number, "--data-dir", str(tmp_path))
    assert code == 1 and "already changed" in err
    code, _, err = run(capsys, "number", "assign", "24727059609", "--data-dir", str(tmp_path))
    assert code == 1 and "check digit" in err and "24727059609" not in err


def test_corp_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert run(capsys, "nta", "init", *d)[0] == 0
    code, out, _ = run(capsys, "corp", "assign", "--name", "デジタル庁", "--kind", "101", "--prefecture-code", "13",
                       "--prefecture-name", "東京都", *d)
    assert code == 0
    number = out.strip()
    code, out, _ = run(capsys, "corp", "get", number, *d)
    assert code == 0 and "デジタル庁" in out and number in out
    code, out, _ = run(capsys, "corp", "get", number, "5835678256246", *d)
    assert code == 1
    code, out, err = run(capsys, "corp", "search", "デジタル", "--json", *d)
    assert code == 0 and '"name": "デジタル庁"' in out and "1 found" in err
    code, out, err = run(capsys, "corp", "search", "デジタル", *d)  # people get the columns explained
    header, row = out.splitlines()
    assert header.startswith("法人番号") and "種別 (kind)" in header and "101 国の機関" in row
    assert "columns: 法人番号 = corporate number" in err
    code, out, err = run(capsys, "corp", "changes", "2000-01-01", "2999-12-31", *d)
    assert code == 0 and "1 records" in err
    code, _, err = run(capsys, "corp", "get", "2835678256246", *d)
    assert code == 1 and "check digit" in err


def test_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "renkei"
    result = subprocess.run([str(script), "jlis", "init", "--data-dir", str(tmp_path / "d")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "J-LIS" in result.stdout and (tmp_path / "d" / "keys" / "jlis-number.key").exists()
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("renkei ")
    status = subprocess.run([str(script), "status", "--dir", str(tmp_path / "typo")], capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 1 and not (tmp_path / "typo").exists()
