"""TLS on the server's own port (certificates made with trustme): wss:// and https://.

The Python client, a raw websockets client and the CLI over TLS; a wrong CA
is one clear 901, not a traceback; plain ws:// to a TLS port fails clearly.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from roomsignal import Session, SessionError, SessionErrorException
from roomsignal.server import SignalingServer
from roomsignal.server._tls import TLSConfigError, client_context, server_context
from roomsignal.tokens import mint

from .conftest import SECRET, body_of, http_get


@pytest.fixture
async def tls_server(tls_files: dict[str, Path]) -> AsyncIterator[SignalingServer]:
    context = server_context(tls_files["cert"], tls_files["key"])
    async with SignalingServer(secret=SECRET, host="127.0.0.1", ssl=context) as server:
        yield server


def _url(server: SignalingServer) -> str:
    return f"wss://localhost:{server.port}"


async def test_the_python_client_joins_and_chats_over_wss(
    tls_server: SignalingServer, tls_files: dict[str, Path]
) -> None:
    assert tls_server.url.startswith("wss://127.0.0.1:")
    trust = client_context(tls_files["ca"])
    got: asyncio.Queue[str] = asyncio.Queue()
    alice = Session(_url(tls_server), token=mint(SECRET, "room"), name="alice", ssl=trust)
    bob = Session(_url(tls_server), token=mint(SECRET, "room"), name="bob", ssl=trust)
    bob.on_message(lambda event: got.put_nowait(event.text))
    async with alice, bob:
        await alice.send_message("over tls")
        async with asyncio.timeout(5):
            assert await got.get() == "over tls"


async def test_a_raw_websockets_client_speaks_wss(
    tls_server: SignalingServer, tls_files: dict[str, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(tls_files["ca"]))
    async with connect(_url(tls_server), ssl=trust, subprotocols=["roomsignal.v1"]) as ws:  # type: ignore[list-item]
        join = {"token": mint(SECRET, "raw"), "name": "raw"}
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "join", "params": join}))
        async with asyncio.timeout(5):
            answer = json.loads(await ws.recv())
        assert answer["id"] == 1 and answer["result"]["sessionId"] == "raw"
    # the page and health over https:// on the same port
    response = await http_get(tls_server.port, "/healthz", context=trust)
    assert response.startswith(b"HTTP/1.1 200") and body_of(response) == b"ok\n"
    page = await http_get(tls_server.port, "/", context=trust)
    assert page.startswith(b"HTTP/1.1 200") and b"roomsignal" in body_of(page)


async def test_a_wrong_ca_is_one_clear_901(
    tls_server: SignalingServer, tls_files: dict[str, Path]
) -> None:
    errors: list[SessionError] = []
    session = Session(
        _url(tls_server),
        token=mint(SECRET, "room"),
        name="alice",
        ssl=client_context(tls_files["other_ca"]),
        reconnect=None,
    )
    session.on_session_error(errors.append)
    with pytest.raises(SessionErrorException) as caught:
        await session.connect()
    await session.close()
    assert caught.value.code == 901
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.error.message
    assert [e.code for e in errors] == [901]
    assert "Traceback" not in caught.value.error.message


async def test_plain_ws_to_a_tls_port_fails_clearly(tls_server: SignalingServer) -> None:
    session = Session(
        f"ws://127.0.0.1:{tls_server.port}",
        token=mint(SECRET, "room"),
        name="alice",
        reconnect=None,
        open_timeout=5,
    )
    async with asyncio.timeout(4):  # at once: not by open_timeout
        with pytest.raises(SessionErrorException) as caught:
            await session.connect()
    await session.close()
    assert caught.value.code == 901
    assert f"ws://127.0.0.1:{tls_server.port}" in caught.value.error.message


def test_ssl_for_a_ws_url_and_bad_files_are_refused(tls_files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="wss://"):
        Session("ws://127.0.0.1:1", token="t", name="n", ssl=client_context(tls_files["ca"]))
    with pytest.raises(TLSConfigError, match="not found"):
        server_context(tls_files["cert"], tls_files["cert"].with_name("missing.pem"))
    with pytest.raises(TLSConfigError, match="holds no private key"):
        server_context(tls_files["cert"], tls_files["ca"])  # a certificate is no key
    with pytest.raises(TLSConfigError, match="not found"):
        client_context("/nonexistent/ca.pem")


def test_each_unusable_tls_file_says_what_is_wrong(
    tls_files: dict[str, Path], tmp_path: Path
) -> None:
    """A directory, a FIFO, an empty file, DER, the wrong PEM block, an encrypted or mismatched key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import load_pem_x509_certificate

    cert, key = tls_files["cert"], tls_files["key"]
    der = tmp_path / "cert.der"
    der.write_bytes(
        load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    )
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    other = tmp_path / "other-key.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    for pair, expected in (
        ((tmp_path, key), f"TLS certificate {tmp_path} is a directory, not a file"),
        ((cert, tmp_path), f"TLS key {tmp_path} is a directory, not a file"),
        ((fifo, key), f"TLS certificate {fifo} is not a regular file"),
        ((empty, key), f"TLS certificate {empty} is empty"),
        ((der, key), f"TLS certificate {der} is not PEM (no '-----BEGIN' line)"),
        ((key, key), f"TLS certificate {key} is PEM but holds no certificate"),
        ((cert, cert), f"TLS key {cert} is PEM but holds no private key"),
        ((cert, encrypted), f"TLS key {encrypted} is encrypted"),
        ((cert, other), f"TLS key {other} does not match the certificate {cert}"),
        ((tmp_path / "missing.pem", key), "TLS certificate file not found"),
    ):
        with pytest.raises(TLSConfigError) as caught:
            server_context(*pair)
        assert str(caught.value).startswith(expected), (expected, str(caught.value))
    for path, expected in (
        (tmp_path, f"CA file {tmp_path} is a directory, not a file"),
        (der, f"CA file {der} is not PEM"),
        (key, f"CA file {key} is PEM but holds no certificate"),
    ):
        with pytest.raises(TLSConfigError) as caught:
            client_context(path)
        assert str(caught.value).startswith(expected), (expected, str(caught.value))


def test_an_unreadable_tls_file_says_so(tls_files: dict[str, Path], tmp_path: Path) -> None:
    """Not "not found": the file is there and cannot be read (as root: checked as nobody)."""
    cert = tmp_path / "cert.pem"
    cert.write_bytes(tls_files["cert"].read_bytes())
    cert.chmod(0)
    check = (
        "from roomsignal.server._tls import TLSConfigError, server_context\n"
        "try:\n"
        f"    server_context({str(cert)!r}, {str(tls_files['key'])!r})\n"
        "except TLSConfigError as exc:\n"
        "    print(exc)\n"
    )
    # root reads any file; nobody cannot even reach the root-only temp dir
    user = 65534 if os.geteuid() == 0 else None
    run = subprocess.run(
        [sys.executable, "-c", check], user=user, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"TLS certificate {cert} cannot be read: Permission denied"
