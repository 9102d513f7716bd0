"""roomsignal.testing: the pytest plugin users test their bots with, used here for real."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from roomsignal import ErrorCode, Reconnected, SessionErrorException
from roomsignal.events import MessageReceivedParams
from roomsignal.server import SignalingServer
from roomsignal.testing import FAST_RECONNECT, CutProxy
from roomsignal.testing.plugin import SessionFactory, TokenFactory
from roomsignal.tokens import verify

ROOT = Path(__file__).resolve().parents[2]


async def test_sessions_of_the_factory_chat_through_the_real_server(
    roomsignal_session: SessionFactory,
) -> None:
    alice, bob = roomsignal_session("alice"), roomsignal_session("bob")
    heard: asyncio.Queue[MessageReceivedParams] = asyncio.Queue()
    bob.on_message(heard.put_nowait)
    async with alice, bob:
        await alice.send_message("hi bob")
        message = await asyncio.wait_for(heard.get(), timeout=5)
    assert (message.text, message.private) == ("hi bob", False)


def test_tokens_are_signed_with_the_servers_secret(
    roomsignal_token: TokenFactory, roomsignal_secret: str
) -> None:
    claims = verify(roomsignal_token("lobby", roles=["moderator"]), roomsignal_secret)
    assert (claims.sid, claims.roles) == ("lobby", ("moderator",))


@pytest.mark.roomsignal_server(max_streaming_participants=1, sdp_timeout=0.25)
async def test_the_marker_configures_the_server(roomsignal_server: SignalingServer) -> None:
    assert roomsignal_server.config.max_streaming_participants == 1
    assert roomsignal_server.config.sdp_timeout == 0.25
    assert roomsignal_server.config.allow_simulation  # the plugin's default stays


async def test_cut_proxy_cuts_and_the_session_resumes(
    roomsignal_session: SessionFactory, cut_proxy: CutProxy
) -> None:
    bot = roomsignal_session("bot", url=cut_proxy.url)
    back: asyncio.Queue[Reconnected] = asyncio.Queue()
    bot.on_reconnected(back.put_nowait)
    async with bot:
        cut_proxy.cut()
        event = await asyncio.wait_for(back.get(), timeout=5)
        assert event.resumed
        assert cut_proxy.connections == 2


async def test_the_factory_takes_several_urls_and_fails_over(
    roomsignal_session: SessionFactory, roomsignal_server: SignalingServer, cut_proxy: CutProxy
) -> None:
    """Two ways to one server: when the proxy dies, the session resumes through the other."""
    bot = roomsignal_session("bot", url=[cut_proxy.url, roomsignal_server.url])
    back: asyncio.Queue[Reconnected] = asyncio.Queue()
    bot.on_reconnected(back.put_nowait)
    async with bot:
        assert bot.url == cut_proxy.url
        cut_proxy.refuse = True
        cut_proxy.cut()
        event = await asyncio.wait_for(back.get(), timeout=5)
        assert event.resumed and event.url == roomsignal_server.url == bot.url


async def test_the_factory_refuses_an_empty_list_of_urls(
    roomsignal_session: SessionFactory,
) -> None:
    with pytest.raises(ValueError, match="empty"):
        roomsignal_session("bot", url=[])


async def test_refusing_proxy_makes_connect_fail(
    roomsignal_session: SessionFactory, cut_proxy: CutProxy
) -> None:
    cut_proxy.refuse = True
    bot = roomsignal_session("bot", url=cut_proxy.url, reconnect=None)
    with pytest.raises(SessionErrorException) as info:
        await bot.connect()
    assert info.value.error.code in (ErrorCode.GENERIC_CONNECTION_ERROR, 902, 903)


def test_the_plugins_policy_gives_up_without_waiting_out_the_seat() -> None:
    """A user's test of giving up must not wait out a 30 s resume window."""
    assert not FAST_RECONNECT.outlast_seat
    assert FAST_RECONNECT.gives_up(FAST_RECONNECT.max_attempts, 0.0, 30.0)
    # the most its waits can add up to (jittered: about half of it on average)
    assert FAST_RECONNECT.max_attempts * FAST_RECONNECT.max_delay <= 10.0


def test_cut_proxy_refuses_a_target_off_this_machine() -> None:
    with pytest.raises(ValueError, match="loopback"):
        CutProxy(80, target_host="192.0.2.1")


def _docs_blocks(language: str) -> list[str]:
    text = (ROOT / "docs" / "testing.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _docs_example() -> str:
    blocks = _docs_blocks("python")
    assert len(blocks) == 1
    return blocks[0]


def test_the_users_test_file_in_docs_testing_md_passes_copied_as_it_is(
    pytester: pytest.Pytester,
) -> None:
    # a new project: no pytest.ini, pyproject.toml nor conftest.py; pytest-asyncio
    # in its default (strict) mode
    pytester.makepyfile(test_user_bot=_docs_example())
    assert not any(pytester.path.glob("*.ini")) and not any(pytester.path.glob("*.toml"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["asyncio: mode=Mode.STRICT*"])  # pytest-asyncio's default
    # pytest-asyncio 1.x warns that asyncio_default_fixture_loop_scope is unset:
    # then the page must say so, and what to add, before the example
    strict = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::pytest.PytestDeprecationWarning"
    )
    if strict.ret != 0:
        assert "asyncio_default_fixture_loop_scope" in "\n".join(strict.outlines + strict.errlines)
        intro = (ROOT / "docs" / "testing.md").read_text().split("```python")[0]
        assert "PytestDeprecationWarning" in intro, "the page promises no warning"
        assert "asyncio_default_fixture_loop_scope" in intro


def test_the_config_lines_in_docs_testing_md_make_the_example_warning_free(
    pytester: pytest.Pytester,
) -> None:
    [config] = _docs_blocks("toml")
    pytester.makefile(".toml", pyproject=config)
    pytester.makepyfile(test_user_bot=_docs_example())
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::pytest.PytestDeprecationWarning"
    )
    result.assert_outcomes(passed=5)
    assert "Warning" not in "\n".join(result.outlines + result.errlines)


def test_the_config_lines_in_docs_testing_md_set_auto_mode(pytester: pytest.Pytester) -> None:
    [config] = _docs_blocks("toml")
    pytester.makefile(".toml", pyproject=config)
    # the example without its marker line: auto mode runs it all the same
    example = "\n".join(
        line for line in _docs_example().splitlines() if not line.startswith("pytestmark")
    )
    pytester.makepyfile(test_user_bot=example)
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestDeprecationWarning"
    )
    result.assert_outcomes(passed=5)


def test_a_listener_that_raised_fails_the_users_test(pytester: pytest.Pytester) -> None:
    # strict mode, marked: the plugin's fixtures work in either pytest-asyncio mode
    pytester.makepyfile(
        test_broken="""
import asyncio
import pytest

@pytest.mark.asyncio
async def test_listener_raises(roomsignal_session):
    a, b = roomsignal_session("a"), roomsignal_session("b")
    got = asyncio.Event()

    @b.on_message
    def broken(message):
        got.set()
        raise RuntimeError("listener bug")

    await a.connect()
    await b.connect()  # not closed here: the fixture closes both, and reports
    await a.send_message("boom")
    await asyncio.wait_for(got.wait(), 5)
"""
    )
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1, errors=1)  # the test ran; its teardown failed
    result.stdout.fnmatch_lines(["*listener of session 'b' raised RuntimeError: listener bug*"])
