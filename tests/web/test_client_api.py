"""roomsignal.js through a real page: its catalog table, errors, every event, requests, resume.

The Python side is the public ``roomsignal.Session`` against the reference
server; the JS side runs in Chromium, imported as ``/roomsignal.js``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomsignal import ErrorCode, Session, SessionError
from roomsignal.catalog import entries
from roomsignal.protocol import MessageReceivedParams, SyncDataParams
from roomsignal.server import SignalingServer

from .conftest import WAIT, open_page, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

# PROTOCOL.md section 6, and the listener each one feeds in roomsignal.js.
NOTIFICATIONS = {
    "participantJoined": "onParticipantJoined",
    "participantLeft": "onParticipantLeft",
    "streamPublished": "onStreamPublished",
    "streamUnpublished": "onStreamUnpublished",
    "subscribeRequest": "onSubscribeRequest",
    "sdpOffer": "onSdpOffer",
    "sdpAnswer": "onSdpAnswer",
    "iceCandidate": "onIceCandidate",
    "subscriptionEnded": "onSubscriptionEnded",
    "messageReceived": "onMessage",
    "syncData": "onSyncData",
    "sessionError": "onSessionError",
    "sessionClosed": "onSessionClosed",
}
FAKE_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

# A JS session in the page, every event recorded in window.events[name].
START = """async ([url, token, name, events]) => {
  const { Session } = await import("/roomsignal.js");
  const s = new Session(url, { token, name });
  window.s = s;
  window.events = {};
  for (const e of events) { window.events[e] = []; s["on" + e[0].toUpperCase() + e.slice(1)]((x) => window.events[e].push(x)); }
  const result = await s.join();
  return result.participantId;
}"""
EVENT_NAMES = [
    *(
        name.removeprefix("on")[0].lower() + name.removeprefix("on")[1:]
        for name in NOTIFICATIONS.values()
    ),
    "connected",
    "reconnecting",
    "reconnected",
    "disconnected",
]


async def _wait(page: Any, expression: str) -> None:
    await page.wait_for_function(expression, timeout=WAIT * 1000)


async def test_error_code_carries_every_catalog_code_by_exact_name(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    table = await page.evaluate("import('/roomsignal.js').then((m) => ({...m.ErrorCode}))")
    assert table == {e.name: e.code for e in entries()}
    unknown = await page.evaluate("import('/roomsignal.js').then((m) => m.lookup(4242))")
    assert unknown["category"] == "unknown" and unknown["name"] == "UNKNOWN_4242"


async def test_join_rejects_with_the_very_object_on_session_error_got(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    outcome = await page.evaluate(
        """async ([url, token]) => {
          const { Session, ErrorCode, SessionErrorException } = await import("/roomsignal.js");
          const got = [];
          const s = new Session(url, { token, name: "x" });
          s.onSessionError((e) => got.push(e));
          try { await s.join(); return "joined"; } catch (exc) {
            return { same: exc.error === got[0], count: got.length, isError: exc instanceof Error,
                     isSEE: exc instanceof SessionErrorException, error: exc.error, state: s.state,
                     expected: ErrorCode.TOKEN_DATA_IS_NOT_VALID };
          }
        }""",
        [server.url, "not-a-jwt"],
    )
    assert outcome["same"] is True and outcome["count"] == 1
    assert outcome["isError"] and outcome["isSEE"]
    error = outcome["error"]
    assert error["code"] == outcome["expected"] == ErrorCode.TOKEN_DATA_IS_NOT_VALID
    assert (error["name"], error["category"], error["method"]) == (
        "TOKEN_DATA_IS_NOT_VALID",
        "token",
        "join",
    )
    assert set(error) >= {"code", "name", "category", "message", "data"}
    assert outcome["state"] == "idle"  # a failed join may be tried again


async def test_every_protocol_event_has_its_listener_and_fires(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    methods = await page.evaluate(
        "import('/roomsignal.js').then((m) => Object.getOwnPropertyNames(m.Session.prototype))"
    )
    for on in NOTIFICATIONS.values():
        assert on in methods and "off" + on.removeprefix("on") in methods

    bot = Session(
        server.url,
        token=token("events", roles=["synchronizer", "moderator"]),
        name="bot",
        reconnect=None,
    )
    offers: asyncio.Queue[Any] = asyncio.Queue()
    bot.on_subscribe_request(offers.put_nowait)
    answers: asyncio.Queue[Any] = asyncio.Queue()
    bot.on_sdp_offer(answers.put_nowait)
    js_id = await page.evaluate(START, [server.url, token("events"), "js", EVENT_NAMES])
    async with bot:
        await _wait(page, "window.events.participantJoined.length === 1")
        await bot.publish(audio=False, video=True)
        await _wait(page, "window.events.streamPublished.length === 1")
        # The bot subscribes to the page (raw publish: no local stream, the test answers).
        await page.evaluate("window.s.request('publish', { audio: false, video: true })")
        exchange = await bot.subscribe(js_id)
        await _wait(page, "window.events.subscribeRequest.length === 1")
        await page.evaluate(
            "([x, sdp]) => window.s.request('sdpOffer', { exchangeId: x, sdp })",
            [exchange, FAKE_SDP],
        )
        await bot.send_answer(exchange, FAKE_SDP)
        await _wait(page, "window.events.sdpAnswer.length === 1")
        await bot.send_ice_candidate(
            exchange, "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdp_mid="0"
        )
        await _wait(page, "window.events.iceCandidate.length === 1")
        await bot.unsubscribe(js_id)
        await _wait(page, "window.events.subscriptionEnded.length === 1")
        # The page subscribes to the bot (raw): the bot offers.
        other = await page.evaluate(
            "(target) => window.s.request('subscribe', { target })", bot.participant_id
        )
        request = await asyncio.wait_for(offers.get(), WAIT)
        await bot.send_offer(request.exchange_id, FAKE_SDP)
        await _wait(page, "window.events.sdpOffer.length === 1")
        assert other["exchangeId"] == request.exchange_id
        await bot.send_message("hello")
        await bot.send_sync_data(1.5, True, media_id="clip.webm")
        await page.evaluate("window.s.simulateScenario('sessionErrors', { code: 303, count: 2 })")
        await bot.unpublish()
        await _wait(
            page,
            "window.events.streamUnpublished.length === 1"
            " && window.events.sessionError.length === 2"
            " && window.events.syncData.length === 1 && window.events.message.length === 1",
        )
        leaver = Session(server.url, token=token("events"), name="leaver", reconnect=None)
        async with leaver:
            await _wait(page, "window.events.participantJoined.length === 2")
        await _wait(page, "window.events.participantLeft.length === 1")
        await bot.close_session("done")
        await _wait(page, "window.events.sessionClosed.length === 1")
        events = await page.evaluate("window.events")
    assert events["message"][0]["text"] == "hello" and events["message"][0]["private"] is False
    sync = events["syncData"][0]
    assert (sync["position"], sync["playing"], sync["rate"], sync["mediaId"]) == (
        1.5,
        True,
        1.0,
        "clip.webm",
    )
    assert [e["code"] for e in events["sessionError"]] == [303, 303, 203]
    assert events["sessionError"][0]["name"] == "MEDIA_ENDPOINT_ERROR_CODE"
    assert events["connected"][0]["participantId"] == js_id
    for on in NOTIFICATIONS.values():
        event = on.removeprefix("on")
        event = event[0].lower() + event[1:]
        assert events[event], f"{on} never fired"
    assert await page.evaluate("window.s.state") == "closed"


async def test_send_message_and_send_sync_data_reach_python(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    bot = Session(server.url, token=token("talk"), name="bot", reconnect=None)
    third = Session(server.url, token=token("talk"), name="third", reconnect=None)
    heard: asyncio.Queue[MessageReceivedParams] = asyncio.Queue()
    third_heard: list[MessageReceivedParams] = []
    synced: asyncio.Queue[SyncDataParams] = asyncio.Queue()
    bot.on_message(heard.put_nowait)
    third.on_message(third_heard.append)
    bot.on_sync_data(synced.put_nowait)
    errors: list[SessionError] = []
    async with bot, third:
        js_id = await page.evaluate(
            START, [server.url, token("talk", roles=["synchronizer"]), "js", ["sessionError"]]
        )
        await page.evaluate("window.s.sendMessage('to all')")
        await page.evaluate("(to) => window.s.sendMessage('just you', [to])", bot.participant_id)
        await page.evaluate("window.s.sendSyncData(12.5, true, { rate: 1, mediaId: 'clip' })")
        first, second = (
            await asyncio.wait_for(heard.get(), WAIT),
            await asyncio.wait_for(heard.get(), WAIT),
        )
        assert (first.text, first.private, first.from_) == ("to all", False, js_id)
        assert (second.text, second.private) == ("just you", True)
        sync = await asyncio.wait_for(synced.get(), WAIT)
        assert (sync.position, sync.playing, sync.rate, sync.media_id, sync.from_) == (
            12.5,
            True,
            1.0,
            "clip",
            js_id,
        )
        assert [m.text for m in third_heard] == ["to all"]
        # Without the role: rejected with 106, and the same object reached onSessionError.
        bot.on_session_error(errors.append)
        refused = await page.evaluate(
            """async ([url, token]) => {
              const { Session } = await import("/roomsignal.js");
              const s = new Session(url, { token, name: "norole" });
              const got = [];
              s.onSessionError((e) => got.push(e));
              await s.join();
              try { await s.sendSyncData(1, false); } catch (exc) {
                await s.leave();
                return [exc.error.code, exc.error.name, exc.error.method, exc.error === got[0]];
              }
              return null;
            }""",
            [server.url, token("talk")],
        )
        assert refused == [106, "USER_NOT_AUTHORIZED_ERROR_CODE", "sendSyncData", True]
        await page.evaluate("window.s.leave()")


async def test_reconnect_resumes_with_secret_and_last_seq_losing_and_doubling_nothing(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    bot = Session(server.url, token=token("resume"), name="bot", reconnect=None)
    async with bot:
        js_id = await page.evaluate(
            START, [server.url, token("resume"), "js", ["message", "reconnected", "disconnected"]]
        )
        # Record what the client sends, and hold its rejoin until the test lets it go.
        await page.evaluate(
            """() => {
              window.frames = [];
              const send = WebSocket.prototype.send;
              WebSocket.prototype.send = function (data) { window.frames.push(JSON.parse(data)); return send.call(this, data); };
              window.gate = new Promise((resolve) => (window.release = resolve));
              const join = window.s._joinNewConnection.bind(window.s);
              window.s._joinNewConnection = async (resume) => { await window.gate; return join(resume); };
            }"""
        )
        for i in range(5):
            await bot.send_message(f"m{i}")
        await _wait(page, "window.events.message.length === 5")
        secret, last_seq = await page.evaluate("[window.s._secret, window.s.lastSeq]")
        # (not awaited: its answer comes after the held rejoin, re-sent with its id)
        await page.evaluate("() => { window.s.simulateScenario('connectionDrop'); }")
        await _wait(page, "window.events.disconnected.length === 1")
        for i in range(5, 12):  # sent while the page is away: only the replay can deliver them
            await bot.send_message(f"m{i}")
        await page.evaluate("window.release()")
        await _wait(page, "window.events.reconnected.length === 1")
        for i in range(12, 15):
            await bot.send_message(f"m{i}")
        await _wait(page, "window.events.message.length >= 15")
        result = await page.evaluate(
            "({ texts: window.events.message.map((m) => m.text), again: window.events.reconnected[0],"
            " join: window.frames.filter((f) => f.method === 'join').pop(), id: window.s.participantId,"
            " lastSeq: window.s.lastSeq })"
        )
    assert result["texts"] == [f"m{i}" for i in range(15)]
    assert result["join"]["params"]["oldParticipantSecret"] == secret
    assert result["join"]["params"]["lastSeq"] == last_seq
    assert result["again"]["resumed"] is True and result["again"]["replayed"] >= 7
    assert result["id"] == js_id
    assert result["lastSeq"] == last_seq + 10  # m5 ... m14, each once


async def test_leave_while_joining_or_rejoining_leaves_no_seat_behind(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    code = await page.evaluate(
        """async ([url, token]) => {
          const { Session } = await import("/roomsignal.js");
          const s = new Session(url, { token, name: "quick" });
          const joining = s.join();
          await s.leave();
          try { await joining; return "joined"; } catch (exc) {
            return [exc.error.code, s.state, exc.error.data, exc.error.source];
          }
        }""",
        [server.url, token("seats")],
    )
    # a client-side error carries the same data as the Python client's: name and method
    assert code == [
        ErrorCode.NOT_CONNECTED_ERROR_CODE,
        "closed",
        {"name": "NOT_CONNECTED_ERROR_CODE", "method": "join"},
        "client",
    ]
    # The name is free at once: no seat waits out a resume window.
    async with Session(server.url, token=token("seats"), name="quick", reconnect=None):
        pass

    await page.evaluate(START, [server.url, token("seats"), "again", ["disconnected"]])
    await page.evaluate(
        """() => {
          window.gate = new Promise((resolve) => (window.release = resolve));
          const join = window.s._joinNewConnection.bind(window.s);
          window.s._joinNewConnection = async (resume) => { const r = await join(resume); await window.gate; return r; };
        }"""
    )
    # (not awaited: its answer comes after the held rejoin, re-sent with its id)
    await page.evaluate("() => { window.s.simulateScenario('connectionDrop'); }")
    await _wait(page, "window.events.disconnected.length === 1")
    # The rejoin is answered (the seat taken back) but held; leave() waits for it.
    await page.wait_for_function("window.s._ws !== null")
    state = await page.evaluate(
        "() => { const leaving = window.s.leave(); window.release();"
        " return leaving.then(() => window.s.state); }"
    )
    assert state == "closed"
    async with Session(server.url, token=token("seats"), name="again", reconnect=None):
        pass
