"""TLS contexts for ``serve --tls-cert/--tls-key`` and for clients given a CA file.

The server serves ``wss://`` and the page over ``https://`` on its one port
(websockets' ``serve(ssl=...)``); a client trusts the system's CAs, or only
the CA file it is given (``join --ca-file``, ``load-test --ca-file``).
docs/operations.md shows both.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["TLSConfigError", "client_context", "server_context"]


class TLSConfigError(ValueError):
    """A certificate, key or CA file that cannot be used; the message says which and why."""


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server-side context holding ``cert`` (PEM, the chain) and its ``key`` (PEM).

    TLS 1.2 at least, the ``ssl`` module's default ciphers. Raises
    ``TLSConfigError`` when a file is missing or the pair does not load.
    """
    for label, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise TLSConfigError(f"TLS {label} file not found: {path}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f"cannot load the TLS certificate {cert} with the key {key}: {exc}"
        ) from None
    return context


def client_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A client-side context that checks the server's certificate and host name.

    With ``ca_file`` (PEM) only that CA is trusted; without, the system's.
    Raises ``TLSConfigError`` when the CA file is missing or not PEM.
    """
    if ca_file is None:
        return ssl.create_default_context()
    if not Path(ca_file).is_file():
        raise TLSConfigError(f"CA file not found: {ca_file}")
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"cannot load the CA file {ca_file}: {exc}") from None
