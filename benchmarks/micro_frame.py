"""Per-frame client CPU of ``Session._on_frames``, in process: no socket, no listener.

    PYTHONPATH=/tmp/base/src .venv/bin/python benchmarks/micro_frame.py
    .venv/bin/python benchmarks/micro_frame.py

Feeds N ``sessionError`` frames (fresh ``seq`` each) and N responses that no
request waits for straight to ``_on_frames`` (in batches of ``FRAMES_PER_BATCH`` bytes frames,
as the connection hands them over), and prints the client CPU per
frame (``time.process_time``) as one JSON line: the cost of decoding, the
``seq`` check, the error model and the hand-over to the hub (which has no
listener here), without the event loop. Run two trees in alternation (for
instance the commit before a change, through ``PYTHONPATH``) to compare them.
"""

from __future__ import annotations

import gc
import json
import sys
import time

from roomsignal import Session
from roomsignal.client._connection import FRAMES_PER_BATCH


def _turns(frames: list[bytes]) -> list[list[bytes]]:
    return [frames[i : i + FRAMES_PER_BATCH] for i in range(0, len(frames), FRAMES_PER_BATCH)]


def main(n: int = 200_000) -> None:
    session = Session("ws://127.0.0.1:1", token="t", name="bench")
    errors = [
        json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "sessionError",
                "params": {
                    "seq": seq,
                    "code": 206,
                    "message": "full",
                    "data": {"name": "SESSION_IS_FULL_ERROR_CODE"},
                },
            }
        )
        for seq in range(1, n + 1)
    ]
    response = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"serverTime": 1.0}}).encode()
    error_batches = _turns([frame.encode() for frame in errors])
    response_batches = _turns([response] * n)
    on_frames = session._on_frames
    gc.disable()
    start = time.process_time()
    for batch in error_batches:
        on_frames(batch, 0)
    error_us = (time.process_time() - start) / n * 1e6
    start = time.process_time()
    for batch in response_batches:
        on_frames(batch, 0)
    response_us = (time.process_time() - start) / n * 1e6
    print(
        json.dumps({"session_error_us": round(error_us, 3), "response_us": round(response_us, 3)})
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
