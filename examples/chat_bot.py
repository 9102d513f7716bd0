#!/usr/bin/env python3
"""A chat bot: greets whoever joins and answers commands sent to the room.

Commands: ``!ping`` (pong, with the round trip to the server), ``!who`` (who
is here), ``!help``. Replies go privately to the sender.

    roomsignal serve --dev                      # prints a secret to export
    ROOMSIGNAL_SECRET=... python examples/chat_bot.py --session lobby
    # then, in another shell: roomsignal join ws://127.0.0.1:8765 --name me \\
    #     --token "$(roomsignal token --session lobby)"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence

from roomsignal import Session, SessionError
from roomsignal.protocol import MessageReceivedParams, ParticipantJoinedParams
from roomsignal.tokens import mint

HELP = "commands: !ping, !who, !help"


class ChatBot:
    """Answers chat commands on one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.answered = 0
        session.on_participant_joined(self.greet)
        session.on_message(self.answer)
        session.on_session_error(self.report)

    async def greet(self, event: ParticipantJoinedParams) -> None:
        who = event.participant
        await self.session.send_message(f"welcome, {who.name}! {HELP}", to=[who.participant_id])

    async def answer(self, event: MessageReceivedParams) -> None:
        command = event.text.strip().split(maxsplit=1)[0].lower() if event.text.strip() else ""
        if command == "!ping":
            started = time.perf_counter()
            await self.session.ping()
            reply = f"pong ({(time.perf_counter() - started) * 1000:.1f} ms to the server)"
        elif command == "!who":
            names = sorted(p.name for p in self.session.participants.values())
            reply = "here: " + ", ".join([self.session.name, *names])
        elif command == "!help":
            reply = HELP
        else:
            return  # ordinary chat: not for us
        await self.session.send_message(reply, to=[event.from_])
        self.answered += 1
        print(f"answered {event.text!r} from {event.from_}: {reply}")

    def report(self, error: SessionError) -> None:
        print(f"error {error.code} {error.name} [{error.category}]: {error.message}")


async def main(url: str, token: str, *, name: str = "chat-bot", stop: asyncio.Event) -> int:
    """Run the bot until ``stop`` is set; returns how many commands it answered."""
    async with Session(url, token=token, name=name) as session:
        bot = ChatBot(session)
        print(f"{name} joined {session.session_id} as {session.participant_id}")
        await stop.wait()
    return bot.answered


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument("--token", default=os.environ.get("ROOMSIGNAL_TOKEN"))
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="mint a token with this secret (default: $ROOMSIGNAL_SECRET) if no --token",
    )
    parser.add_argument("--session", default="lobby", help="the session to join")
    parser.add_argument("--name", default="chat-bot")
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    return args


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    token = args.token or mint(args.secret, args.session)
    answered = await main(args.url, token, name=args.name, stop=stop)
    print(f"left after answering {answered} command(s)")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(cli())
