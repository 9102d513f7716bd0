"""roomsignal.js fails over across a list of URLs, as the Python client does.

``new Session([urlA, urlB], ...)`` dials the first that answers; after a drop
the next attempt starts with the next URL, with the usual backoff. Real
servers on loopback: two ``CutProxy`` in front of one server (a resume
through the other URL, nothing lost), two servers of which the one we sat on
is closed as if it crashed (a fresh seat on the other, said so), and a
provider of URLs asked at each attempt.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.protocol import MessageReceivedParams
from roomsignal.server import SignalingServer
from roomsignal.testing import CutProxy

from .conftest import SECRET, WAIT, open_page, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The page's session on `urls` (a list, or "provider": window.urls, asked each attempt).
START = """async ([urls, token, name]) => {
  const { Session } = await import("/roomsignal.js");
  window.asked = 0;
  const source = urls === "provider" ? async () => (window.asked++, window.urls) : urls;
  const s = new Session(source, { token, name });
  window.s = s;
  window.reconnected = [];
  window.errors = [];
  window.results = [];
  s.onReconnected((e) => window.reconnected.push(e));
  s.onSessionError((e) => window.errors.push(e));
  await s.join();
  return s.url;
}"""


def dead_url() -> str:
    """A ws:// URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{probe.getsockname()[1]}"


async def _until(page: Any, expression: str) -> Any:
    await page.wait_for_function(expression, timeout=WAIT * 1000)
    return await page.evaluate(expression)


async def test_bad_urls_are_refused_at_once(server: SignalingServer, context: Any) -> None:
    page = await open_page(context, server)
    refused = await page.evaluate(
        """async () => {
          const { Session } = await import("/roomsignal.js");
          const bad = [[], ["http://127.0.0.1:1"], ["ws://127.0.0.1:1", "nope"], 42, null, ""];
          return bad.map((urls) => {
            try {
              new Session(urls, { token: "t", name: "n" });
              return "accepted";
            } catch (exc) {
              return `${exc.name}: ${exc.message}`;
            }
          });
        }"""
    )
    assert all(r.startswith("TypeError: ") for r in refused), refused
    assert "list is empty" in refused[0] and "http://127.0.0.1:1" in refused[1]
    first = await page.evaluate(
        """async () => {
          const { Session } = await import("/roomsignal.js");
          return new Session(["ws://127.0.0.1:1", "ws://127.0.0.1:2"], { token: "t", name: "n" }).url;
        }"""
    )
    assert first == "ws://127.0.0.1:1"  # the first, until a dial says otherwise


async def test_join_goes_to_the_first_url_that_answers(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    dead = dead_url()
    url = await page.evaluate(START, [[dead, server.url], token("fo-first"), "js"])
    assert url == server.url
    assert isinstance(await page.evaluate("window.s.ping()"), float)
    # none answering: one 901 naming each URL
    others = [dead_url(), dead_url()]
    message = await page.evaluate(
        """async ([urls, token]) => {
          const { Session } = await import("/roomsignal.js");
          const s = new Session(urls, { token, name: "nobody", reconnect: false });
          try {
            await s.join();
            return "joined";
          } catch (exc) {
            return [exc.code, exc.message, s.state];
          }
        }""",
        [others, token("fo-first")],
    )
    assert message[0] == 901 and "any of 2 URLs" in message[1] and message[2] == "idle"
    assert all(url in message[1] for url in others)
    await page.evaluate("window.s.leave()")


async def test_a_drop_resumes_through_the_next_url_losing_nothing(
    server: SignalingServer, context: Any
) -> None:
    """Two URLs to one server: the one in use dies with a message in flight; the
    next attempt goes to the other, resumes, and the message arrives once."""
    page = await open_page(context, server)
    receiver = Session(server.url, token=token("fo-resume"), name="receiver", reconnect=None)
    texts: list[str] = []
    arrived: asyncio.Queue[str] = asyncio.Queue()

    @receiver.on_message
    def on_message(message: MessageReceivedParams) -> None:
        texts.append(message.text)
        arrived.put_nowait(message.text)

    async with receiver, CutProxy(server.port) as a, CutProxy(server.port) as b:
        url = await page.evaluate(START, [[a.url, b.url], token("fo-resume"), "js"])
        assert url == a.url
        a.pause_upstream()  # the message will not reach the server through a
        await page.evaluate(
            """window.s.sendMessage("in flight").then(
                 () => window.results.push("ok"), (exc) => window.results.push(exc.code))"""
        )
        await asyncio.wait_for(a.holding(), WAIT)
        a.refuse = True  # a is down for good
        a.cut()
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["url"] == b.url and event["resumed"] is True and event["resent"] == 1
        assert await _until(page, "window.results.length === 1 && window.results") == ["ok"]
        assert await page.evaluate("window.s.url") == b.url
        assert await asyncio.wait_for(arrived.get(), WAIT) == "in flight"
        await page.evaluate("window.s.sendMessage('after')")
        assert await asyncio.wait_for(arrived.get(), WAIT) == "after"
        assert texts == ["in flight", "after"]  # once each
        assert b.connections == 1
        await page.evaluate("window.s.leave()")


async def test_a_rejoin_cut_under_its_join_is_flagged_recovering(
    server: SignalingServer, context: Any
) -> None:
    """The first resume attempt's connection dies while its join is in flight (as a
    cluster node closing it with 1012 while the room moves): its 901 is the way back,
    flagged recovering; the next attempt resumes. No error is a real refusal."""
    page = await open_page(context, server)
    async with CutProxy(server.port) as a, CutProxy(server.port) as b:
        url = await page.evaluate(START, [[a.url, b.url], token("fo-cut-join"), "js"])
        assert url == a.url
        b.pause_downstream_after_handshake()  # the rejoin's answer is held
        a.cut()  # the next attempt starts with b
        await asyncio.wait_for(b.holding(), WAIT)
        b.cut()  # the join was in flight
        b.resume()
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["resumed"] is True
        errors = await page.evaluate("window.errors.map((e) => [e.code, e.method, e.recovering])")
        assert [901, "join", True] in errors
        assert all(recovering for _, _, recovering in errors), errors
        await page.evaluate("window.s.leave()")


async def test_a_server_closed_under_it_hands_over_to_the_next(context: Any) -> None:
    """Two servers: the one the page sat on crashes; the next takes it, a fresh
    seat said so (its 106 flagged recovering), not the end."""
    async with (
        SignalingServer(secret=SECRET, resume_window=5.0, dev_tokens=True) as second,
        SignalingServer(secret=SECRET, resume_window=5.0) as first,
    ):
        page = await open_page(context, second)
        url = await page.evaluate(START, [[first.url, second.url], token("fo-crash"), "js"])
        assert url == first.url
        await first.close(graceful=False)  # a crash: no close frame
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["url"] == second.url and event["stateReset"] is True
        refused = await page.evaluate(
            "window.errors.filter((e) => e.code === 106).map((e) => e.recovering)"
        )
        assert refused and all(refused)
        assert await page.evaluate("window.s.state") == "joined"
        assert await page.evaluate("window.s.url") == second.url
        state = await page.evaluate("window.s.getSessionState()")  # served by second
        assert [m["name"] for m in state["participants"]] == ["js"]
        await page.evaluate("window.s.leave()")


async def test_a_provider_is_asked_at_each_attempt(server: SignalingServer, context: Any) -> None:
    page = await open_page(context, server)
    async with CutProxy(server.port) as a, CutProxy(server.port) as b:
        await page.evaluate("(urls) => { window.urls = urls; }", [a.url])
        url = await page.evaluate(START, ["provider", token("fo-provider"), "js"])
        assert url == a.url and await page.evaluate("window.asked") == 1
        await page.evaluate("(urls) => { window.urls = urls; }", [b.url])  # discovery moved
        a.cut()
        event = await _until(page, "window.reconnected.length === 1 && window.reconnected[0]")
        assert event["url"] == b.url and event["resumed"] is True
        assert await page.evaluate("window.asked") == 2
        # a provider that returns nothing usable fails the attempt clearly (901), then recovers
        await page.evaluate("() => { window.urls = []; }")
        b.cut()
        await _until(page, "window.errors.some((e) => /no URL/.test(e.message))")
        await page.evaluate("(urls) => { window.urls = urls; }", [b.url])
        event = await _until(page, "window.reconnected.length === 2 && window.reconnected[1]")
        assert event["resumed"] is True
        await page.evaluate("window.s.leave()")


async def test_a_url_that_never_answers_is_passed_after_open_timeout(
    server: SignalingServer, context: Any
) -> None:
    """A node that takes the TCP connection but never answers the upgrade (a
    stalled proxy) costs openTimeout, then the next URL is dialled."""
    page = await open_page(context, server)
    async with CutProxy(server.port) as stalled:
        stalled.pause()  # holds the HTTP upgrade: the socket stays CONNECTING
        url = await page.evaluate(
            """async ([urls, token]) => {
              const { Session } = await import("/roomsignal.js");
              const s = new Session(urls, { token, name: "js", openTimeout: 300 });
              window.s = s;
              await s.join();
              return s.url;
            }""",
            [[stalled.url, server.url], token("fo-stalled")],
        )
        assert url == server.url
        assert stalled.connections == 1  # it was tried first
        await page.evaluate("window.s.leave()")
