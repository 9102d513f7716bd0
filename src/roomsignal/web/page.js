// The watch-together page: join form, camera preview, remote videos, chat,
// the shared player that follows the session's syncData, and every session
// error by code and name. Query parameters (all optional): url, name, token,
// session and roles (ask /dev/token, on a server started with --dev), media
// (the clip a synchronizer plays), ice (JSON list of RTCIceServer; default
// none), join=1 (join at once). window.app exposes the state for tests.
// The session subscribes by itself to everyone who publishes (autoSubscribe),
// peer to peer or through the server's media node alike, and gets the media
// back by itself after the media node was lost (app.restored lists it).

import { Session } from "/roomsignal.js";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const DRIFT = 0.1; // seconds: re-seek past this (the page promises 0.25)

const app = {
  session: null,
  localStream: null,
  clockOffset: 0, // server clock minus ours, seconds
  sync: null, // the last syncData (or the join's syncState)
  mediaId: query.get("media") || null,
  errors: [],
  messages: [],
  restored: [], // the session's mediaRestored events
  joined: null, // a promise, once joining started
  serverNow: () => Date.now() / 1000 + app.clockOffset,
  expectedPosition,
};
window.app = app;

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function showError(error) {
  app.errors.push(error);
  const li = document.createElement("li");
  li.dataset.code = String(error.code);
  li.dataset.name = error.name;
  const code = document.createElement("b");
  code.textContent = `${error.code} ${error.name}`;
  li.append(code, ` ${error.message}`);
  $("errors").prepend(li);
}

function showMessage(from, text, mine = false) {
  const who = app.session?.participants.get(from)?.name ?? from;
  const li = document.createElement("li");
  li.className = mine ? "mine" : "";
  const b = document.createElement("b");
  b.textContent = mine ? "you" : who;
  li.append(b, `: ${text}`);
  $("chat-log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

// --- videos -------------------------------------------------------------------

function remoteVideo(participantId) {
  let figure = document.querySelector(`figure[data-participant="${CSS.escape(participantId)}"]`);
  if (figure === null) {
    figure = document.createElement("figure");
    figure.dataset.participant = participantId;
    const video = document.createElement("video");
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    caption.textContent = app.session.participants.get(participantId)?.name ?? participantId;
    figure.append(video, caption);
    $("remote-videos").append(figure);
  }
  return figure.querySelector("video");
}

function dropVideo(participantId) {
  document.querySelector(`figure[data-participant="${CSS.escape(participantId)}"]`)?.remove();
}

function showTrack({ participantId, stream }) {
  const video = remoteVideo(participantId);
  if (video.srcObject !== stream) video.srcObject = stream;
}

// --- the shared player ---------------------------------------------------------

function expectedPosition() {
  const s = app.sync;
  if (s === null) return null;
  let position = s.position;
  if (s.playing) position += (app.serverNow() - s.serverTime) * (s.rate ?? 1);
  return position;
}

function loadMedia(mediaId) {
  if (!mediaId || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(mediaId)) return;
  if (app.mediaId === mediaId && $("shared-player").getAttribute("src")) return;
  app.mediaId = mediaId;
  $("shared-player").src = `/media/${mediaId}`;
}

function follow() {
  const s = app.sync;
  const player = $("shared-player");
  if (s === null || player.readyState < 1) return;
  const target = Math.max(0, Math.min(expectedPosition(), player.duration || Infinity));
  const rate = s.rate ?? 1;
  if (player.playbackRate !== rate) player.playbackRate = rate;
  if (Math.abs(player.currentTime - target) > DRIFT) player.currentTime = target;
  if (s.playing && player.paused) player.play().catch(() => {});
  if (!s.playing && !player.paused) player.pause();
  $("sync-status").textContent = `${s.playing ? "playing" : "paused"} at ${target.toFixed(1)} s`;
}

function onSync(data) {
  app.sync = data;
  loadMedia(data.mediaId);
  follow();
}

async function measureClock(session) {
  // The best of a few pings: offset = serverTime - the midpoint of the round trip.
  let best = null;
  for (let i = 0; i < 3; i++) {
    const sent = Date.now() / 1000;
    const serverTime = await session.ping();
    const back = Date.now() / 1000;
    if (best === null || back - sent < best.rtt) best = { rtt: back - sent, offset: serverTime - (sent + back) / 2 };
  }
  app.clockOffset = best.offset;
}

async function shareState(playing, position) {
  const player = $("shared-player");
  const at = position ?? player.currentTime;
  app.sync = { position: at, playing, rate: 1, mediaId: app.mediaId, serverTime: app.serverNow() };
  follow();
  await app.session.sendSyncData(at, playing, { rate: 1, mediaId: app.mediaId ?? undefined });
}

// --- joining -------------------------------------------------------------------

async function join(event) {
  event?.preventDefault();
  if (app.session !== null) return app.joined;
  let iceServers = [];
  try {
    if (query.get("ice")) iceServers = JSON.parse(query.get("ice"));
  } catch {
    setStatus("idle", "the ice parameter is not a JSON list of ICE servers");
    throw new Error("bad ice parameter");
  }
  if (!$("token").value) {
    try {
      $("token").value = await devToken($("room").value.trim());
    } catch (exc) {
      setStatus("idle", exc.message);
      throw exc;
    }
  }
  // One URL, or several separated by spaces or commas (a cluster's nodes: failover).
  const urls = $("server-url").value.split(/[\s,]+/).filter(Boolean);
  let session;
  try {
    session = new Session(urls.length === 1 ? urls[0] : urls, {
      token: $("token").value,
      name: $("name").value,
      iceServers,
      autoSubscribe: true,
    });
  } catch (exc) {
    setStatus("idle", exc.message); // say, not a ws:// or wss:// URL
    throw exc;
  }
  app.session = session;
  session.onSessionError(showError);
  session.onMessage((m) => {
    app.messages.push(m);
    showMessage(m.from, m.text);
  });
  session.onSyncData(onSync);
  session.onTrack(showTrack);
  session.onMediaRestored((event) => app.restored.push(event));
  session.onParticipantLeft(({ participantId }) => dropVideo(participantId));
  session.onStreamUnpublished(({ participantId }) => dropVideo(participantId));
  session.onDisconnected(({ willReconnect }) => setStatus(willReconnect ? "reconnecting" : "closed", willReconnect ? "reconnecting" : "disconnected"));
  session.onReconnected(({ stateReset }) => {
    setStatus("joined", `in ${session.sessionId} as ${session.name}`);
    if (!stateReset) return;
    $("remote-videos").replaceChildren(); // before the session subscribes again, in this iteration
    afresh(session).catch((exc) => console.warn("cannot publish again", exc));
  });
  session.onSessionClosed(() => setStatus("closed", "the session was closed"));
  setStatus("connecting", "joining");
  app.joined = (async () => {
    try {
      await session.join();
    } catch (exc) {
      app.session = null;
      setStatus("idle", "not joined");
      throw exc;
    }
    setStatus("joined", `in ${session.sessionId} as ${session.name}`);
    $("room").value = session.sessionId; // the token's room, whatever the field said
    $("leave").disabled = false;
    $("join").disabled = true;
    $("sync-controls").hidden = !session.roles.includes("synchronizer");
    await measureClock(session);
    if (session.syncState) onSync(session.syncState);
    else loadMedia(app.mediaId);
    await afresh(session);
    return session;
  })();
  app.joined.catch(() => {});
  return app.joined;
}

// After a join, and after a rejoin that reset the state: publish (the session
// subscribes to the others by itself).
async function afresh(session) {
  if (app.localStream !== null && session.participantType !== "viewer") {
    await session.publish(app.localStream);
  }
}

async function leave() {
  const session = app.session;
  app.session = null;
  await session?.leave();
  $("remote-videos").replaceChildren();
  $("leave").disabled = true;
  $("join").disabled = false;
  setStatus("idle", "left");
}

async function sendChat(event) {
  event.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text || app.session === null) return;
  $("chat-input").value = "";
  await app.session.sendMessage(text);
  showMessage(app.session.participantId, text, true);
}

async function startCamera() {
  try {
    app.localStream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
    $("local-video").srcObject = app.localStream;
  } catch (exc) {
    console.warn("no camera", exc);
  }
}

// Without a token, Join asks /dev/token for the Room field's room: a token for
// `room` from a server started with --dev.
async function devToken(room) {
  if (!room) throw new Error("give a token, or a room (on a server started with --dev)");
  const params = new URLSearchParams({ session: room, name: $("name").value, roles: query.get("roles") || "" });
  const answer = await fetch(`/dev/token?${params}`);
  if (!answer.ok) throw new Error("this server gives no tokens (start it with --dev), paste one");
  return (await answer.json()).token;
}

async function fill() {
  // Over TLS the page talks secure WebSockets to the same port (serve --tls-cert).
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  $("server-url").value = query.get("url") || `${scheme}://${location.host}`;
  $("name").value = query.get("name") || `guest-${Math.random().toString(36).slice(2, 7)}`;
  $("token").value = query.get("token") || "";
  $("room").value = query.get("session") || "";
  if (!$("token").value && $("room").value) {
    $("token").value = await devToken($("room").value).catch(() => "");
  }
}

// A closed (or navigated-away) tab leaves at once: else its seat waits out the
// server's resume window (a frozen tile for the others, its name still taken).
// leave() sends its frame before it awaits anything, so it goes out now.
function leaveOnHide() {
  if (app.session !== null) leave().catch(() => {});
}

$("join-form").addEventListener("submit", (e) => join(e).catch(() => {}));
$("leave").addEventListener("click", () => leave());
$("chat-form").addEventListener("submit", (e) => sendChat(e).catch((exc) => console.warn(exc)));
$("sync-play").addEventListener("click", () => shareState(true));
$("sync-pause").addEventListener("click", () => shareState(false));
$("sync-seek-go").addEventListener("click", () => shareState(!$("shared-player").paused, Number($("sync-seek").value)));
$("shared-player").addEventListener("loadedmetadata", follow);
window.addEventListener("pagehide", leaveOnHide);
setInterval(follow, 200);

app.ready = (async () => {
  await Promise.all([startCamera(), fill()]);
  if (query.get("join") === "1") await join().catch(() => {});
})();
