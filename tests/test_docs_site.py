"""The documentation site as built (mkdocs): self-contained, no internals, a usable home.

The site is built once, into a temporary directory, with ``--strict`` as
``.ci/run`` builds it; the tests read the HTML it made.
"""

from __future__ import annotations

import asyncio
import html
import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.events import MessageReceivedParams
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

ROOT = Path(__file__).resolve().parents[1]
SECRET = "docs-site-test-secret-0123456789abcdef"

# attributes through which a page makes the browser fetch something
_LOADING = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
}
_FOREIGN = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //host


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs tools (dev extra) are not installed")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = _LOADING.get(tag, ())
        for name, value in attrs:
            if value is None:
                continue
            if name in names:
                if tag == "link" and dict(attrs).get("rel") in ("canonical", "alternate"):
                    continue  # a link to a page, not something loaded
                self.urls.extend(part.split()[0] for part in value.split(",") if part.strip())
            if name == "style":
                self.styles.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _css_urls(css: str) -> list[str]:
    urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
    urls += re.findall(r"@import\s+['\"]([^'\"]+)", css)
    return urls


def _files(site: Path, suffix: str) -> Iterator[Path]:
    yield from sorted(site.rglob(f"*{suffix}"))


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    foreign: list[str] = []
    pages = list(_files(site, ".html"))
    assert len(pages) > 10
    for page in pages:
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8"))
        for url in parser.urls + [u for css in parser.styles for u in _css_urls(css)]:
            if _FOREIGN.match(url):
                foreign.append(f"{page.relative_to(site)}: {url}")
    for sheet in _files(site, ".css"):
        for url in _css_urls(sheet.read_text(encoding="utf-8")):
            if _FOREIGN.match(url):
                foreign.append(f"{sheet.relative_to(site)}: {url}")
    assert foreign == []
    assert not any("fonts.googleapis.com" in p.read_text(encoding="utf-8") for p in pages)


def _text(page: Path) -> str:
    """The page's visible text: tags dropped (code spans joined up), entities decoded."""
    raw = page.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    raw = re.sub(r"</?span\b[^>]*>", "", raw)  # highlighted code is a span per token
    return html.unescape(re.sub(r"<[^>]+>", "\n", raw))


def test_no_restructuredtext_is_shown_literally(site: Path) -> None:
    shown = []
    for page in _files(site / "reference", ".html"):
        text = _text(page)
        for match in re.finditer(r":(?:class|mod|data|attr|func|meth|exc|obj):`[^`]*`", text):
            shown.append(f"{page.parent.name}: {match.group(0)}")
        for match in re.finditer(r"\S*::\s*$", text, re.M):
            shown.append(f"{page.parent.name}: {match.group(0)!r}")
    assert shown == []


def test_no_docstring_uses_restructuredtext_roles() -> None:
    found = []
    for path in sorted((ROOT / "src" / "roomsignal").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r":(?:class|mod|data|attr|func|meth|exc|obj):`", line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
            if re.search(r"\S::$", line):  # a reST literal block
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []


def _headings(page: Path) -> list[str]:
    return re.findall(r'<h[2-6] id="([^"]+)"', page.read_text(encoding="utf-8"))


def test_the_session_page_shows_no_internals(site: Path) -> None:
    page = site / "reference" / "session" / "index.html"
    headings = _headings(page)
    assert "roomsignal.Session.connect" in headings and "roomsignal.Session.on_message" in headings
    assert not [h for h in headings if "ListenerHub" in h]
    assert "_DEFAULT_POLICY" not in page.read_text(encoding="utf-8")
    assert "reconnect: ReconnectPolicy | None = ReconnectPolicy ()" in " ".join(_text(page).split())


def _public_names() -> set[str]:
    names: set[str] = set()
    for module in ("roomsignal", "roomsignal.events", "roomsignal.errors", "roomsignal.server"):
        names.update(importlib.import_module(module).__all__)
    return names


def test_no_class_shows_a_private_base(site: Path) -> None:
    public = _public_names()
    private = []
    for page in _files(site / "reference", ".html"):
        raw = page.read_text(encoding="utf-8")
        for bases in re.findall(r"Bases: (.*?)</p>", raw, re.S):
            for title in re.findall(r'title="\s*([^"\s]+)', bases):
                name = title.rsplit(".", 1)[-1]
                if title.startswith("roomsignal.") and (name.startswith("_") or name not in public):
                    private.append(f"{page.parent.name}: {title}")
    assert private == []


def test_the_home_page_says_how_to_install_and_start_and_links_every_guide(site: Path) -> None:
    text = " ".join(_text(site / "index.html").split())
    assert "Install" in text and "pip install ." in text
    assert "Quick start" in text and "roomsignal serve" in text
    raw = (site / "index.html").read_text(encoding="utf-8")
    for guide in ("media", "architecture", "scaling", "web", "testing", "client", "errors"):
        assert f'href="{guide}/"' in raw, guide


async def test_the_home_pages_quick_start_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    async with SignalingServer(secret=SECRET) as server:
        code = code.replace("ws://127.0.0.1:8765", server.url).replace("asyncio.run(main())", "")
        monkeypatch.setenv("ROOMSIGNAL_SECRET", SECRET)
        namespace: dict[str, Any] = {}
        exec(compile(code, "docs/index.md", "exec"), namespace)
        heard: asyncio.Queue[MessageReceivedParams] = asyncio.Queue()
        async with Session(server.url, token=mint(SECRET, "movie-night"), name="me") as me:
            me.on_message(heard.put_nowait)
            await namespace["main"]()
            message = await asyncio.wait_for(heard.get(), timeout=5)
    assert message.text == "hello, room"
    assert capsys.readouterr().out == ""  # no error reached the listener
