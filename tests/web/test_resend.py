"""roomsignal.js keeps a request across a real cut (docs/protocol.md section 8).

The page's session dials the reference server through ``CutProxy``; a
Python ``Session`` in the same room counts what is delivered. Each request
in flight when the TCP connection is cut is sent again after the resume,
with its id, and delivered exactly once: whether the server had handled it
(only its answer was lost) or never got it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.protocol import MessageReceivedParams
from roomsignal.server import SignalingServer
from roomsignal.testing import CutProxy

from .conftest import SECRET, WAIT, open_page, token

pytestmark = pytest.mark.asyncio(loop_scope="module")


@contextlib.asynccontextmanager
async def _seat_expired_while_unreachable(
    context: Any, room: str
) -> AsyncIterator[tuple[Any, CutProxy, SignalingServer]]:
    """A page's session (maxAttempts 1) behind a refusing proxy, once its seat expired.

    A server with a 0.2 s resume window; a witness in the room sees the seat go.
    """
    async with (
        SignalingServer(secret=SECRET, resume_window=0.2) as short,
        CutProxy(short.port) as proxy,
    ):
        page = await open_page(context, short)
        witness = Session(short.url, token=token(room), name="witness", reconnect=None)
        left: asyncio.Queue[str] = asyncio.Queue()
        witness.on_participant_left(lambda e: left.put_nowait(e.participant_id))
        async with witness:
            await page.evaluate(
                """async ([url, token]) => {
                  const { Session } = await import("/roomsignal.js");
                  const s = new Session(url, { token, name: "js", maxAttempts: 1 });
                  window.s = s;
                  window.reconnected = [];
                  window.errors = [];
                  s.onReconnected((e) => window.reconnected.push(e));
                  s.onSessionError((e) => window.errors.push(e));
                  await s.join();
                }""",
                [proxy.url, token(room)],
            )
            old_id = await page.evaluate("window.s.participantId")
            proxy.refuse = True
            proxy.cut()
            assert await asyncio.wait_for(left.get(), WAIT) == old_id  # the seat expired
            yield page, proxy, short


START = """async ([url, token, name]) => {
  const { Session } = await import("/roomsignal.js");
  const s = new Session(url, { token, name });
  window.s = s;
  window.reconnected = [];
  window.results = [];
  s.onReconnected((e) => window.reconnected.push(e));
  await s.join();
  return s.resumeWindow;
}"""

# Start requests without awaiting them; each outcome lands in window.results.
SEND = """(texts) => {
  for (const text of texts) {
    window.s.sendMessage(text).then(
      () => window.results.push(["ok", text]),
      (exc) => window.results.push([exc.error?.code ?? String(exc), text]),
    );
  }
}"""


async def _inbox(
    room: str, server: SignalingServer
) -> tuple[Session, list[str], asyncio.Queue[str]]:
    receiver = Session(server.url, token=token(room), name="receiver", reconnect=None)
    texts: list[str] = []
    arrived: asyncio.Queue[str] = asyncio.Queue()

    @receiver.on_message
    def on_message(message: MessageReceivedParams) -> None:
        texts.append(message.text)
        arrived.put_nowait(message.text)

    return receiver, texts, arrived  # connected by the caller's ``async with``


async def _until(page: Any, expression: str) -> Any:
    await page.wait_for_function(expression, timeout=WAIT * 1000)
    return await page.evaluate(expression)


async def test_an_answer_lost_in_a_cut_is_not_a_second_delivery(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    receiver, texts, arrived = await _inbox("resend-a", server)
    async with receiver, CutProxy(server.port) as proxy:
        window = await page.evaluate(START, [proxy.url, token("resend-a"), "js"])
        assert window == server.config.resume_window  # the join result's resumeWindow
        proxy.pause_downstream()  # the answer will not reach the page
        await page.evaluate(SEND, ["exactly once"])
        assert await asyncio.wait_for(arrived.get(), WAIT) == "exactly once"  # handled
        await asyncio.wait_for(proxy.holding(), WAIT)  # its answer is held
        assert await page.evaluate("window.results.length") == 0
        proxy.cut()
        proxy.resume()
        assert await _until(page, "window.results.length === 1 && window.results") == [
            ["ok", "exactly once"]
        ]  # the awaited call simply completes
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["resumed"] is True and event["resent"] == 1
        await page.evaluate(SEND, ["after"])
        assert await asyncio.wait_for(arrived.get(), WAIT) == "after"
        assert texts == ["exactly once", "after"]  # once, not twice
        await page.evaluate("window.s.leave()")


async def test_a_request_cut_before_the_server_is_delivered_after_the_resume(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    receiver, texts, arrived = await _inbox("resend-b", server)
    async with receiver, CutProxy(server.port) as proxy:
        await page.evaluate(START, [proxy.url, token("resend-b"), "js"])
        proxy.pause_upstream()  # nothing more reaches the server
        await page.evaluate(SEND, ["one", "two"])
        await asyncio.wait_for(proxy.holding(), WAIT)
        proxy.cut()
        proxy.resume()
        results = await _until(page, "window.results.length === 2 && window.results")
        assert results == [["ok", "one"], ["ok", "two"]]
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["resumed"] is True and event["resent"] == 2
        await page.evaluate(SEND, ["after"])
        for expected in ("one", "two", "after"):
            assert await asyncio.wait_for(arrived.get(), WAIT) == expected
        assert texts == ["one", "two", "after"]  # once each, in order
        await page.evaluate("window.s.leave()")


async def test_past_max_attempts_and_the_seat_a_refused_resume_joins_afresh(
    context: Any,
) -> None:
    """maxAttempts 1, the server unreachable until the seat expired: not the end.

    The page goes on while the seat waits (resumeWindow), then its resume is
    refused with 106, flagged ``recovering``, and it joins afresh at once.
    """
    async with _seat_expired_while_unreachable(context, "reset") as (page, proxy, _):
        await _until(page, "window.s._streak > 1")  # past maxAttempts, still trying
        proxy.refuse = False
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["stateReset"] is True and event["resumed"] is False
        refused = await page.evaluate(
            "window.errors.filter((e) => e.code === 106).map((e) => e.recovering)"
        )
        assert refused == [True]
        assert await page.evaluate("window.s.state") == "joined"
        await page.evaluate("window.s.leave()")


async def test_a_call_across_an_outage_longer_than_its_timeout_completes_once(
    server: SignalingServer, context: Any
) -> None:
    """requestTimeout counts only time connected: a request cut before the server,
    across an outage of 2.5 requestTimeouts within the seat's window, completes
    after the resume, delivered once, with no 902."""
    page = await open_page(context, server)
    receiver, texts, arrived = await _inbox("resend-long", server)
    async with receiver, CutProxy(server.port) as proxy:
        await page.evaluate(
            """async ([url, token]) => {
              const { Session } = await import("/roomsignal.js");
              const s = new Session(url, { token, name: "js", requestTimeout: 1000 });
              window.s = s;
              window.reconnected = [];
              window.results = [];
              window.errors = [];
              s.onReconnected((e) => window.reconnected.push(e));
              s.onSessionError((e) => window.errors.push(e.code));
              await s.join();
            }""",
            [proxy.url, token("resend-long")],
        )
        proxy.pause_upstream()  # nothing more reaches the server
        await page.evaluate(SEND, ["exactly once"])
        await asyncio.wait_for(proxy.holding(), WAIT)
        proxy.refuse = True
        await page.evaluate("() => { window.cutAt = Date.now(); }")
        proxy.cut()
        proxy.resume()
        await _until(page, "Date.now() - window.cutAt > 2500")  # 2.5 requestTimeouts
        assert await page.evaluate("window.results") == []  # still waiting, no 902
        proxy.refuse = False
        results = await _until(page, "window.results.length === 1 && window.results")
        assert results == [["ok", "exactly once"]]
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["resumed"] is True and event["resent"] == 1
        await page.evaluate(SEND, ["after"])
        for expected in ("exactly once", "after"):
            assert await asyncio.wait_for(arrived.get(), WAIT) == expected
        assert texts == ["exactly once", "after"]
        assert 902 not in await page.evaluate("window.errors")
        await page.evaluate("window.s.leave()")


async def test_a_session_that_gives_up_fails_calls_with_its_end(context: Any) -> None:
    """Past maxAttempts and the seat's window, a call in flight and one waiting
    for the rejoin fail with the session's end (903), not 902 nor 905."""
    async with (
        SignalingServer(secret=SECRET, resume_window=0.2) as short,
        CutProxy(short.port) as proxy,
    ):
        page = await open_page(context, short)
        await page.evaluate(
            """async ([url, token]) => {
              const { Session } = await import("/roomsignal.js");
              const s = new Session(url, { token, name: "js", maxAttempts: 2, requestTimeout: 1000 });
              window.s = s;
              window.results = [];
              await s.join();
            }""",
            [proxy.url, token("give-up")],
        )
        proxy.pause_upstream()
        await page.evaluate(SEND, ["never"])
        await asyncio.wait_for(proxy.holding(), WAIT)
        proxy.refuse = True
        proxy.cut()
        proxy.resume()
        await page.wait_for_function("window.s.state === 'reconnecting'", timeout=WAIT * 1000)
        await page.evaluate(SEND, ["neither"])  # waits for the rejoin
        # the seat's window (0.2 s) plus the longest backoff (5 s), then it gives up
        await page.wait_for_function("window.results.length === 2", timeout=(WAIT + 6) * 1000)
        assert sorted(await page.evaluate("window.results")) == [[903, "neither"], [903, "never"]]
        assert await page.evaluate("window.s.state") == "closed"


async def test_a_fresh_rejoin_refused_with_104_is_tried_again(context: Any) -> None:
    """After its seat expired the page's resume is refused (106) and its fresh join
    finds the name still held (104, as by its own old seat not let go yet): it
    tries again, flagged recovering, and joins once the name is free; not the end."""
    async with _seat_expired_while_unreachable(context, "held") as (page, proxy, short):
        holder = Session(short.url, token=token("held"), name="js", reconnect=None)
        async with holder:  # the name is held meanwhile
            proxy.refuse = False
            await _until(page, "window.errors.some((e) => e.code === 104)")
            assert await page.evaluate("window.s.state") == "reconnecting"
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["stateReset"] is True
        flags = await page.evaluate(
            "window.errors.filter((e) => e.code === 104).map((e) => e.recovering)"
        )
        assert flags and all(flags)
        assert await page.evaluate("window.s.state") == "joined"
        await page.evaluate("window.s.leave()")


async def test_without_reconnect_a_cut_fails_calls_in_flight_with_903(
    server: SignalingServer, context: Any
) -> None:
    """reconnect: false: the cut is the session's end, and the call in flight fails
    with it (903, its close code in data), as in the Python client."""
    page = await open_page(context, server)
    async with CutProxy(server.port) as proxy:
        await page.evaluate(
            """async ([url, token]) => {
              const { Session } = await import("/roomsignal.js");
              const s = new Session(url, { token, name: "js", reconnect: false });
              window.s = s;
              window.results = [];
              await s.join();
            }""",
            [proxy.url, token("no-reconnect")],
        )
        proxy.pause_upstream()
        await page.evaluate(SEND, ["lost"])
        await asyncio.wait_for(proxy.holding(), WAIT)
        proxy.cut()
        assert await _until(page, "window.results.length === 1 && window.results") == [
            [903, "lost"]
        ]
        assert await page.evaluate("window.s.state") == "closed"
