"""The HTTP side of the server: the page, the module, media ranges, dev tokens, the JS table."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from roomsignal.catalog import entries
from roomsignal.server import SignalingServer
from roomsignal.tokens import verify

from .conftest import SECRET, http_get

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "roomsignal" / "web"
_module_loop = pytest.mark.asyncio(loop_scope="module")  # the server fixture's loop


def _gen_docs() -> Any:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_js_code_table_is_generated_from_the_catalog() -> None:
    gen = _gen_docs()
    source = gen.JS_CLIENT.read_text(encoding="utf-8")
    assert gen.js_with_catalog(source) == source, (
        "roomsignal.js's catalog table is stale: run python scripts/gen_docs.py"
    )
    for entry in entries():
        assert json.dumps(entry.name) in gen.render_js_catalog()
    with pytest.raises(ValueError, match="markers"):
        gen.js_with_catalog("no markers here")


def test_the_page_names_nothing_outside_the_server() -> None:
    for path in WEB.iterdir():
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"https?://", text), f"{path.name} names an outside URL"
            assert "@import" not in text and "url(" not in text, path.name


@_module_loop
async def test_the_page_the_module_and_healthz_are_served(server: SignalingServer) -> None:
    status, headers, body = await http_get(server.port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<video id="shared-player"' in body
    assert "default-src 'self'" in headers["content-security-policy"]
    status, headers, body = await http_get(server.port, "/roomsignal.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"export class Session" in body
    for name in ("/page.js", "/page.css", "/index.html"):
        assert (await http_get(server.port, name))[0] == 200, name
    for name in ("/nope", "/__init__.py", "/../pyproject.toml", "/media/../x", "/media/"):
        assert (await http_get(server.port, name))[0] == 404, name
    assert await http_get(server.port, "/healthz") == (
        200,
        {**(await http_get(server.port, "/healthz"))[1]},
        b"ok\n",
    )


@_module_loop
async def test_media_is_served_with_byte_ranges(server: SignalingServer, clip_dir: Path) -> None:
    whole = (clip_dir / "clip.webm").read_bytes()
    status, headers, body = await http_get(server.port, "/media/clip.webm")
    assert (status, body, headers["content-type"]) == (200, whole, "video/webm")
    assert headers["accept-ranges"] == "bytes"
    status, headers, body = await http_get(
        server.port, "/media/clip.webm", {"Range": "bytes=10-19"}
    )
    assert (status, body, headers["content-range"]) == (
        206,
        whole[10:20],
        f"bytes 10-19/{len(whole)}",
    )
    status, _, body = await http_get(server.port, "/media/clip.webm", {"Range": "bytes=-5"})
    assert (status, body) == (206, whole[-5:])
    status, headers, _ = await http_get(
        server.port, "/media/clip.webm", {"Range": f"bytes={len(whole)}-"}
    )
    assert status == 416 and headers["content-range"] == f"bytes */{len(whole)}"
    assert (await http_get(server.port, "/media/clip.webm", {"Range": "pages=1"}))[0] == 416
    assert (await http_get(server.port, "/media/missing.webm"))[0] == 404


@_module_loop
async def test_dev_tokens_only_in_dev_mode(server: SignalingServer) -> None:
    status, headers, body = await http_get(
        server.port, "/dev/token?session=room&name=ann&roles=moderator,synchronizer"
    )
    assert status == 200 and headers["content-type"] == "application/json"
    claims = verify(json.loads(body)["token"], SECRET)
    assert claims.sid == "room" and sorted(claims.roles) == ["moderator", "synchronizer"]
    assert claims.sub == "ann"
    status, _, body = await http_get(server.port, "/dev/token?name=ann")
    assert status == 400 and "session" in json.loads(body)["error"]
    status, _, body = await http_get(server.port, "/dev/token?session=r&roles=admin")
    assert status == 400 and "admin" in json.loads(body)["error"]
    async with SignalingServer(port=0, secret=SECRET) as plain:
        assert (await http_get(plain.port, "/dev/token?session=room"))[0] == 404
        assert (await http_get(plain.port, "/"))[0] == 200  # the page is on by default


@_module_loop
async def test_no_web_serves_neither_page_nor_module() -> None:
    async with SignalingServer(port=0, secret=SECRET, web=False) as server:
        assert (await http_get(server.port, "/"))[0] == 426  # websockets: upgrade required
        assert (await http_get(server.port, "/roomsignal.js"))[0] == 426
        assert (await http_get(server.port, "/healthz"))[0] == 200
