#!/usr/bin/env python3
"""A moderator bot: waits for the room to fill, warns everyone, then closes the session.

Its token carries the ``moderator`` role (``roomsignal token --role moderator``).
Every member, the moderator included, then gets ``sessionError`` 203 and
``sessionClosed``; a later ``join`` to the session gets 203.

    ROOMSIGNAL_SECRET=... python examples/moderator.py --session lobby --members 2

Ctrl-C (or SIGTERM) before it closed the session: it leaves without closing
it, says so, and exits with status 130.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from roomsignal import Session, SessionError, UserError
from roomsignal.protocol import ParticipantJoinedParams, SessionClosedParams
from roomsignal.tokens import mint


@dataclass
class Outcome:
    """What the moderator saw: who was closed out, and the errors it heard."""

    closed_out: list[str]
    errors: list[SessionError]
    closed: SessionClosedParams | None


async def main(
    url: str,
    token: str,
    *,
    members: int = 1,
    grace: float = 1.0,
    wait: float = 60.0,
    reason: str = "the moderator closed the session",
    name: str = "moderator",
) -> Outcome:
    """Join, wait (up to ``wait`` s) for ``members`` others, warn them, close the session."""
    errors: list[SessionError] = []
    closed: asyncio.Future[SessionClosedParams] = asyncio.get_running_loop().create_future()
    arrived = asyncio.Event()
    session = Session(url, token=token, name=name)

    def on_error(error: SessionError) -> None:
        errors.append(error)
        print(f"error {error.code} {error.name} [{error.category}]: {error.message}")

    def on_closed(event: SessionClosedParams) -> None:
        if not closed.done():
            closed.set_result(event)

    session.on_session_error(on_error)
    session.on_session_closed(on_closed)

    def count(event: ParticipantJoinedParams) -> None:
        print(f"{event.participant.name} joined ({len(session.participants)} here)")
        if len(session.participants) >= members:
            arrived.set()

    session.on_participant_joined(count)
    async with session:
        if "moderator" not in session.roles:
            print("warning: this token has no 'moderator' role: closeSession will get 106")
        if len(session.participants) >= members:
            arrived.set()
        print(f"waiting for {members} member(s) in {session.session_id}...")
        try:
            await asyncio.wait_for(arrived.wait(), wait)
        except TimeoutError:
            print(f"only {len(session.participants)} came; closing anyway")
        names = sorted(p.name for p in session.participants.values())
        await session.send_message(f"this session closes in {grace:g} s: {reason}")
        await asyncio.sleep(grace)  # the warning's grace period, not a synchronisation
        try:
            await session.close_session(reason)
        except UserError as exc:  # 106: the token lacks the moderator role
            print(f"cannot close: {exc}")
            return Outcome([], errors, None)
        event = await asyncio.wait_for(closed, 10)
        end = await asyncio.wait_for(session.wait_closed(), 10)  # the server closes us next
        assert not end.by_client and end.session_closed == event
        print(f"session {event.session_id} closed ({event.reason}); closed out: {names}")
    return Outcome(names, errors, event)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument(
        "--token", default=os.environ.get("ROOMSIGNAL_TOKEN"), help="needs the moderator role"
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="mint a moderator token with this secret (default: $ROOMSIGNAL_SECRET)",
    )
    parser.add_argument("--session", default="lobby", help="the session to close")
    parser.add_argument("--members", type=int, default=1, help="others to wait for (default: 1)")
    parser.add_argument("--wait", type=float, default=60.0, help="longest wait for them (s)")
    parser.add_argument("--grace", type=float, default=1.0, help="warning before closing (s)")
    parser.add_argument("--reason", default="the moderator closed the session")
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    return args


async def run(args: argparse.Namespace) -> int:
    """Run ``main``; Ctrl-C or SIGTERM cancels it, and leaving ``async with`` leaves."""
    token = args.token or mint(args.secret, args.session, roles=["moderator"])
    task = asyncio.ensure_future(
        main(
            args.url,
            token,
            members=args.members,
            grace=args.grace,
            wait=args.wait,
            reason=args.reason,
        )
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(signum, task.cancel)
    try:
        outcome = await task
    except asyncio.CancelledError:
        print("interrupted: left the session without closing it")
        return 130
    return 0 if outcome.closed is not None else 1


def cli(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(parse(argv)))
    except KeyboardInterrupt:  # where signals cannot be caught by the loop
        return 130


if __name__ == "__main__":
    sys.exit(cli())
