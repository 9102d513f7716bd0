"""The catalog: seed names, lookup of unknown codes, the generated docs table."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomsignal import ErrorCode, SessionError, lookup
from roomsignal.catalog import CATEGORIES, entries, render_markdown
from roomsignal.errors import (
    MediaError,
    ProtocolError,
    SessionErrorException,
    SessionStateError,
    TokenError,
    UnknownError,
    UserError,
    _server_error,
    exception_for,
    make_error,
)

SEED = {
    "USER_GENERIC_ERROR_CODE": 101,
    "USER_NOT_FOUND_ERROR_CODE": 102,
    "USER_CLOSED_ERROR_CODE": 103,
    "EXISTING_USER_IN_SESSION_ERROR_CODE": 104,
    "USER_NOT_STREAMING_ERROR_CODE": 105,
    "USER_NOT_AUTHORIZED_ERROR_CODE": 106,
    "USER_VIDEO_PERMISSION_DENIED_ERROR_CODE": 107,
    "USER_AUDIO_PERMISSION_DENIED_ERROR_CODE": 108,
    "SESSION_GENERIC_ERROR_CODE": 201,
    "SESSION_CLOSED_ERROR_CODE": 203,
    "SESSION_CANNOT_BE_CREATED_ERROR_CODE": 204,
    "SESSION_IS_FULL_ERROR_CODE": 206,
    "MEDIA_ENDPOINT_ERROR_CODE": 303,
    "TOKEN_EXPIRED": 1100,
    "TOKEN_DATA_IS_NOT_VALID": 1101,
}
VENDOR = {
    "UNKNOWN_ERROR": -1,
    "MEDIA_AUDIO_PERMISSION_ERROR_CODE": 308,
    "MEDIA_VIDEO_PERMISSION_ERROR_CODE": 309,
    "TRANSPORT_REQUEST_ERROR_CODE": 801,
    "TRANSPORT_RESPONSE_ERROR_CODE": 802,
    "TRANSPORT_ERROR_CODE": 803,
    "GENERIC_CONNECTION_ERROR": 901,
    "GENERIC_ERROR_CODE": 999,
}
JSONRPC = {-32700, -32600, -32601, -32602, -32603}


@pytest.mark.parametrize(("name", "code"), sorted({**SEED, **VENDOR}.items()))
def test_every_seed_and_vendor_code_has_its_exact_name(name: str, code: int) -> None:
    assert ErrorCode[name] == code
    entry = lookup(code)
    assert entry.name == name
    assert entry.code == code
    assert entry.description
    assert entry.causes


def test_jsonrpc_codes_are_protocol_errors() -> None:
    for code in JSONRPC:
        assert lookup(code).category == "protocol"
        assert ErrorCode(code).name == lookup(code).name


def test_categories_of_the_seed_codes() -> None:
    expected = {1: "user", 2: "session", 3: "media", 11: "token"}
    for code in SEED.values():
        assert lookup(code).category == expected[code // 100]


def test_every_enum_member_has_exactly_one_entry() -> None:
    codes = [entry.code for entry in entries()]
    assert len(codes) == len(set(codes))
    assert set(codes) == {int(member) for member in ErrorCode}
    assert all(entry.category in CATEGORIES for entry in entries())


@pytest.mark.parametrize("code", [0, 7, 555, 4242, -99999, 2**40])
def test_unknown_code_keeps_its_number(code: int) -> None:
    entry = lookup(code)
    assert entry.code == code
    assert entry.category == "unknown"
    assert entry.name == f"UNKNOWN_{code}"
    assert entry.retryable is False


def test_join_failures_that_retrying_cannot_fix() -> None:
    for code in (206, 104, 1101, 1100):
        assert lookup(code).retryable is False
    assert lookup(201).retryable is True


def test_docs_table_is_generated_from_the_catalog() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
    assert docs.read_text(encoding="utf-8") == render_markdown(), (
        "docs/errors.md is stale: run python scripts/gen_docs.py"
    )
    for entry in entries():
        assert f"`{entry.name}`" in render_markdown()


def test_session_error_from_wire_parts() -> None:
    error = make_error(206, "full", {"name": "SESSION_IS_FULL_ERROR_CODE", "method": "join"})
    assert isinstance(error, SessionError)
    assert (error.code, error.name, error.category) == (
        206,
        "SESSION_IS_FULL_ERROR_CODE",
        "session",
    )
    assert error.method == "join"
    assert error.source == "server"
    assert error.description == lookup(206).description
    assert error.received_at > 0
    with pytest.raises(ValueError):
        error.code = 5  # type: ignore[misc]


def test_session_error_of_unknown_code() -> None:
    error = make_error(4242, "new", None)
    assert (error.code, error.category, error.name) == (4242, "unknown", "UNKNOWN_4242")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (101, UserError),
        (203, SessionStateError),
        (303, MediaError),
        (1100, TokenError),
        (-32602, ProtocolError),
        (4242, UnknownError),
    ],
)
def test_exception_per_category(code: int, kind: type[SessionErrorException]) -> None:
    exc = exception_for(make_error(code, "m", {}))
    assert isinstance(exc, kind)
    assert isinstance(exc, SessionErrorException)
    assert exc.code == code
    assert exc.error.code == code
    assert str(code) in str(exc)


@pytest.mark.parametrize(
    ("code", "message", "data", "kwargs"),
    [
        (206, "full", {"name": "SESSION_IS_FULL_ERROR_CODE"}, {}),
        (4242, "new", None, {"source": "client", "session_id": "s", "participant_id": "p"}),
        (105, "m", {"method": "publish", "participantId": "p9"}, {}),
    ],
)
def test_fast_built_error_equals_a_validated_one(
    code: int, message: str, data: dict[str, object] | None, kwargs: dict[str, str]
) -> None:
    error = make_error(code, message, data, **kwargs)  # type: ignore[arg-type]
    validated = SessionError.model_validate(error.model_dump())
    assert error == validated
    assert error.model_dump() == validated.model_dump()
    assert error.model_dump_json() == validated.model_dump_json()
    assert error.model_fields_set == validated.model_fields_set
    other = make_error(code, message, data, **kwargs)  # type: ignore[arg-type]
    assert error.model_copy(update={"message": "x"}).message == "x"
    assert other.model_fields_set == set(SessionError.model_fields)  # the shared set unchanged
    assert repr(error) == repr(validated)
    with pytest.raises(ValueError):
        error.code = 1  # type: ignore[misc]


def test_readme_table_is_generated_from_the_catalog() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- catalog:start -->\n", "<!-- catalog:end -->"
    assert start in readme and end in readme, "README.md lacks the catalog markers"
    table = readme[readme.index(start) + len(start) : readme.index(end)]
    expected = [line for line in render_markdown().splitlines() if line.startswith("|")]
    assert table.splitlines() == expected, (
        "the README's catalog table is stale: run python scripts/gen_docs.py"
    )


def test_make_error_copies_data_unless_told() -> None:
    data = {"name": "X"}
    assert make_error(206, "m", data).data is not data
    assert make_error(206, "m", data, copy_data=False).data is data


@pytest.mark.parametrize("code", [*(entry.code for entry in entries()), 4242, -1])
@pytest.mark.parametrize(
    "data", [None, {}, {"name": "X", "method": "publish"}, {"method": 7, "participantId": "p"}]
)
def test_the_notification_fast_path_builds_what_make_error_builds(
    code: int, data: dict[str, object] | None
) -> None:
    """``_server_error`` (per-code templates) and ``make_error`` agree field for field."""
    fast = _server_error(code, "m", None if data is None else dict(data), "s", "p", 12.5)
    slow = make_error(
        code, "m", data, source="server", session_id="s", participant_id="p", received_at=12.5
    )
    assert fast == slow
    assert list(fast.__dict__) == list(slow.__dict__)  # the same field order: repr, dumps
    assert repr(fast) == repr(slow)
    assert (
        fast.model_dump_json() == SessionError.model_validate(slow.model_dump()).model_dump_json()
    )
    again = _server_error(code, "n", None, None, None, 1.0)  # the template was not changed
    assert again.message == "n" and again.data == {} and again.method is None
