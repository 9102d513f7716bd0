"""The typed public API: ids as ``str``, ``wait_closed()``, listener descriptors in ``help()``."""

from __future__ import annotations

import asyncio
import pydoc

import pytest

import roomsignal
from roomsignal import SessionEnded, SessionStateError

from .conftest import SessionFactory, token


async def test_ids_raise_905_before_joining_and_are_str_once_joined(
    make_session: SessionFactory,
) -> None:
    session = make_session("alice")
    for read in (lambda: session.participant_id, lambda: session.session_id):
        with pytest.raises(SessionStateError) as caught:
            read()
        assert caught.value.code == 905
    async with session:
        assert isinstance(session.participant_id, str) and session.participant_id
        assert session.session_id == "room"
        pid = session.participant_id
    assert session.participant_id == pid  # still the last id after close()


async def test_wait_closed_says_the_client_closed_it(make_session: SessionFactory) -> None:
    session = make_session("alice")
    async with session:
        waiter = asyncio.ensure_future(session.wait_closed())
        await asyncio.sleep(0)
        assert not waiter.done()
    end = await asyncio.wait_for(waiter, 5)
    assert end == SessionEnded(by_client=True, code=1000, reason="closed by the client")
    assert await session.wait_closed() is end  # at once, once ended


async def test_wait_closed_gives_the_final_error_when_the_room_is_closed(
    make_session: SessionFactory,
) -> None:
    host = make_session("host", token=token(roles=["moderator"]))
    guest = make_session("guest")
    async with host, guest:
        await host.close_session("over")
        end = await asyncio.wait_for(guest.wait_closed(), 5)
        assert not end.by_client
        assert end.error is None  # the 203 came from the server, as a sessionError
        assert end.session_closed is not None and end.session_closed.reason == "over"
        assert guest.state is roomsignal.SessionState.CLOSED


def test_help_shows_each_listener_descriptor_with_its_signature_and_doc() -> None:
    text = pydoc.render_doc(roomsignal.Session, renderer=pydoc.plaintext)
    assert "on_message(fn: (MessageReceivedParams) -> R) -> fn" in text
    assert "off_session_error(fn: (SessionError) -> object) -> None" in text
    assert "Call ``fn(event: MessageReceivedParams)`` for every chat message." in text
    assert "_listen._On object" not in text and "_listen._Off object" not in text
