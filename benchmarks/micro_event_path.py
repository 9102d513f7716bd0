"""Micro-benchmarks of the client's per-event and per-ping work, no sockets.

    python benchmarks/micro_event_path.py [--n 200000]

Each line is the median of 5 timed loops, in microseconds per call. The
"current" rows call what the client calls today; the others are candidate
replacements, measured on the same frame, to back the suggestions in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Discriminator, TypeAdapter
from typing_extensions import TypedDict

from roomsignal.catalog import lookup
from roomsignal.errors import SessionError, make_error
from roomsignal.protocol import (
    Notification,
    PingRequest,
    PingResult,
    SessionErrorNotification,
    SessionErrorParams,
    decode,
    encode,
)

FRAME = encode(
    SessionErrorNotification(
        params=SessionErrorParams(
            seq=12345,
            code=206,
            message="simulated session error",
            data={"name": "SESSION_IS_FULL_ERROR_CODE"},
        )
    )
).encode()
RESPONSE = b'{"jsonrpc":"2.0","id":42,"result":{"serverTime":1790000000.123456}}'


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    """Median over 5 loops of ``n`` calls, microseconds per call."""
    fn()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


# --- candidate: a notification-only adapter picked by the frame's first bytes ----------

_NOTIFICATIONS: TypeAdapter[Any] = TypeAdapter(Annotated[Notification, Discriminator("method")])
_NOTIFICATION_PREFIX = b'{"jsonrpc":"2.0","method":"'


def decode_fast(frame: bytes) -> Any:
    """Notifications as our server writes them go straight to a string-discriminated union."""
    if frame.startswith(_NOTIFICATION_PREFIX):
        try:
            return _NOTIFICATIONS.validate_json(frame)
        except ValueError:
            pass  # fall back: decode() classifies the error exactly
    return decode(frame)


# --- candidate: the sessionError frame validated into plain dicts, not two models --------


class _ErrorParamsDict(TypedDict):
    seq: int
    code: int
    message: str
    data: dict[str, Any]


class _ErrorFrameDict(TypedDict):
    jsonrpc: Literal["2.0"]
    method: Literal["sessionError"]
    params: _ErrorParamsDict


_ERROR_FRAME_DICT: TypeAdapter[_ErrorFrameDict] = TypeAdapter(_ErrorFrameDict)

# --- candidate: one validate_json call per batch of frames (one data_received) --------------

_BATCH: TypeAdapter[list[Any]] = TypeAdapter(list[Annotated[Notification, Discriminator("method")]])
BATCH = [FRAME.replace(b'"seq":12345', b'"seq":%d' % seq) for seq in range(1, 86)]


def decode_each() -> None:
    for frame in BATCH:
        decode(frame)


def decode_batched() -> None:
    _BATCH.validate_json(b"[" + b",".join(BATCH) + b"]")


# --- candidate: SessionError without re-validating catalog values -------------------------


def make_error_constructed(code: int, message: str, data: dict[str, Any]) -> SessionError:
    entry = lookup(code)
    method = data.get("method")
    participant = data.get("participantId")
    return SessionError.model_construct(
        code=entry.code,
        name=entry.name,
        category=entry.category,
        message=message,
        description=entry.description,
        data=dict(data),
        method=method if isinstance(method, str) else None,
        source="server",
        session_id="s1",
        participant_id=participant if isinstance(participant, str) else None,
        received_at=time.time(),
    )


async def request_timer_us(n: int) -> dict[str, float]:
    """Extra µs per request of bounding its wait: ``asyncio.timeout`` vs ``loop.call_later``.

    Each call awaits a future resolved on the next loop iteration, as a
    response is; the cost of the bare wait is subtracted.
    """
    loop = asyncio.get_running_loop()

    async def bare() -> None:
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        await future

    async def with_timeout() -> None:
        async with asyncio.timeout(10):
            future = loop.create_future()
            loop.call_soon(future.set_result, None)
            await future

    async def with_call_later() -> None:
        future = loop.create_future()
        handle = loop.call_later(10, future.cancel)
        loop.call_soon(future.set_result, None)
        try:
            await future
        finally:
            handle.cancel()

    runs: dict[str, list[float]] = {}
    for _ in range(5):
        for name, fn in (
            ("bare", bare),
            ("timeout", with_timeout),
            ("call_later", with_call_later),
        ):
            start = time.perf_counter()
            for _ in range(n):
                await fn()
            runs.setdefault(name, []).append((time.perf_counter() - start) / n * 1e6)
    base = statistics.median(runs["bare"])
    return {name: statistics.median(values) - base for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    n = args.n
    note = decode(FRAME)
    params = note.params  # type: ignore[union-attr]
    data = params.data
    rows: list[tuple[str, float]] = []

    def row(label: str, fn: Callable[[], Any]) -> None:
        rows.append((label, per_call_us(fn, n)))

    text = FRAME.decode()
    row("decode(bytes frame)               [current]", lambda: decode(FRAME))
    row("decode(str frame)                 [candidate]", lambda: decode(text))
    row("bytes.decode() (what recv() adds)  [part]", FRAME.decode)
    from roomsignal.protocol import _codec

    shortcut = getattr(_codec, "decode_session_error", None)
    if shortcut is not None:  # the client's sessionError shortcut, where the codec has it
        row("decode_session_error(bytes)       [current]", lambda: shortcut(FRAME))
        row("decode_session_error(str)         [candidate]", lambda: shortcut(FRAME.decode()))
    row("decode_fast(frame), prefix check  [earlier candidate]", lambda: decode_fast(FRAME))
    row("json.loads(frame)                 [reference]", lambda: json.loads(FRAME))
    row("notification adapter only         [part]", lambda: _NOTIFICATIONS.validate_json(FRAME))
    row(
        "TypedDict adapter, dicts out      [candidate]",
        lambda: _ERROR_FRAME_DICT.validate_json(FRAME),
    )
    per_frame = len(BATCH)
    rows.append(
        (
            "decode() x85, per frame          [current]",
            per_call_us(decode_each, n // 85) / per_frame,
        )
    )
    rows.append(
        (
            "85 frames, one list validate_json [candidate]",
            per_call_us(decode_batched, n // 85) / per_frame,
        )
    )
    assert decode_fast(FRAME) == note
    row(
        "make_error(...)                   [current]",
        lambda: make_error(
            params.code,
            params.message,
            data,
            method=None,
            source="server",
            session_id="s1",
            participant_id="p1",
        ),
    )
    row(
        "SessionError.model_construct(...) [rejected]",
        lambda: make_error_constructed(params.code, params.message, data),
    )
    constructed = make_error_constructed(params.code, params.message, data)
    validated = make_error(params.code, params.message, data, session_id="s1")
    assert constructed.model_dump(exclude={"received_at", "participant_id"}) == (
        validated.model_dump(exclude={"received_at", "participant_id"})
    )
    row("lookup(code)                      [part]", lambda: lookup(206))
    row("dict(data)                        [part]", lambda: dict(data))
    row("time.time()                       [part]", time.time)
    row("encode(PingRequest(id=i))         [current ping]", lambda: encode(PingRequest(id=7)))
    row(
        "f-string ping frame               [candidate]",
        lambda: f'{{"jsonrpc":"2.0","id":{7},"method":"ping","params":{{}}}}',
    )
    row("decode(ping response)             [current ping]", lambda: decode(RESPONSE))
    result = {"serverTime": 1790000000.123456}
    row(
        "PingResult.model_validate(result) [current ping]",
        lambda: PingResult.model_validate(result).server_time,
    )
    row("float(result['serverTime'])       [candidate]", lambda: float(result["serverTime"]))
    timers = asyncio.run(request_timer_us(n // 5))
    rows.append(("async with asyncio.timeout(), extra [current]", timers["timeout"]))
    rows.append(("loop.call_later() + cancel, extra  [candidate]", timers["call_later"]))
    width = max(len(label) for label, _ in rows)
    print(f"{'per call':<{width}}  us")
    for label, us in rows:
        print(f"{label:<{width}}  {us:6.2f}")


if __name__ == "__main__":
    main()
