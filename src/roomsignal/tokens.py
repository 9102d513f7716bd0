"""Mint and verify roomsignal tokens (HS256 JWT, docs/protocol.md section 4).

Required claims: ``sid`` (session id) and ``exp``. Optional: ``iat``,
``sub``, ``roles`` (``synchronizer``, ``moderator``), ``grants``
(``audio``/``video``/``create``, each default true) and ``max_streaming``.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from roomsignal.catalog import ErrorCode

__all__ = [
    "ROLES",
    "Grants",
    "TokenClaims",
    "TokenInvalid",
    "mint",
    "peek_exp",
    "verify",
]

ALGORITHM = "HS256"
ROLES = frozenset({"synchronizer", "moderator"})


@dataclass(frozen=True, slots=True)
class Grants:
    """What a token allows; each defaults to true."""

    audio: bool = True
    video: bool = True
    create: bool = True


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token."""

    sid: str
    exp: float
    sub: str | None = None
    iat: float | None = None
    roles: tuple[str, ...] = ()
    grants: Grants = field(default_factory=Grants)
    max_streaming: int | None = None


class TokenInvalid(Exception):
    """A token that cannot be used; ``code`` is 1100 (expired) or 1101 (not valid)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def mint(
    secret: str,
    session_id: str,
    *,
    ttl: float = 3600.0,
    subject: str | None = None,
    roles: Iterable[str] = (),
    audio: bool = True,
    video: bool = True,
    create: bool = True,
    max_streaming: int | None = None,
    now: float | None = None,
) -> str:
    """A signed token for ``session_id`` that expires ``ttl`` seconds from now.

    A negative ``ttl`` mints an already expired token (for tests and demos).
    Raises ``ValueError`` for an empty ``secret`` or ``session_id`` and for a
    role outside [`ROLES`][roomsignal.tokens.ROLES], and ``TypeError`` when ``roles`` is a bare
    string (which would otherwise be split into letters).
    """
    if not isinstance(secret, str) or not secret:
        raise ValueError("mint() needs a non-empty secret")
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("mint() needs a non-empty session_id (claim 'sid')")
    if isinstance(roles, str | bytes):
        raise TypeError(f"roles must be a list of role names, not the string {roles!r}")
    role_list = list(dict.fromkeys(roles))
    unknown = [role for role in role_list if role not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; known roles: {sorted(ROLES)}")
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sid": session_id,
        "iat": int(issued),
        "exp": round(issued + ttl, 3),
        "roles": role_list,
        "grants": {"audio": audio, "video": video, "create": create},
    }
    if subject is not None:
        claims["sub"] = subject
    if max_streaming is not None:
        claims["max_streaming"] = max_streaming
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, secret: str, *, now: float | None = None) -> TokenClaims:
    """Check the signature and claims; raise ``TokenInvalid`` (1100 or 1101) otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            # ``aud`` is not part of the protocol: a token carrying one is not
            # refused for it. ``nbf``, when present, is still checked.
            options={
                "require": ["exp", "sid"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalid(
            ErrorCode.TOKEN_DATA_IS_NOT_VALID, f"token is not valid: {exc}"
        ) from None
    exp = claims.get("exp")
    sid = claims.get("sid")
    exp_time = _finite(exp)
    if exp_time is None:
        raise TokenInvalid(
            ErrorCode.TOKEN_DATA_IS_NOT_VALID, "token claim 'exp' is not a finite number"
        )
    if not isinstance(sid, str) or not sid:
        raise TokenInvalid(ErrorCode.TOKEN_DATA_IS_NOT_VALID, "token claim 'sid' is not a string")
    if exp_time <= (time.time() if now is None else now):
        raise TokenInvalid(ErrorCode.TOKEN_EXPIRED, "token has expired")
    roles = claims.get("roles", [])
    grants = claims.get("grants", {})
    max_streaming = claims.get("max_streaming")
    sub = claims.get("sub")
    iat = claims.get("iat")
    nbf = claims.get("nbf")
    if (
        not isinstance(roles, list)
        or not all(isinstance(role, str) for role in roles)
        or not isinstance(grants, dict)
        or not all(isinstance(grants.get(k, True), bool) for k in ("audio", "video", "create"))
        or (max_streaming is not None and (type(max_streaming) is not int or max_streaming < 0))
        or (sub is not None and not isinstance(sub, str))
        or ("iat" in claims and _finite(iat) is None)
        # PyJWT skips an ``nbf`` it cannot read as a number: refuse it here.
        or ("nbf" in claims and _finite(nbf) is None)
    ):
        raise TokenInvalid(ErrorCode.TOKEN_DATA_IS_NOT_VALID, "token claims have the wrong types")
    return TokenClaims(
        sid=sid,
        exp=exp_time,
        sub=sub,
        iat=_finite(iat),
        roles=tuple(roles),
        grants=Grants(
            audio=grants.get("audio", True),
            video=grants.get("video", True),
            create=grants.get("create", True),
        ),
        max_streaming=max_streaming,
    )


def _finite(value: object) -> float | None:
    """``value`` as a float if it is a JSON number a float can hold (not bool, inf, nan)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float, e.g. 10**400
        return None
    return number if math.isfinite(number) else None


def peek_exp(token: str) -> float | None:
    """The token's ``exp`` read without verifying the signature; None if unreadable.

    For the client's pre-flight check only: it never trusts anything else.
    """
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError, TypeError, RecursionError):
        return None
    return _finite(claims.get("exp")) if isinstance(claims, dict) else None
