"""Tokens: mint, verify, and the unverified exp peek the client uses."""

from __future__ import annotations

import time

import jwt
import pytest

from roomsignal import ErrorCode
from roomsignal.tokens import Grants, TokenInvalid, mint, peek_exp, verify

SECRET = "test-secret-0123456789abcdef-0123456789"


def test_mint_and_verify_round_trip() -> None:
    token = mint(
        SECRET, "room", ttl=60, subject="bob", roles=["moderator"], video=False, max_streaming=3
    )
    claims = verify(token, SECRET)
    assert claims.sid == "room"
    assert claims.sub == "bob"
    assert claims.roles == ("moderator",)
    assert claims.grants == Grants(audio=True, video=False, create=True)
    assert claims.max_streaming == 3
    assert claims.exp > time.time()


def test_expired_token_is_1100() -> None:
    with pytest.raises(TokenInvalid) as info:
        verify(mint(SECRET, "room", ttl=-10), SECRET)
    assert info.value.code == ErrorCode.TOKEN_EXPIRED


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "",
        mint("other-secret-0123456789abcdef-0123456789", "room"),
        jwt.encode({"exp": time.time() + 3600}, SECRET, algorithm="HS256"),  # no sid
        jwt.encode({"sid": "room"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"sid": 5, "exp": time.time() + 3600}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sid": "r", "exp": time.time() + 3600, "roles": "x"}, SECRET, algorithm="HS256"
        ),
        jwt.encode(
            {"sid": "r", "exp": time.time() + 3600, "grants": {"audio": 1}},
            SECRET,
            algorithm="HS256",
        ),
    ],
)
def test_invalid_tokens_are_1101(token: str) -> None:
    with pytest.raises(TokenInvalid) as info:
        verify(token, SECRET)
    assert info.value.code == ErrorCode.TOKEN_DATA_IS_NOT_VALID


def test_peek_exp_reads_without_verifying() -> None:
    token = mint(SECRET, "room", ttl=100, now=1000.0)
    assert peek_exp(token) == 1100.0
    assert peek_exp("garbage") is None
    assert peek_exp("a.b.c") is None


@pytest.mark.parametrize(
    "claims",
    [
        {"sid": "room", "exp": 10**400},  # too large for a float
        {"sid": "room", "exp": -(10**400)},
        {"sid": "room", "exp": float("inf")},  # encoded as Infinity
        {"sid": "room", "exp": float("nan")},
        {"sid": "room", "exp": time.time() + 3600, "iat": 10**400},
        {"sid": "room", "exp": time.time() + 3600, "iat": float("inf")},
    ],
)
def test_claims_out_of_range_are_1101_not_a_crash(claims: dict[str, object]) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalid) as info:
        verify(token, SECRET)
    assert info.value.code == ErrorCode.TOKEN_DATA_IS_NOT_VALID
    if "iat" not in claims:
        assert peek_exp(token) is None  # the client's pre-flight does not crash either


def test_an_aud_claim_is_ignored() -> None:
    exp = time.time() + 3600
    for aud in ("somewhere", ["a", "b"]):
        token = jwt.encode({"sid": "room", "exp": exp, "aud": aud}, SECRET, algorithm="HS256")
        assert verify(token, SECRET).sid == "room"


def test_nbf_is_still_checked() -> None:
    now = time.time()
    ok = jwt.encode({"sid": "room", "exp": now + 60, "nbf": now - 10}, SECRET, algorithm="HS256")
    assert verify(ok, SECRET).sid == "room"
    for nbf in (now + 600, "soon"):
        early = jwt.encode({"sid": "room", "exp": now + 60, "nbf": nbf}, SECRET, algorithm="HS256")
        with pytest.raises(TokenInvalid) as info:
            verify(early, SECRET)
        assert info.value.code == ErrorCode.TOKEN_DATA_IS_NOT_VALID


def test_a_large_but_finite_exp_is_accepted() -> None:
    token = jwt.encode({"sid": "room", "exp": 10**300}, SECRET, algorithm="HS256")
    assert verify(token, SECRET).exp == float(10**300)
    assert peek_exp(token) == float(10**300)


@pytest.mark.parametrize(
    "extra",
    [
        {"nbf": True},
        {"nbf": False},
        {"nbf": "123"},
        {"nbf": None},
        {"nbf": [1]},
        {"nbf": {"t": 1}},
        {"iat": True},
        {"iat": None},
        {"iat": "123"},
        {"iat": [1]},
        {"iat": {"t": 1}},
    ],
)
def test_nbf_or_iat_of_the_wrong_json_type_is_1101(extra: dict[str, object]) -> None:
    claims: dict[str, object] = {"sid": "room", "exp": time.time() + 3600, **extra}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalid) as info:
        verify(token, SECRET)
    assert info.value.code == ErrorCode.TOKEN_DATA_IS_NOT_VALID
