"""``roomsignal serve`` and the page: served by default, ``--no-web``, ``--dev`` tokens."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request

from roomsignal.tokens import verify

from .conftest import SECRET, spawn


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def _port(proc: object) -> int:
    line = await proc.line(lambda line: line.startswith("listening on ws://"))  # type: ignore[attr-defined]
    return int(line.split()[2].rsplit(":", 1)[1])


async def test_serve_serves_the_page_and_no_dev_tokens_by_default() -> None:
    async with spawn("serve", "--port", "0", ROOMSIGNAL_SECRET=SECRET) as proc:
        port = await _port(proc)
        await proc.line(lambda line: "the page: http://" in line)
        status, body = await asyncio.to_thread(_get, port, "/")
        assert status == 200 and b"shared-player" in body
        assert (await asyncio.to_thread(_get, port, "/roomsignal.js"))[0] == 200
        assert (await asyncio.to_thread(_get, port, "/dev/token?session=r"))[0] == 404
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait() == 0


async def test_serve_no_web_and_dev_with_a_given_secret() -> None:
    args = ("serve", "--port", "0", "--no-web", "--dev", "--secret", SECRET)
    async with spawn(*args) as proc:
        port = await _port(proc)
        assert not any(line.startswith("dev secret") for line in proc.stdout)  # --secret honoured
        assert (await asyncio.to_thread(_get, port, "/"))[0] == 426
        assert (await asyncio.to_thread(_get, port, "/roomsignal.js"))[0] == 426
        status, body = await asyncio.to_thread(
            _get, port, "/dev/token?session=room&name=n&roles=synchronizer"
        )
        assert status == 200
        claims = verify(json.loads(body)["token"], SECRET)
        assert (claims.sid, list(claims.roles)) == ("room", ["synchronizer"])
        assert (await asyncio.to_thread(_get, port, "/healthz")) == (200, b"ok\n")
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait() == 0
