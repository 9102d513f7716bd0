"""The session error catalog: every code roomsignal knows, with its meaning.

This module is the single source of truth for error codes. ``docs/errors.md``
and the README's table are generated from it (``python scripts/gen_docs.py``),
and a test fails when they differ. It imports nothing else from roomsignal.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CATEGORIES",
    "CLIENT_ONLY_CODES",
    "CatalogEntry",
    "Category",
    "ErrorCode",
    "entries",
    "lookup",
    "render_markdown",
]

Category = Literal["user", "session", "media", "token", "protocol", "unknown"]
CATEGORIES: tuple[Category, ...] = ("user", "session", "media", "token", "protocol", "unknown")


class ErrorCode(enum.IntEnum):
    """Every error code in the catalog, under its exact wire name."""

    # The room's own codes (docs/protocol.md section 3): the reference server emits these.
    USER_GENERIC_ERROR_CODE = 101
    USER_NOT_FOUND_ERROR_CODE = 102
    USER_CLOSED_ERROR_CODE = 103
    EXISTING_USER_IN_SESSION_ERROR_CODE = 104
    USER_NOT_STREAMING_ERROR_CODE = 105
    USER_NOT_AUTHORIZED_ERROR_CODE = 106
    USER_VIDEO_PERMISSION_DENIED_ERROR_CODE = 107
    USER_AUDIO_PERMISSION_DENIED_ERROR_CODE = 108
    SESSION_GENERIC_ERROR_CODE = 201
    SESSION_CLOSED_ERROR_CODE = 203
    SESSION_CANNOT_BE_CREATED_ERROR_CODE = 204
    SESSION_IS_FULL_ERROR_CODE = 206
    MEDIA_ENDPOINT_ERROR_CODE = 303
    TOKEN_EXPIRED = 1100
    TOKEN_DATA_IS_NOT_VALID = 1101
    # The vendor's mobile-SDK codes, decoded by name: our server emits only 801 and 802,
    # through a media node (PROTOCOL.md section 10); the client itself reports 901.
    UNKNOWN_ERROR = -1
    MEDIA_AUDIO_PERMISSION_ERROR_CODE = 308
    MEDIA_VIDEO_PERMISSION_ERROR_CODE = 309
    TRANSPORT_REQUEST_ERROR_CODE = 801
    TRANSPORT_RESPONSE_ERROR_CODE = 802
    TRANSPORT_ERROR_CODE = 803
    GENERIC_CONNECTION_ERROR = 901
    GENERIC_ERROR_CODE = 999
    # Found by the client itself; never sent on the wire.
    REQUEST_TIMEOUT_ERROR_CODE = 902
    CONNECTION_LOST_ERROR_CODE = 903
    CONNECTION_REPLACED_ERROR_CODE = 904
    NOT_CONNECTED_ERROR_CODE = 905
    # JSON-RPC 2.0 reserved codes, for frames that are not valid messages.
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603


CLIENT_ONLY_CODES: frozenset[int] = frozenset(
    {
        ErrorCode.REQUEST_TIMEOUT_ERROR_CODE,
        ErrorCode.CONNECTION_LOST_ERROR_CODE,
        ErrorCode.CONNECTION_REPLACED_ERROR_CODE,
        ErrorCode.NOT_CONNECTED_ERROR_CODE,
    }
)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What the catalog knows of one code.

    ``retryable`` says whether trying the same thing again (for ``join``: a
    reconnection attempt) can succeed without the app changing anything.
    """

    code: int
    name: str
    category: Category
    description: str
    causes: tuple[str, ...]
    retryable: bool


def _e(
    code: ErrorCode, category: Category, description: str, causes: tuple[str, ...], retryable: bool
) -> CatalogEntry:
    return CatalogEntry(int(code), code.name, category, description, causes, retryable)


_ENTRIES: tuple[CatalogEntry, ...] = (
    _e(
        ErrorCode.USER_GENERIC_ERROR_CODE,
        "user",
        "The request is not valid for this participant.",
        (
            "invalid `participantType`",
            "an empty or blank `name` in `join`",
            "`join` on a connection that already joined",
            "target not available while a (un)subscription is in process",
            "ICE candidate queue over `ice_queue_limit`",
        ),
        False,
    ),
    _e(
        ErrorCode.USER_NOT_FOUND_ERROR_CODE,
        "user",
        "The participant (the caller or the target) is not in the session.",
        (
            "any method but `join`/`ping` before `join`",
            "a `target`/`to` that is not in the session",
        ),
        False,
    ),
    _e(
        ErrorCode.USER_CLOSED_ERROR_CODE,
        "user",
        "The other party left during a subscription or an SDP exchange.",
        (
            "the source or target left during a subscription or an SDP exchange "
            "(a `sessionError` notification to the party that remains, or the "
            "response to its pending request)",
        ),
        False,
    ),
    _e(
        ErrorCode.EXISTING_USER_IN_SESSION_ERROR_CODE,
        "user",
        "The name is already taken in this session.",
        (
            "`join` with a `name` already present in the session (a participant "
            "still inside its resume window counts as present)",
        ),
        False,
    ),
    _e(
        ErrorCode.USER_NOT_STREAMING_ERROR_CODE,
        "user",
        "The participant is not streaming what the request needs.",
        (
            "`publish` with neither audio nor video",
            "`sdpAnswer` when no offer was sent on that exchange",
            "`subscribe` to a participant that publishes nothing",
            "`unpublish` when not publishing",
        ),
        False,
    ),
    _e(
        ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE,
        "user",
        "The participant is not allowed to do this.",
        (
            "`sendSyncData` without the `synchronizer` role",
            "`publish` by a `viewer`",
            "`closeSession` without the `moderator` role",
            "`join` with an unknown or expired `oldParticipantSecret` "
            '(`data.reason: "replayGap"` when the replay buffer cannot fill the gap)',
        ),
        False,
    ),
    _e(
        ErrorCode.USER_VIDEO_PERMISSION_DENIED_ERROR_CODE,
        "user",
        "The token grants no video.",
        ("`publish` with `video: true` when the token grants no video",),
        False,
    ),
    _e(
        ErrorCode.USER_AUDIO_PERMISSION_DENIED_ERROR_CODE,
        "user",
        "The token grants no audio.",
        ("`publish` with `audio: true` when the token grants no audio",),
        False,
    ),
    _e(
        ErrorCode.SESSION_GENERIC_ERROR_CODE,
        "session",
        "An unexpected server-side failure while handling a session request.",
        (
            "an unexpected server-side failure (never a traceback on the wire)",
            "`simulateScenario` `internalError`",
        ),
        True,
    ),
    _e(
        ErrorCode.SESSION_CLOSED_ERROR_CODE,
        "session",
        "The session was closed.",
        (
            "`join` to a session that was closed",
            "every member of a session being closed gets it as `sessionError`, "
            "then `sessionClosed`",
        ),
        False,
    ),
    _e(
        ErrorCode.SESSION_CANNOT_BE_CREATED_ERROR_CODE,
        "session",
        "The session does not exist and cannot be created.",
        (
            "`join` to a session that does not exist when the token lacks the `create` grant",
            "the server is at `max_sessions`",
        ),
        False,
    ),
    _e(
        ErrorCode.SESSION_IS_FULL_ERROR_CODE,
        "session",
        "The session has no room for another streaming participant.",
        (
            "`join` as a streaming participant (`full` or `screen`) when the session "
            "already has `max_streaming_participants` of them; viewers are not counted",
            "`join` of any type when the session already has the server's "
            "`max_participants` members",
        ),
        False,
    ),
    _e(
        ErrorCode.MEDIA_ENDPOINT_ERROR_CODE,
        "media",
        "The media exchange cannot proceed.",
        (
            "`subscribe` to a participant already subscribed to",
            "a new exchange while one with the same pair is in progress",
            "an SDP exchange not completed within `sdp_timeout` (to both parties as `sessionError`)",
            "through a media node: it refused the participant's own SDP (answering the "
            "`sdpOffer` or `sdpAnswer` that carried it, with `data.mediaNodeCode` and "
            "`data.mediaNodeReason`)",
            "through a media node: an upstream offer not sent within `sdp_timeout` of `publish`, "
            "an upstream not connected within `sdp_timeout` of the media node's answer, a "
            "subscriber's answer not sent within `sdp_timeout` of the offer, or a subscription "
            "not connected within `sdp_timeout` of the subscriber's answer (to the publisher, "
            "or the subscriber, as `sessionError`; the subscription then ends with "
            "`subscriptionEnded`, reason `connectTimeout`)",
        ),
        True,
    ),
    _e(
        ErrorCode.TOKEN_EXPIRED,
        "token",
        "The token has expired.",
        ("`join` with a token whose `exp` has passed",),
        False,
    ),
    _e(
        ErrorCode.TOKEN_DATA_IS_NOT_VALID,
        "token",
        "The token is not a valid signed JWT or lacks a required claim.",
        (
            "`join` with a token that is not a valid signed JWT, or lacks a required claim",
            "`join` with a token whose claims have the wrong JSON type "
            "(an `nbf` or `iat` that is no number, say)",
        ),
        False,
    ),
    _e(
        ErrorCode.UNKNOWN_ERROR,
        "session",
        "Internal server error (vendor code).",
        ("internal server error",),
        True,
    ),
    _e(
        ErrorCode.MEDIA_AUDIO_PERMISSION_ERROR_CODE,
        "media",
        "Microphone permission is not granted (device side, vendor code).",
        ("microphone permission is not granted",),
        False,
    ),
    _e(
        ErrorCode.MEDIA_VIDEO_PERMISSION_ERROR_CODE,
        "media",
        "Camera permission is not granted (device side, vendor code).",
        ("camera permission is not granted",),
        False,
    ),
    _e(
        ErrorCode.TRANSPORT_REQUEST_ERROR_CODE,
        "media",
        "Failed to make a request to the media node.",
        (
            "`publish`, `subscribe`, `sdpOffer`, `sdpAnswer` or `iceCandidate` when the server "
            "cannot make the request to its media node: none reachable "
            '(`data.reason: "unreachable"`), the connection closed while the request was in '
            'flight (`"connectionClosed"`), no answer within the media node timeout '
            '(`"timeout"`)',
            "the server lost its media node (its connection closed, or a keepalive unanswered), "
            "or took the room over from a cluster node whose media node carried it: "
            "`sessionError` to each publisher and subscriber of an exchange through it, then "
            '`subscriptionEnded` per exchange (`data.reason: "mediaNodeLost"`)',
        ),
        True,
    ),
    _e(
        ErrorCode.TRANSPORT_RESPONSE_ERROR_CODE,
        "media",
        "Invalid response from the media node.",
        (
            "the media node answered something the server cannot use: not its protocol, an "
            "unexpected message, or an error the server does not map (`data.mediaNodeCode` and "
            "`data.mediaNodeReason` carry what it said, when it said anything)",
        ),
        True,
    ),
    _e(
        ErrorCode.TRANSPORT_ERROR_CODE,
        "protocol",
        "Request method not supported, or an invalid or missing request field (vendor code).",
        ("request method not supported", "invalid or missing request field"),
        False,
    ),
    _e(
        ErrorCode.GENERIC_CONNECTION_ERROR,
        "session",
        "The connection failed or closed in the middle of a request (for the vendor SDKs: of joining).",
        (
            "the connection dropped while `join` was in flight (reported by the client)",
            "the connection dropped while another request was in flight (reported by the client)",
            "the server could not be reached when connecting (reported by the client)",
        ),
        True,
    ),
    _e(
        ErrorCode.GENERIC_ERROR_CODE,
        "protocol",
        "The request is not supported (vendor code).",
        ("the request is not supported",),
        False,
    ),
    _e(
        ErrorCode.REQUEST_TIMEOUT_ERROR_CODE,
        "session",
        "No response arrived within the request timeout (client side).",
        ("the server did not answer a request within `request_timeout`",),
        True,
    ),
    _e(
        ErrorCode.CONNECTION_LOST_ERROR_CODE,
        "session",
        "The connection was lost and could not be restored (client side).",
        (
            "the connection closed abnormally and reconnection is off",
            "every reconnection attempt allowed by the policy failed",
            "the resume window passed, or the resume was refused and the policy does not rejoin",
        ),
        False,
    ),
    _e(
        ErrorCode.CONNECTION_REPLACED_ERROR_CODE,
        "session",
        "Another connection took this participant's seat (client side).",
        ("the server closed the connection with 4001 (`replaced`)",),
        False,
    ),
    _e(
        ErrorCode.NOT_CONNECTED_ERROR_CODE,
        "session",
        "The session is not connected (client side).",
        (
            "a request made before `connect()` or after `close()`",
            "a request or wait still pending when the session closed",
        ),
        False,
    ),
    _e(
        ErrorCode.PARSE_ERROR,
        "protocol",
        "The frame is not valid JSON (JSON-RPC parse error).",
        (
            "a text frame that is not valid UTF-8 JSON",
            "a binary frame that is not JSON (read by the roomsignal client; the server closes 1003)",
        ),
        False,
    ),
    _e(
        ErrorCode.INVALID_REQUEST,
        "protocol",
        "The frame is not a valid JSON-RPC message.",
        (
            "a JSON value that is not a message object",
            "a batch (JSON array)",
            'an object with an unreadable `id` or a `jsonrpc` other than `"2.0"`',
            "a response or notification sent to the server",
        ),
        False,
    ),
    _e(
        ErrorCode.METHOD_NOT_FOUND,
        "protocol",
        "The method is not known.",
        (
            "an unknown method (also before `join`)",
            "`simulateScenario` on a server started without simulation",
        ),
        False,
    ),
    _e(
        ErrorCode.INVALID_PARAMS,
        "protocol",
        "The params have the wrong shape or type.",
        ("params of the wrong shape or JSON type (`data.errors` lists `loc` and `msg`)",),
        False,
    ),
    _e(
        ErrorCode.INTERNAL_ERROR,
        "protocol",
        "Internal JSON-RPC error.",
        ("the peer failed to process a valid frame",),
        True,
    ),
)

_BY_CODE: dict[int, CatalogEntry] = {entry.code: entry for entry in _ENTRIES}


def entries() -> tuple[CatalogEntry, ...]:
    """Every catalog entry, in catalog order."""
    return _ENTRIES


def lookup(code: int) -> CatalogEntry:
    """The entry for ``code``; never raises.

    A code the catalog does not know (a newer server's, say) gets an entry of
    category ``unknown`` that keeps the number, named ``UNKNOWN_<code>``.
    """
    entry = _BY_CODE.get(code)
    if entry is not None:
        return entry
    try:
        code = int(code)
    except (TypeError, ValueError, OverflowError):
        code = int(ErrorCode.UNKNOWN_ERROR)
    entry = _BY_CODE.get(code)
    if entry is not None:
        return entry
    return CatalogEntry(
        code, f"UNKNOWN_{code}", "unknown", "A code the catalog does not know.", (), False
    )


def render_markdown(*, codes: Iterable[int] | None = None, note: bool = True) -> str:
    """The catalog as the Markdown table of ``docs/errors.md``.

    ``codes`` keeps only those rows (in catalog order); ``note=False`` leaves
    out the comment for the project's maintainers (how the page is generated).
    """
    lines = ["# Error catalog", ""]
    if note:  # a comment: the page's readers never see it
        lines += [
            "<!-- Generated from roomsignal.catalog by `python scripts/gen_docs.py`;",
            "do not edit by hand (a test compares the two). -->",
            "",
        ]
    lines += [
        "Codes 902-905 are found by the client itself and never sent on the wire. A code",
        "not listed here is kept by number with category `unknown`.",
        "",
        "| code | name | category | retryable | description | causes |",
        "|---:|---|---|---|---|---|",
    ]
    wanted = None if codes is None else set(codes)
    for entry in _ENTRIES:
        if wanted is not None and entry.code not in wanted:
            continue
        causes = "; ".join(entry.causes).replace("|", "\\|")
        lines.append(
            f"| {entry.code} | `{entry.name}` | {entry.category} | "
            f"{'yes' if entry.retryable else 'no'} | {entry.description} | {causes} |"
        )
    return "\n".join(lines) + "\n"
