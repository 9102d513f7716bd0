"""The README's promises: its two commands, and a quick start that runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from roomsignal.server import SignalingServer

from .conftest import SECRET

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_two_commands() -> None:
    assert "python3 dev.py demo" in README
    assert "python3 dev.py test" in README
    assert "docs/protocol.md" in README and "docs/errors.md" in README


async def test_the_quick_start_runs_as_written(
    server: SignalingServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [code] = re.findall(r"```python\n(.*?)```", README, re.S)
    assert "ws://127.0.0.1:8765" in code and "asyncio.run(main())" in code
    assert len(code.strip().splitlines()) <= 25
    code = code.replace("ws://127.0.0.1:8765", server.url).replace("asyncio.run(main())", "")
    monkeypatch.setenv("ROOMSIGNAL_SECRET", SECRET)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    await namespace["main"]()
    assert capsys.readouterr().out.splitlines() == [
        "102 USER_NOT_FOUND_ERROR_CODE [user]: no participant with that id in the session"
    ]


@pytest.mark.parametrize("command", ["join", "load-test"])
def test_the_usage_lines_list_every_option(command: str) -> None:
    """The command table's usage of ``command`` matches ``roomsignal COMMAND --help``."""
    from roomsignal.cli import _subparser, build_parser

    [usage] = re.findall(rf"^\| `(roomsignal {command} [^`]*)` \|", README, re.M)
    parser = _subparser(build_parser(), command)
    options = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert options, command
    listed = set(re.findall(r"--[a-z][a-z-]*", usage))
    assert listed == options, (sorted(options - listed), sorted(listed - options))
    assert usage.startswith(f"roomsignal {command} URL [URL ...] ")
