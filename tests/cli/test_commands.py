"""``roomsignal errors``, ``token`` and ``--help``, run in-process."""

from __future__ import annotations

import json

import pytest

from roomsignal.catalog import entries, render_markdown
from roomsignal.cli import main
from roomsignal.tokens import verify

from .conftest import SECRET


@pytest.mark.parametrize("command", ["demo", "serve", "join", "token", "errors"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: roomsignal {command}" in capsys.readouterr().out


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "serve", "join", "token", "errors"):
        assert command in out


def test_errors_table_lists_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["CODE", "NAME", "CATEGORY"]
    assert len(lines) == 1 + len(entries())
    for line, entry in zip(lines[1:], entries(), strict=True):
        code, name, category = line.split()[:3]
        assert (int(code), name, category) == (entry.code, entry.name, entry.category)


def test_errors_json_is_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "--format", "json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [(i["code"], i["name"], i["category"], i["retryable"]) for i in items] == [
        (e.code, e.name, e.category, e.retryable) for e in entries()
    ]
    assert all(i["description"] and isinstance(i["causes"], list) for i in items)


def test_errors_markdown_is_the_generated_docs_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "--format", "markdown"]) == 0
    assert capsys.readouterr().out == render_markdown()


def test_token_mints_what_was_asked(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["token", "--secret", SECRET, "--session", "room-7", "--ttl", "120"]
    argv += ["--role", "moderator", "--role", "synchronizer", "--no-video", "--no-create"]
    argv += ["--max-streaming", "4", "--subject", "alice"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    claims = verify(captured.out.strip(), SECRET)
    assert claims.sid == "room-7"
    assert claims.roles == ("moderator", "synchronizer")
    assert (claims.grants.audio, claims.grants.video, claims.grants.create) == (True, False, False)
    assert claims.max_streaming == 4
    assert claims.sub == "alice"
    assert claims.iat is not None and 119 <= claims.exp - claims.iat <= 121


def test_token_reads_the_secret_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOMSIGNAL_SECRET", SECRET)
    assert main(["token", "--session", "room", "--no-audio"]) == 0
    claims = verify(capsys.readouterr().out.strip(), SECRET)
    assert claims.grants.audio is False
    assert claims.roles == ()


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
def test_token_with_a_short_secret_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "--secret", "short", "--session", "room"]) == 0
    captured = capsys.readouterr()
    assert verify(captured.out.strip(), "short").sid == "room"
    assert len(captured.err.splitlines()) == 1
    assert "32" in captured.err


def test_token_without_a_secret_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROOMSIGNAL_SECRET", raising=False)
    assert main(["token", "--session", "room"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "ROOMSIGNAL_SECRET" in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "--secret", SECRET, "--session", "r", "--role", "admin"],
        ["token", "--secret", SECRET, "--session", "r", "--max-streaming", "-1"],
        ["serve", "--port", "70000"],
        ["serve", "--sdp-timeout", "0"],
        ["errors", "--format", "yaml"],
        ["join", "ws://127.0.0.1:1", "--name", "n"],
        ["frobnicate"],
    ],
)
def test_bad_options_exit_2_with_argparse_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: roomsignal")
    assert "error:" in err


@pytest.mark.parametrize(
    ("command", "needed"), [("token", ["--session", "r"]), ("serve", []), ("errors", [])]
)
def test_unknown_option_gets_the_subcommands_usage(
    command: str, needed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, *needed, "--frobnicate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: roomsignal {command}")
    assert "unrecognized arguments: --frobnicate" in err


@pytest.mark.parametrize("ttl", ["-5", "0"])
def test_token_with_a_ttl_that_is_already_over_warns(
    ttl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--secret", SECRET, "--session", "room", "--ttl", ttl]) == 0
    captured = capsys.readouterr()
    assert captured.out.count(".") == 2  # still one token on stdout
    assert "warning" in captured.err
    assert "1100" in captured.err
