"""``roomsignal errors``, ``token`` and ``--help``, run in-process."""

from __future__ import annotations

import json

import pytest

from roomsignal.catalog import CatalogEntry, entries, render_markdown
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


def _in_code_order() -> list[CatalogEntry]:
    return sorted(entries(), key=lambda entry: entry.code)


@pytest.mark.parametrize("columns", [80, 140])
def test_errors_table_lists_every_code_in_order_within_the_terminal(
    columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["errors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["CODE", "NAME", "CATEGORY", "RETRY"]
    assert len(lines) == 1 + len(entries())
    assert max(len(line) for line in lines) <= columns
    for line, entry in zip(lines[1:], _in_code_order(), strict=True):
        code, name, category = line.split()[:3]
        assert (int(code), name, category) == (entry.code, entry.name, entry.category)
    codes = [int(line.split()[0]) for line in lines[1:]]
    assert codes == sorted(codes)
    if columns >= 120:  # room for the descriptions (shortened when long)
        assert "DESCRIPTION" in lines[0]
        assert "The session was closed." in "\n".join(lines)


def test_errors_json_is_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--format", "json"], ["--json"]):
        assert main(["errors", *flags]) == 0
        items = json.loads(capsys.readouterr().out)
        assert [(i["code"], i["name"], i["category"], i["retryable"]) for i in items] == [
            (e.code, e.name, e.category, e.retryable) for e in _in_code_order()
        ]
        assert all(i["description"] and isinstance(i["causes"], list) for i in items)


def test_errors_markdown_is_the_docs_table_without_the_maintainers_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["errors", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out == render_markdown(note=False)
    assert "gen_docs" not in out and "do not edit" not in out
    table = [line for line in render_markdown().splitlines() if line.startswith("|")]
    assert [line for line in out.splitlines() if line.startswith("|")] == table


@pytest.mark.parametrize(
    "query", ["206", "SESSION_IS_FULL_ERROR_CODE", "session_is_full_error_code"]
)
def test_errors_looks_one_code_up(query: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", query]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "206 SESSION_IS_FULL_ERROR_CODE"
    assert "category:  session" in out and "causes:" in out
    assert "max_streaming_participants" in out  # a cause, in full
    assert main(["errors", query, "--json"]) == 0
    item = json.loads(capsys.readouterr().out)
    assert (item["code"], item["name"], item["retryable"]) == (
        206,
        "SESSION_IS_FULL_ERROR_CODE",
        False,
    )
    assert main(["errors", query, "--format", "markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2")]
    assert len(rows) == 1 and rows[0].startswith("| 206 | `SESSION_IS_FULL_ERROR_CODE`")


def test_errors_negative_codes_are_found(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "-32602"]) == 0
    assert capsys.readouterr().out.startswith("-32602 INVALID_PARAMS\n")


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["errors", "777"], 1, "777 is not in the catalog"),
        (["errors", "NO_SUCH_ERROR"], 1, "no error named 'NO_SUCH_ERROR'"),
        (["errors", "--json", "--format", "table"], 2, "--json and --format table"),
    ],
)
def test_errors_refusals_are_one_line(
    argv: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and message in captured.err


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
