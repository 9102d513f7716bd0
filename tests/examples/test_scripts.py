"""Every example is a script with ``--help``, and refuses to run without credentials."""

from __future__ import annotations

import pytest

from .conftest import EXAMPLES, load_example

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py"))


def test_the_five_kinds_of_bot_are_there() -> None:
    assert {
        "chat_bot",
        "error_handling_bot",
        "follower",
        "moderator",
        "resilient_bot",
        "synchronizer",
    } <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_example(name).cli(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--url" in out and "--secret" in out


@pytest.mark.parametrize("name", NAMES)
def test_no_credentials_is_a_usage_error(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROOMSIGNAL_SECRET", raising=False)
    monkeypatch.delenv("ROOMSIGNAL_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        load_example(name).cli([])
    assert exit_info.value.code == 2
    assert "--secret" in capsys.readouterr().err
