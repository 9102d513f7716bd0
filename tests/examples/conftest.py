"""Fixtures for the examples' tests: load a script from ``examples/`` as a module."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from roomsignal.server import SignalingServer

SECRET = "examples-test-secret-0123456789abcdef"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (it is a script, not a package module)."""
    module_name = f"roomsignal_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A loopback port free right now (for a server that starts later on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def server() -> AsyncIterator[SignalingServer]:
    async with SignalingServer(secret=SECRET, allow_simulation=True, sdp_timeout=2.0) as srv:
        yield srv
