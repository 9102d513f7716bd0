"""``serve --tls-cert/--tls-key --metrics --log-format json`` and ``join --ca-file`` as processes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from .conftest import SECRET, body_of, http_get, spawn


async def test_serve_over_tls_with_metrics_and_json_logs(tls_files: dict[str, Path]) -> None:
    from roomsignal.server._tls import client_context
    from roomsignal.tokens import mint

    args = ["serve", "--port", "0", "--metrics", "--log-format", "json", "--log-level", "info"]
    args += ["--tls-cert", str(tls_files["cert"]), "--tls-key", str(tls_files["key"])]
    async with spawn(*args) as server:
        line = await server.line(lambda line: line.startswith("listening on"))
        url = line.split()[2]
        assert url.startswith("wss://127.0.0.1:")
        assert "health: https://" in line
        port = int(url.rsplit(":", 1)[1])
        metrics = await http_get(port, "/metrics", context=client_context(tls_files["ca"]))
        assert metrics.startswith(b"HTTP/1.1 200")
        assert b"roomsignal_connections" in body_of(metrics)

        join = ["join", f"wss://localhost:{port}", "--token", mint(SECRET, "room")]
        join += ["--name", "alice", "--json", "--ca-file", str(tls_files["ca"])]
        async with spawn(*join) as client:
            joined = await client.line(lambda line: '"connected"' in line)
            assert "room" in joined
            record = await server.line(lambda line: "joined session room" in line, stderr=True)
            client.process.send_signal(signal.SIGTERM)
            assert await client.wait() == 0
            removed = await server.line(lambda line: "session room removed" in line, stderr=True)
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    lines = [json.loads(line) for line in server.stderr]  # every line is one JSON object
    joined_record = json.loads(record)
    assert joined_record["level"] == "INFO"
    assert joined_record["logger"] == "roomsignal.server"
    assert joined_record["session"] == "room"
    participant = joined_record["participant"]
    assert participant.startswith("p_")
    created = next(r for r in lines if r["message"] == "session room created")
    left = next(r for r in lines if "left session room" in r["message"])
    assert created["session"] == left["session"] == json.loads(removed)["session"] == "room"
    assert left["participant"] == participant
    assert {"time", "level", "logger", "message"} <= set(lines[-1])


async def test_join_with_a_wrong_ca_is_one_clear_line(tls_files: dict[str, Path]) -> None:
    from roomsignal.tokens import mint

    args = ["serve", "--port", "0", "--log-level", "warning"]
    args += ["--tls-cert", str(tls_files["cert"]), "--tls-key", str(tls_files["key"])]
    async with spawn(*args) as server:
        url = (await server.line(lambda line: line.startswith("listening on"))).split()[2]
        port = int(url.rsplit(":", 1)[1])
        join = ["join", f"wss://localhost:{port}", "--token", mint(SECRET, "room")]
        join += ["--name", "alice", "--no-reconnect", "--ca-file", str(tls_files["other_ca"])]
        async with spawn(*join) as client:
            code = await client.wait()
        assert code != 0
        text = "\n".join(client.stdout + client.stderr)
        assert "Traceback" not in text
        assert "901" in text and "CERTIFICATE_VERIFY_FAILED" in text, text


async def test_serve_with_bad_tls_files_says_which(tls_files: dict[str, Path]) -> None:
    for args, expected in (
        (["--tls-cert", str(tls_files["cert"])], "--tls-cert and --tls-key go together"),
        (
            ["--tls-cert", str(tls_files["cert"]), "--tls-key", "/nonexistent.pem"],
            "TLS key file not found: /nonexistent.pem",
        ),
        (
            ["--tls-cert", str(tls_files["cert"]), "--tls-key", str(tls_files["ca"])],
            f"TLS key {tls_files['ca']} is PEM but holds no private key",
        ),
        (
            ["--tls-cert", "/tmp", "--tls-key", str(tls_files["key"])],
            "TLS certificate /tmp is a directory, not a file",
        ),
    ):
        async with spawn("serve", "--port", "0", *args) as server:
            assert await server.wait() != 0
        lines = [line for line in server.stderr if line.strip()]
        assert len(lines) == 1 and expected in lines[0], server.stderr


async def test_load_test_over_tls_with_a_ca_file(tls_files: dict[str, Path]) -> None:
    args = ["serve", "--port", "0", "--log-level", "warning"]
    args += ["--tls-cert", str(tls_files["cert"]), "--tls-key", str(tls_files["key"])]
    async with spawn(*args) as server:
        url = (await server.line(lambda line: line.startswith("listening on"))).split()[2]
        port = int(url.rsplit(":", 1)[1])
        load = ["load-test", f"wss://localhost:{port}", "--secret", SECRET, "--rooms", "1"]
        load += ["--participants", "3", "--duration", "1", "--json"]
        async with spawn(*load, "--ca-file", str(tls_files["ca"])) as run:
            assert await run.wait(timeout=60) == 0, run.stderr
        report = json.loads(run.stdout[-1])
        assert report["ok"] and report["joined"] == 3
        async with spawn(*load, "--ca-file", "/nonexistent/ca.pem") as bad:
            assert await bad.wait() != 0
        assert any("CA file not found: /nonexistent/ca.pem" in line for line in bad.stderr)
        assert not any("Traceback" in line for line in bad.stderr)


def test_ca_file_checks_every_url(tls_files: dict[str, Path]) -> None:
    import argparse
    import ssl

    import pytest

    from roomsignal.cli._options import UsageError
    from roomsignal.cli._tls import client_ssl

    args = argparse.Namespace(ca_file=str(tls_files["ca"]))
    assert isinstance(client_ssl(args, ["wss://a:1", "wss://b:2"]), ssl.SSLContext)
    with pytest.raises(UsageError, match="ws://b:2"):
        client_ssl(args, ["wss://a:1", "ws://b:2"])
    assert client_ssl(argparse.Namespace(ca_file=None), "ws://a:1") is None
