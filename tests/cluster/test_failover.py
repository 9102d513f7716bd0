"""A session given every node's URL (``Session([n1, n2, n3])``) outlives its node's ``kill -9``.

Real redis-server and node processes (conftest.py); the session dials the
next live node and resumes there, with the same participant id.
"""

from __future__ import annotations

import pytest

from roomsignal import Session

from .conftest import Node, Recorder, RedisServer, room_hash, session, wait_until

pytestmark = pytest.mark.timeout(90)


async def test_a_session_given_every_node_resumes_through_the_next_live_one(
    nodes: list[Node], redis: RedisServer, sessions: list[Session]
) -> None:
    urls = [node.url for node in nodes]
    mover = session(sessions, urls, "failover", "mover")  # type: ignore[arg-type]
    witness = session(sessions, nodes[1].url, "failover", "witness")
    reconnected, inbox = Recorder(), Recorder()
    mover.on_reconnected(reconnected)
    witness.on_message(lambda m: inbox(m.text))
    await mover.connect()
    assert mover.url == nodes[0].url  # the first that answers
    await witness.connect()
    mover_id = mover.participant_id

    async def seated() -> bool:
        seats = await room_hash(redis, "failover")
        return f"m:{mover_id}" in seats and f"m:{witness.participant_id}" in seats

    await wait_until(seated)  # journaled: a takeover finds both seats
    nodes[0].kill()  # the mover's node (and maybe the room's home)
    (event,) = await reconnected.wait_for(1, timeout=30)
    assert event.resumed and not event.state_reset
    assert event.url in urls[1:] and mover.url == event.url
    assert mover.participant_id == mover_id
    await mover.send_message("after the failover")
    assert await inbox.wait_for(1, timeout=10) == ["after the failover"]
