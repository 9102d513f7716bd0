"""Stopping a child process the way every part of roomsignal does: a signal, a bound, SIGKILL.

Janus (``server._janus_process``), and the tests' and benchmarks' own
children (Prometheus, cluster nodes), share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["stop_process"]


async def stop_process(
    process: asyncio.subprocess.Process, timeout: float, sig: int = signal.SIGTERM
) -> bool:
    """Send ``sig``, wait ``timeout`` seconds for the exit, else SIGKILL; then reap it.

    Returns True when it had to be killed. Idempotent: a process that has
    exited already is only reaped.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return True
    await process.wait()
    return False
