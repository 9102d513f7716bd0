"""Static typing of the public API, checked with mypy's own API (``mypy.api.run``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .app import chat

HERE = Path(__file__).parent
SECRET = "typing-test-secret-0123456789abcdef"


def _mypy(*args: str) -> tuple[str, int]:
    out, err, status = api.run(["--strict", "--no-incremental", "--no-error-summary", *args])
    return out + err, status


def _snippet(tmp_path: Path, code: str) -> tuple[str, int]:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(code))
    return _mypy(str(path))


def test_the_typed_app_passes_mypy_strict_without_type_ignore() -> None:
    source = (HERE / "app.py").read_text()
    assert "type: ignore" not in source
    out, status = _mypy(str(HERE / "app.py"))
    assert status == 0, out


async def test_the_typed_app_runs_against_the_reference_server() -> None:
    async with SignalingServer(secret=SECRET) as server:
        heard, end = await chat(server.url, mint(SECRET, "room"), mint(SECRET, "room"))
    assert len(heard) == 1 and heard[0].endswith(": hello bob"), heard
    assert end.by_client


def test_an_unknown_participant_type_fails_mypy(tmp_path: Path) -> None:
    out, status = _snippet(
        tmp_path,
        """
        from roomsignal import Session
        Session("ws://127.0.0.1:1", token="t", name="n", participant_type="robot")
        """,
    )
    assert status == 1
    assert 'Argument "participant_type" to "Session" has incompatible type' in out, out


def test_ids_are_str_and_decorators_keep_the_function_type(tmp_path: Path) -> None:
    out, status = _snippet(
        tmp_path,
        """
        from roomsignal import Session, SessionError
        from roomsignal.events import MessageReceivedParams
        s = Session("ws://127.0.0.1:1", token="t", name="n")

        @s.on_session_error
        async def on_error(error: SessionError) -> None: ...

        @s.on_message
        def on_message(event: MessageReceivedParams) -> int:
            return 1

        reveal_type(on_error)
        reveal_type(on_message)
        reveal_type(s.participant_id)
        reveal_type(s.session_id)
        s.on_message(on_error)  # the wrong payload type: an error
        """,
    )
    assert status == 1
    lines = out.splitlines()
    notes = [line.split("Revealed type is ")[1] for line in lines if "Revealed type" in line]
    assert notes == [
        '"def (error: roomsignal.errors.SessionError) -> typing.Coroutine[Any, Any, None]"',
        '"def (event: roomsignal.protocol._models.MessageReceivedParams) -> int"',
        '"str"',
        '"str"',
    ], out
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1 and 'cannot be "Callable[[SessionError]' in errors[0], out


@pytest.fixture(autouse=True)
def _mypy_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # keep mypy's files out of the repository
