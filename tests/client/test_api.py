"""The typed public API: ids as ``str``, ``wait_closed()``, listener descriptors in ``help()``."""

from __future__ import annotations

import asyncio
import pydoc

import pytest

import roomsignal
from roomsignal import SessionEnded, SessionErrorException, SessionStateError
from roomsignal.events import Streams

from .conftest import Recorder, SessionFactory, token


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
    assert "on_message(fn: (MessageReceived) -> object) -> fn" in text
    assert "off_session_error(fn: (SessionError) -> object) -> None" in text
    assert "Call ``fn(event: MessageReceived)`` for every chat message" in text
    assert "_listen._On object" not in text and "_listen._Off object" not in text


async def test_participant_objects_in_the_mirror_and_in_events(
    make_session: SessionFactory,
) -> None:
    alice = make_session("alice", token=token(roles=["moderator"]), metadata={"team": "a"})
    bob = make_session("bob", participant_type="full")
    messages, requests, left, published = Recorder(), Recorder(), Recorder(), Recorder()
    bob.on_message(messages)
    bob.on_subscribe_request(requests)
    bob.on_participant_left(left)
    alice.on_stream_published(published)
    with pytest.raises(SessionStateError):
        _ = alice.local_participant
    async with alice, bob:
        me = alice.local_participant
        assert (me.participant_id, me.name, me.participant_type) == (
            alice.participant_id,
            "alice",
            "full",
        )
        assert me.roles == ["moderator"] and me.metadata == {"team": "a"} and me.streams is None
        await alice.publish(audio=True, video=False)
        assert alice.local_participant.streams == Streams(audio=True, video=False)
        await bob.publish(audio=False, video=True)
        await published.wait_for(1)
        seen = alice.participants[bob.participant_id]
        assert (seen.name, seen.participant_type) == ("bob", "full")
        assert seen.streams == Streams(audio=False, video=True)
        assert bob.participants[alice.participant_id].roles == ["moderator"]

        await alice.send_message("hi bob")
        (message,) = await messages.wait_for(1)
        assert message.from_ == alice.participant_id  # the id is kept
        assert message.sender is not None and message.sender.name == "alice"
        assert message.sender.metadata == {"team": "a"}

        await alice.subscribe(bob.participant_id)
        (request,) = await requests.wait_for(1)
        assert request.subscriber_id == alice.participant_id
        assert request.subscriber is not None and request.subscriber.name == "alice"

        alice_id = alice.participant_id
        await alice.close()
        (gone,) = await left.wait_for(1)
        assert gone.participant_id == alice_id and gone.reason == "left"
        assert gone.participant is not None and gone.participant.name == "alice"
        assert alice_id not in bob.participants


def test_a_session_keeps_to_30_attributes_so_its_dict_shares_keys() -> None:
    """CPython shares instance-dict keys up to 30 attributes; past that ~1.3 KiB more each."""
    session = roomsignal.Session("ws://127.0.0.1:1", token="t", name="n")
    assert len(vars(session)) <= 30, sorted(vars(session))


def test_each_listener_descriptor_has_an_attribute_docstring_for_the_reference() -> None:
    """mkdocstrings reads attribute docstrings statically: each says what ``__doc__`` says."""
    import ast
    import inspect
    import itertools

    from roomsignal.client import _listen

    (cls,) = ast.parse(inspect.getsource(_listen.ListenerMethods)).body
    assert isinstance(cls, ast.ClassDef)
    documented = {}
    for node, after in itertools.pairwise(cls.body):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            documented[node.targets[0].id] = " ".join(str(after.value.value).split())
    descriptors = [n for n in vars(_listen.ListenerMethods) if n.startswith(("on_", "off_"))]
    descriptors.remove("on_listener_error")
    assert len(descriptors) == 34
    for name in descriptors:
        runtime = " ".join(vars(_listen.ListenerMethods)[name].__doc__.split())
        assert name in documented, name
        assert runtime[1:] in documented[name], (name, runtime, documented[name])
        assert documented[name].startswith(f"``{name}(fn"), name


def test_the_reference_shows_the_listener_descriptors_with_their_docs() -> None:
    """What mkdocstrings reads (griffe, statically), and the page asks for inherited members."""
    griffe = pytest.importorskip("griffe")
    from pathlib import Path

    root = Path(__file__).parents[2]
    package = griffe.load("roomsignal", search_paths=[str(root / "src")])
    session = package["client._session.Session"]
    on_message = session.all_members["on_message"]
    assert "on_message(fn: (MessageReceived) -> object) -> fn" in on_message.docstring.value
    assert session.all_members["off_session_error"].docstring is not None
    page = (root / "docs" / "reference" / "session.md").read_text()
    assert "inherited_members: true" in page


async def test_wait_closed_gives_the_final_error_when_the_connection_is_lost_for_good(
    make_session: SessionFactory,
) -> None:
    session = make_session("alice", reconnect=None)
    async with session:
        with pytest.raises(SessionErrorException):  # 901: it dropped under the request
            await session.simulate_scenario("connectionDrop")
        end = await asyncio.wait_for(session.wait_closed(), 5)
        assert not end.by_client and end.session_closed is None
        assert end.error is not None and end.error.code == 903  # CONNECTION_LOST
        assert end.code is None  # no close frame
        assert session.state is roomsignal.SessionState.CLOSED
