"""``roomsignal token``: mint a token for a session (docs/protocol.md section 4)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from roomsignal.cli._options import (
    SECRET_ENV,
    UsageError,
    add_secret_option,
    non_negative_int,
    resolve_secret,
    weak_secret_note,
)
from roomsignal.tokens import mint

__all__ = ["ROLES", "add_token_command"]

ROLES = ("synchronizer", "moderator")


def add_token_command(commands: Any) -> None:
    """Register ``token`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "token",
        help="mint a token for a session",
        description="Mint an HS256 token for one session and print it on stdout.",
    )
    add_secret_option(parser)
    parser.add_argument("--session", required=True, help="the session (room) id, claim 'sid'")
    parser.add_argument(
        "--ttl", type=float, default=3600.0, help="seconds until it expires (default: 3600)"
    )
    parser.add_argument(
        "--role",
        action="append",
        choices=ROLES,
        default=[],
        help="a role to grant (repeatable)",
    )
    parser.add_argument("--no-video", action="store_true", help="grant no video")
    parser.add_argument("--no-audio", action="store_true", help="grant no audio")
    parser.add_argument(
        "--no-create", action="store_true", help="may not create the session, only join it"
    )
    parser.add_argument(
        "--max-streaming",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="streaming participants allowed when this token creates the session",
    )
    parser.add_argument("--subject", default=None, help="claim 'sub' (who the token is for)")
    parser.set_defaults(run=run_token)


def run_token(args: argparse.Namespace) -> int:
    """Print one token."""
    secret = resolve_secret(args)
    if secret is None:
        raise UsageError(f"no secret: pass --secret or set {SECRET_ENV}")
    if not args.session:
        raise UsageError("--session must not be empty")
    token = mint(
        secret,
        args.session,
        ttl=args.ttl,
        subject=args.subject,
        roles=list(dict.fromkeys(args.role)),
        audio=not args.no_audio,
        video=not args.no_video,
        create=not args.no_create,
        max_streaming=args.max_streaming,
    )
    if args.ttl <= 0:
        print(
            f"roomsignal token: warning: --ttl {args.ttl:g} mints a token that has already "
            "expired (the server answers 1100 TOKEN_EXPIRED)",
            file=sys.stderr,
        )
    note = weak_secret_note(secret)
    if note is not None:
        print(f"roomsignal token: {note}", file=sys.stderr)
    print(token)
    return 0
