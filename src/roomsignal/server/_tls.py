"""TLS contexts for ``serve --tls-cert/--tls-key`` and for clients given a CA file.

The server serves ``wss://`` and the page over ``https://`` on its one port
(websockets' ``serve(ssl=...)``); a client trusts the system's CAs, or only
the CA file it is given (``join --ca-file``, ``load-test --ca-file``).
docs/operations.md shows both.
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

__all__ = ["TLSConfigError", "client_context", "server_context"]


class TLSConfigError(ValueError):
    """A certificate, key or CA file that cannot be used; the message says which and why."""


_BLOCKS = {
    "certificate": (b"CERTIFICATE-----", "no certificate ('-----BEGIN CERTIFICATE-----')"),
    "key": (b"PRIVATE KEY-----", "no private key ('-----BEGIN ... PRIVATE KEY-----')"),
    "CA": (b"CERTIFICATE-----", "no certificate ('-----BEGIN CERTIFICATE-----')"),
}


def _read_pem(label: str, path: str | Path) -> None:
    """Check that ``path`` is a readable PEM file holding a ``label`` block.

    Raises ``TLSConfigError`` saying what is wrong: missing, a directory (or
    another non-file), unreadable, empty, not PEM (DER, say), or PEM without
    the block it needs (a certificate given as the key).
    """
    what = f"TLS {label}" if label != "CA" else "CA file"
    file_ = f"{what} file" if label != "CA" else what
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise TLSConfigError(f"{file_} not found: {path}") from None
    except OSError as exc:
        raise TLSConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(status.st_mode):
        raise TLSConfigError(f"{what} {path} is a directory, not a file: give the PEM file in it")
    if not stat.S_ISREG(status.st_mode):
        raise TLSConfigError(f"{what} {path} is not a regular file")
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as exc:
        raise TLSConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not content.strip():
        raise TLSConfigError(f"{what} {path} is empty")
    if b"-----BEGIN " not in content:
        tool = "pkey" if label == "key" else "x509"
        raise TLSConfigError(
            f"{what} {path} is not PEM (no '-----BEGIN' line); if it is DER, convert it: "
            f"openssl {tool} -inform der -in {path} -out {label.lower()}.pem"
        )
    marker, missing = _BLOCKS[label]
    if marker not in content:
        raise TLSConfigError(f"{what} {path} is PEM but holds {missing}")


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an
    # encrypted key, and a server started by systemd would hang there.
    raise TLSConfigError("encrypted")


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server-side context holding ``cert`` (PEM, the chain) and its ``key`` (PEM).

    TLS 1.2 at least, the ``ssl`` module's default ciphers. Raises
    ``TLSConfigError`` saying what is wrong when a file is missing, a
    directory, unreadable or not PEM, the key is encrypted, or the key does
    not match the certificate.
    """
    _read_pem("certificate", cert)
    _read_pem("key", key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key), password=_no_password)
    except TLSConfigError:
        raise TLSConfigError(
            f"TLS key {key} is encrypted: give it unencrypted (`openssl pkey -in {key}`)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            raise TLSConfigError(f"TLS key {key} does not match the certificate {cert}") from None
        raise TLSConfigError(
            f"cannot load the TLS certificate {cert} with the key {key}: {exc}"
        ) from None
    return context


def client_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A client-side context that checks the server's certificate and host name.

    With ``ca_file`` (PEM) only that CA is trusted; without, the system's.
    Raises ``TLSConfigError`` when the CA file is missing, a directory,
    unreadable or not PEM.
    """
    if ca_file is None:
        return ssl.create_default_context()
    _read_pem("CA", ca_file)
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"cannot load the CA file {ca_file}: {exc}") from None
