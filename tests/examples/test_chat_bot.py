"""examples/chat_bot.py: greets newcomers and answers commands, privately."""

from __future__ import annotations

import asyncio

from roomsignal import Session
from roomsignal.protocol import MessageReceivedParams, ParticipantJoinedParams
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, load_example

chat = load_example("chat_bot")


class Inbox:
    def __init__(self) -> None:
        self.items: list[MessageReceivedParams] = []
        self.changed = asyncio.Event()

    def __call__(self, item: MessageReceivedParams) -> None:
        self.items.append(item)
        self.changed.set()

    async def next_text(self) -> str:
        n = len(self.items)
        async with asyncio.timeout(5):
            while len(self.items) <= n:
                self.changed.clear()
                await self.changed.wait()
        return self.items[n].text


async def test_chat_bot_greets_and_answers(server: SignalingServer) -> None:
    stop = asyncio.Event()
    async with Session(server.url, token=mint(SECRET, "lobby"), name="alice") as alice:
        bot_here: asyncio.Future[ParticipantJoinedParams] = (
            asyncio.get_running_loop().create_future()
        )
        alice.on_participant_joined(lambda e: bot_here.done() or bot_here.set_result(e))
        task = asyncio.create_task(chat.main(server.url, mint(SECRET, "lobby"), stop=stop))
        try:
            assert (await asyncio.wait_for(bot_here, 5)).participant.name == "chat-bot"
            bob = Session(server.url, token=mint(SECRET, "lobby"), name="bob")
            inbox = Inbox()
            bob.on_message(inbox)
            async with bob:
                welcome = inbox.next_text()
                assert (await welcome).startswith("welcome, bob!")
                await bob.send_message("!ping")
                assert (await inbox.next_text()).startswith("pong (")
                assert inbox.items[-1].private is True
                await bob.send_message("!who")
                assert await inbox.next_text() == "here: chat-bot, alice, bob"
                await bob.send_message("just chatting")  # not a command: no answer
                await bob.send_message("!help")
                assert (await inbox.next_text()).startswith("commands:")
        finally:
            stop.set()
            answered = await asyncio.wait_for(task, 5)
    assert answered == 3
