"""The page through a real Janus media node (PROTOCOL.md section 10), in real Chromium.

The page publishes its (fake) camera as one upstream to ``@media`` and aiortc
viewers receive it through Janus; an aiortc publisher's video reaches the
page through Janus too. After a ``kill -9`` of Janus and its restart, the page
publishes and subscribes again by itself. Every media path found is on this
machine (loopback or one of its own addresses).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("aiortc", reason="the media extra is not installed")

from roomsignal import Session
from roomsignal.cli._demo_web import HEIGHT, WIDTH
from roomsignal.cli._load_test import is_this_machine
from roomsignal.media import Publisher, Subscriber, TestPatternTrack
from roomsignal.protocol import IceCandidateNotificationParams, SdpNotificationParams
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess, janus_binary

from .conftest import SECRET, WAIT, open_page, page_joined, token, wait_for_video

pytestmark = pytest.mark.asyncio(loop_scope="module")

if janus_binary() is None:
    if os.environ.get("CI"):
        pytest.fail("janus is not installed (.ci/run installs it)", pytrace=False)
    pytest.skip("janus is not installed (/usr/bin/janus)", allow_module_level=True)

# The page's upstream: its state, how many outgoing connections, the remote address in use.
UPSTREAM = """async () => {
  const s = window.app.session;
  const pcs = [...s._outgoing.values()];
  const out = { media: s.media, count: pcs.length, state: pcs[0]?.connectionState ?? null };
  if (pcs.length === 1) {
    const stats = await pcs[0].getStats();
    for (const r of stats.values()) {
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") {
        out.local = stats.get(r.localCandidateId)?.address;
        out.remote = stats.get(r.remoteCandidateId)?.address;
        out.bytesSent = (out.bytesSent ?? 0) + (r.bytesSent ?? 0);
      }
    }
  }
  return out;
}"""


@pytest_asyncio.fixture(loop_scope="module")
async def janus() -> AsyncIterator[JanusProcess]:
    """A private Janus on 127.0.0.1 for one test."""
    async with JanusProcess() as process:
        yield process


@pytest_asyncio.fixture(loop_scope="module")
async def sfu_server(janus: JanusProcess) -> AsyncIterator[SignalingServer]:
    """A reference server serving the page, driving ``janus``."""
    async with SignalingServer(
        port=0,
        secret=SECRET,
        allow_simulation=True,
        dev_tokens=True,
        sdp_timeout=5.0,
        ping_interval=1.0,
        ping_timeout=1.0,
        close_timeout=1.0,
        media_node=janus.url,
    ) as srv:
        yield srv


def addresses_in(sdp: str) -> set[str]:
    """The address of every candidate line of ``sdp``."""
    return {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def test_page_publishes_to_aiortc_viewers_and_receives_an_aiortc_publisher(
    sfu_server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, sfu_server, session="sfu", name="browser", join="1")
    await page_joined(page)
    await page.evaluate(
        "() => { window.requests = [];"
        " window.app.session.onSubscribeRequest((e) => window.requests.push(e)); }"
    )
    await page.wait_for_function(
        "window.app.session._outgoing.size === 1 && [...window.app.session._outgoing.values()][0]"
        ".connectionState === 'connected'",
        timeout=WAIT * 1000,
    )
    browser_id = await page.evaluate("window.app.session.participantId")

    viewers = [
        Session(sfu_server.url, token=token("sfu"), name=name, reconnect=None)
        for name in ("v1", "v2")
    ]
    subscribers = [Subscriber(viewer) for viewer in viewers]
    seen: list[str] = []  # the media node's offers and candidates, as the viewers got them

    def offer(event: SdpNotificationParams) -> None:
        seen.extend(addresses_in(event.sdp))

    def candidate(event: IceCandidateNotificationParams) -> None:
        if event.candidate:
            seen.append(event.candidate.split()[4])

    bot = Session(sfu_server.url, token=token("sfu"), name="bot", reconnect=None)
    publisher = Publisher(bot, video=TestPatternTrack(WIDTH, HEIGHT))
    try:
        for viewer in viewers:
            viewer.on_sdp_offer(offer)
            viewer.on_ice_candidate(candidate)
            await viewer.connect()
        # browser -> Janus -> aiortc: both viewers decode the page's camera.
        subscriptions = await asyncio.gather(
            *(s.subscribe(browser_id, timeout=WAIT) for s in subscribers)
        )
        for subscription in subscriptions:
            counts = await subscription.wait_for_frames(10, timeout=WAIT)
            assert counts.width and counts.height
        upstream = await page.evaluate(UPSTREAM)
        assert upstream["media"] == "sfu"
        assert upstream["count"] == 1  # one upload for two viewers
        assert await page.evaluate("window.requests.length") == 0  # no subscribeRequest
        assert upstream["bytesSent"] > 0
        # Nothing leaves this machine: every address in use or offered is its own.
        assert is_this_machine(upstream["local"]) and is_this_machine(upstream["remote"])
        assert seen and all(is_this_machine(a) for a in seen), seen
        servers = await page.evaluate(
            "[...window.app.session._outgoing.values()].map((pc) =>"
            " pc.getConfiguration().iceServers.length)"
        )
        assert servers == [0]

        # aiortc -> Janus -> browser: the page subscribes by itself (autoSubscribe).
        await bot.connect()
        await publisher.start()
        await wait_for_video(page, bot.participant_id or "", (WIDTH, HEIGHT))
        assert await page.evaluate("window.requests.length") == 0
        # The page answered the media node as the DTLS server (Janus speaks first).
        setups = await page.evaluate(
            "[...window.app.session._incoming.values()].map((s) =>"
            " s.pc.localDescription.sdp.match(/a=setup:(\\w+)/)[1])"
        )
        assert setups == ["passive"]
        await page.evaluate("window.app.session.leave()")
    finally:
        await publisher.close()
        for subscriber in subscribers:
            await subscriber.close()
        for session in (*viewers, bot):
            await session.close()


async def test_after_janus_is_killed_and_back_the_page_publishes_and_watches_again(
    janus: JanusProcess, sfu_server: SignalingServer, context: Any
) -> None:
    bot = Session(sfu_server.url, token=token("lost"), name="bot", reconnect=None)
    publisher = Publisher(bot, video=TestPatternTrack(WIDTH, HEIGHT))
    viewer = Session(sfu_server.url, token=token("lost"), name="viewer", reconnect=None)
    subscriber = Subscriber(viewer, auto_subscribe=True)
    try:
        await bot.connect()
        await publisher.start()
        page = await open_page(context, sfu_server, session="lost", name="browser", join="1")
        await page_joined(page)
        browser_id = await page.evaluate("window.app.session.participantId")
        selector = f'figure[data-participant="{bot.participant_id}"] video'
        await page.wait_for_function(
            f"document.querySelector('{selector}')?.videoWidth > 0", timeout=WAIT * 1000
        )
        await viewer.connect()
        await subscriber.start()
        await subscriber.wait_for_subscription(browser_id, timeout=WAIT)

        janus.kill()  # kill -9: the server loses its media node at once
        await janus.wait_stopped()
        await page.wait_for_function(
            "window.app.errors.some((e) => e.code === 801 && e.data.reason === 'mediaNodeLost')",
            timeout=WAIT * 1000,
        )
        await janus.start()  # back on the same port: the server reconnects by itself

        # No app code: the page publishes again and watches the bot again by itself.
        await page.wait_for_function(
            "window.app.restored.some((e) => e.kind === 'publish')"
            " && window.app.restored.some((e) => e.kind === 'subscribe')",
            timeout=3 * WAIT * 1000,
        )
        restored = await page.evaluate("window.app.restored")
        kinds = {e["kind"]: e for e in restored}
        assert kinds["publish"]["reason"] == "mediaNodeLost"
        assert kinds["subscribe"]["participantId"] == bot.participant_id
        await page.wait_for_function(
            f"document.querySelector('{selector}')?.videoWidth > 0"
            f" && !document.querySelector('{selector}').paused",
            timeout=WAIT * 1000,
        )
        upstream = await page.evaluate(UPSTREAM)
        assert upstream["count"] == 1
        # The viewer bot gets the page's new upstream by itself too.
        again = await subscriber.wait_for_subscription(browser_id, timeout=3 * WAIT)
        await again.wait_for_frames(5, timeout=WAIT)
        await page.evaluate("window.app.session.leave()")
    finally:
        await subscriber.close()
        await publisher.close()
        await viewer.close()
        await bot.close()


# The first restore publish that succeeds (the node is back) is followed at
# once by an unpublish: sent as its answer arrives, before publish() goes on
# to open the upstream. Each restore publish's outcome is kept too.
UNPUBLISH_DURING_RESTORE = """() => {
  const s = window.app.session;
  const outcome = (p) => p.then(() => "ok", (e) => String(e.error?.code ?? e.name));
  window.restore = null;
  const request = s.request.bind(s);
  s.request = (method, ...rest) => {
    const answer = request(method, ...rest);
    if (method !== "publish" || s._republishing === null || window.restore !== null) return answer;
    return answer.then((result) => {
      if (window.restore === null) window.restore = outcome(s.unpublish());
      return result;
    });
  };
  const publish = s.publish.bind(s);
  s.publish = (...args) => {
    const sent = publish(...args);
    if (s._republishing !== null) window.restorePublish = outcome(sent);
    return sent;
  };
}"""


async def test_an_unpublish_while_the_page_publishes_again_leaves_nothing_restored(
    janus: JanusProcess, sfu_server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, sfu_server, session="undo", name="browser", join="1")
    await page_joined(page)
    await page.wait_for_function(
        "window.app.session._outgoing.size === 1 && [...window.app.session._outgoing.values()][0]"
        ".connectionState === 'connected'",
        timeout=WAIT * 1000,
    )
    janus.kill()
    await janus.wait_stopped()
    await page.wait_for_function(
        "window.app.errors.some((e) => e.code === 801 && e.data.reason === 'mediaNodeLost')"
        " && window.app.session._republishing !== null",
        timeout=WAIT * 1000,
    )
    await page.evaluate(UNPUBLISH_DURING_RESTORE)
    await janus.start()  # the next restore publish reaches a live node
    await page.wait_for_function("window.restore !== null", timeout=3 * WAIT * 1000)
    async with asyncio.timeout(WAIT):
        unpublish, publish = await page.evaluate(
            "async () => { const o = await Promise.all([window.restore, window.restorePublish]);"
            " await new Promise((r) => setTimeout(r, 0)); return o; }"  # the restore loop's next step
        )
    assert unpublish == "ok"
    assert publish != "ok"  # the unpublish, handled first, ended the upstream it opens
    state = await page.evaluate(
        """async () => {
          const s = window.app.session;
          const me = (await s.getSessionState()).participants
            .find((p) => p.participantId === s.participantId);
          return { streams: me.streams ?? null, outgoing: s._outgoing.size,
                   republishing: s._republishing, publishing: s._publishing };
        }"""
    )
    assert state == {"streams": None, "outgoing": 0, "republishing": None, "publishing": None}
    assert not any(e["kind"] == "publish" for e in await page.evaluate("window.app.restored"))
    assert not [m for m in page.console_log if "could not publish again" in m]
    await page.evaluate("window.app.session.leave()")


async def test_a_publish_whose_upstream_is_closed_while_it_is_made_settles(
    sfu_server: SignalingServer, context: Any
) -> None:
    """A closed RTCPeerConnection never settles its createOffer: publish() must not wait on it."""
    page = await open_page(context, sfu_server, session="settle", name="browser", join="1")
    await page_joined(page)
    await page.wait_for_function("window.app.session._outgoing.size === 1", timeout=WAIT * 1000)
    await page.evaluate("window.app.session.unpublish()")
    async with asyncio.timeout(WAIT):
        outcome = await page.evaluate(
            """async () => {
              const s = window.app.session;
              const request = s.request.bind(s);
              s.request = (method, ...rest) => {
                const answer = request(method, ...rest);
                if (method !== "publish") return answer;
                // The app unpublishes as the answer comes: publish() is opening its upstream.
                return answer.then((result) => (s.unpublish(), result));
              };
              try {
                await s.publish(s._localStream);
                return "published";
              } catch (exc) {
                return String(exc.message);
              } finally {
                s.request = request;
              }
            }"""
        )
    assert outcome != "published"
    assert await page.evaluate("window.app.session._outgoing.size") == 0
    await page.evaluate("window.app.session.leave()")
