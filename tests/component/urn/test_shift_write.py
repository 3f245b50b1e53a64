"""`urn shift`'s write, in process: a file changed while it was edited is left alone, a
write that fails leaves no temporary file and exits 1, and a symlink keeps pointing at
the file it names (urn/shift.py)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import pytest

from sim.testing import document_dict
from urn import shift, shiftedit
from urn.config import parse_text

if TYPE_CHECKING:
    from pathlib import Path

CHECKS = [{"slot": 0, "name": "web-b0", "type": "tcp", "host": "127.0.0.1", "port": 9, "az": "b"}]
START = ["start", "--az", "b", "--for", "10m", "--reason", "drill", "--config"]


def main(argv: list[str]) -> int:
    """`urn shift ARGV` in process, without the console script's logging setup."""
    parser = argparse.ArgumentParser(prog="urn shift")
    shift.add_arguments(parser)
    return shift.run(parser.parse_args(argv))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "urn.json"
    path.write_text(json.dumps(document_dict(CHECKS)))
    return path


def test_a_file_changed_while_it_was_edited_is_left_alone(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = shiftedit.edit_text

    def meanwhile(*args: object, **kwargs: object) -> shiftedit.Edited:
        config.write_text(config.read_text() + "\n")  # another operator's edit
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shiftedit, "edit_text", meanwhile)
    assert main([*START, str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"urn shift start: {config} changed while it was edited: run again\n"
    assert parse_text(config.read_text()).shifts == ()
    assert sorted(p.name for p in config.parent.iterdir()) == ["urn.json"]


def test_a_failed_write_exits_1_and_leaves_no_temporary_file(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("urn.shift.os.fsync", full)
    before = config.read_bytes()
    assert main([*START, str(config)]) == 1
    err = capsys.readouterr().err
    assert err == f"urn shift start: cannot write {config}: [Errno 28] No space left on device\n"
    assert config.read_bytes() == before
    assert sorted(p.name for p in config.parent.iterdir()) == ["urn.json"]


def test_a_symlinked_config_stays_a_symlink(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "current.json"
    link.symlink_to(config.name)
    assert main([*START, str(link)]) == 0
    assert capsys.readouterr().out.endswith(f"wrote {link}\n")
    assert link.is_symlink()
    assert [s.az for s in parse_text(config.read_text()).shifts] == ["b"]


def test_a_file_that_is_not_utf8_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "urn.yaml"
    path.write_bytes(b"capacity: 64\n# caf\xe9\n")
    assert main(["list", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"urn shift list: cannot read config from {path}: not UTF-8 text (invalid continuation "
        "byte)\n"
    )
