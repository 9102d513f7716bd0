"""``roomsignal serve`` passes every hostile-load limit flag through to the server."""

from __future__ import annotations

import pytest

from roomsignal import Session, SessionErrorException
from roomsignal.cli import build_parser
from roomsignal.cli._hardening import _FLAGS, hardening_kwargs
from roomsignal.tokens import mint

from .conftest import SECRET, spawn


def test_every_limit_has_a_flag_and_reaches_the_server_options() -> None:
    args = ["serve"]
    for keyword, *_ in _FLAGS:
        args += ["--" + keyword.replace("_", "-"), "7"]
    parsed = build_parser().parse_args(args)
    assert hardening_kwargs(parsed) == {keyword: 7 for keyword, *_ in _FLAGS}


def test_a_negative_limit_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-text-bytes", "-1"])


async def test_serve_enforces_a_size_limit_flag() -> None:
    args = ["serve", "--port", "0", "--max-text-bytes", "5", "--log-level", "warning"]
    async with spawn(*args, ROOMSIGNAL_SECRET=SECRET) as proc:
        line = await proc.line(lambda line: line.startswith("listening on ws://"))
        url = line.split()[2]
        async with Session(url, token=mint(SECRET, "room"), name="a", reconnect=None) as session:
            await session.send_message("12345")
            with pytest.raises(SessionErrorException) as info:
                await session.send_message("123456")
            assert info.value.error.code == -32602
            assert info.value.error.data["errors"][0]["loc"] == ["params", "text"]
            assert info.value.error.data["errors"][0]["limit"] == 5
