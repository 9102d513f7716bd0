"""The web side as shipped: in the wheel, off the import path, and the browser-missing rule."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB_FILES = {"index.html", "page.css", "page.js", "roomsignal.js"}


def test_the_wheel_ships_the_page_and_the_module(tmp_path: Path) -> None:
    from hatchling.builders.wheel import WheelBuilder

    [wheel] = list(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"roomsignal/web/{name}" for name in WEB_FILES} <= names
    assert "roomsignal/server/_web.py" in names
    shipped = zipfile.ZipFile(wheel).read("roomsignal/web/roomsignal.js")
    assert shipped == (ROOT / "src" / "roomsignal" / "web" / "roomsignal.js").read_bytes()


def test_importing_roomsignal_imports_no_media_or_browser_library() -> None:
    code = (
        "import sys, roomsignal, roomsignal.server, roomsignal.cli, roomsignal.cli._demo_web\n"
        "loaded = {'aiortc', 'av', 'playwright'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=30)


def test_demo_web_without_the_media_extra_says_so_in_one_line() -> None:
    code = (
        "import sys\n"
        "sys.modules['av'] = None; sys.modules['aiortc'] = None  # as if not installed\n"
        "from roomsignal.cli import main\n"
        "sys.exit(main(['demo', '--web', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "roomsignal demo: demo --web needs the media extra: pip install 'roomsignal[media]'"
    ]


def _browser_test_without_chromium(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["ROOMSIGNAL_CHROMIUM"] = str(ROOT / "no-such-chromium")
    if ci is not None:
        env["CI"] = ci
    test = "tests/web/test_client_api.py::test_error_code_carries_every_catalog_code_by_exact_name"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_without_chromium_browser_tests_skip_with_a_reason_but_fail_under_ci() -> None:
    local = _browser_test_without_chromium(None)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    assert "no Chromium at" in local.stdout
    ci = _browser_test_without_chromium("true")
    assert ci.returncode == 1 and "CI must run the browser tests" in ci.stdout, ci.stdout
