"""The speedups extra (msgspec) and the checks give a session the same errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from roomsignal import ErrorCode
from roomsignal.client import _core
from roomsignal.protocol import _codec

from .conftest import Recorder, SessionFactory


async def _burst(make_session: SessionFactory, name: str) -> list[dict[str, object]]:
    session = make_session(name)
    errors = Recorder()
    session.on_session_error(errors)
    async with session:
        await session.simulate_scenario(
            "sessionErrors", code=ErrorCode.SESSION_IS_FULL_ERROR_CODE, count=300
        )
        got = await errors.wait_for(300)
    return [e.model_dump(exclude={"received_at", "session_id", "participant_id"}) for e in got]


async def test_both_ways_deliver_the_same_errors(
    make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _codec.SPEEDUPS and _core.SPEEDUPS  # the dev extra installs msgspec
    fast = await _burst(make_session, "fast")
    monkeypatch.setattr(_core, "SPEEDUPS", False)  # the core reads it per frame
    checked = await _burst(make_session, "checked")
    assert len(fast) == 300
    assert fast == checked
    assert fast[0]["code"] == ErrorCode.SESSION_IS_FULL_ERROR_CODE and fast[0]["source"] == "server"


def test_without_msgspec_the_checks_read_the_frames() -> None:
    """``import roomsignal`` never needs the extra: msgspec missing, the checks run."""
    probe = (
        "import sys; sys.modules['msgspec'] = None\n"  # what an absent package raises
        "from roomsignal.protocol._codec import SPEEDUPS, session_error_parts\n"
        'frame = b\'{"jsonrpc":"2.0","method":"sessionError",\'\n'
        'frame += b\'"params":{"seq":1,"code":206,"message":"m"}}\'\n'
        "print(SPEEDUPS, session_error_parts(frame))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert run.stdout.strip() == "False (1, 206, 'm', None)", run.stderr


def test_the_environment_turns_them_off() -> None:
    probe = "from roomsignal.protocol._codec import SPEEDUPS; print(SPEEDUPS)"
    env = {**os.environ, "ROOMSIGNAL_NO_SPEEDUPS": "1"}
    off = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    env.pop("ROOMSIGNAL_NO_SPEEDUPS")
    on = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True"), off.stderr + on.stderr
