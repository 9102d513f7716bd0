"""Where a session dials: one URL, a list of them (failover), or an async provider.

``Urls`` answers, for each attempt, the URLs to try in order: the session
dials them one after another until one answers, so a dead node costs one
refused connection, not a backoff. After a drop (or a rejoin the node
refused for a reason retrying can cure) the next attempt starts with the URL
after the one that failed; after a success it stays with the one that
worked. A provider (service discovery) is awaited for the list at each
attempt. No I/O here beyond awaiting the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from websockets.exceptions import InvalidMessage, InvalidURI
from websockets.uri import parse_uri

__all__ = ["UrlProvider", "UrlSource", "Urls", "check_url", "dial_failure"]

logger = logging.getLogger("roomsignal.client")

UrlProvider = Callable[[], Awaitable[Sequence[str]]]
"""An async callable returning the URLs to dial now (service discovery)."""

UrlSource = str | Sequence[str] | UrlProvider
"""What ``Session`` takes as its first argument."""


def dial_failure(url: str, exc: BaseException) -> str:
    """Why dialling ``url`` failed, for the 901's message: ``exc`` as it was, plus a hint.

    A TLS server closes a plain connection without a byte, so a ``ws://`` URL
    whose handshake got no HTTP response at all is most likely a ``wss://``
    server: said so after the original reason.
    """
    reason = str(exc) or type(exc).__name__
    if (
        url[:5].lower() == "ws://"
        and isinstance(exc, InvalidMessage)
        and isinstance(exc.__cause__, EOFError)
    ):
        reason += " (is it a wss:// server? a TLS server closes a plain connection unanswered)"
    return reason


def check_url(url: object) -> str:
    """``url`` if it is a ``ws://`` or ``wss://`` URL; raises ``ValueError`` otherwise."""
    if not isinstance(url, str):
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    try:
        parse_uri(url)
    except (InvalidURI, ValueError) as exc:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r} ({exc})") from None
    return url


class Urls:
    """The URLs a session dials, in the order to try them at each attempt."""

    __slots__ = ("_fixed", "_last", "_provider", "_start_after")

    def __init__(self, source: UrlSource) -> None:
        """Check ``source``: ``ValueError`` for a bad URL or an empty list."""
        self._provider: UrlProvider | None = None
        self._fixed: tuple[str, ...] = ()
        if isinstance(source, str):
            self._fixed = (check_url(source),)
        elif isinstance(source, Sequence):
            self._fixed = tuple(check_url(url) for url in source)
            if not self._fixed:
                raise ValueError("no URL to dial: the list is empty")
        elif callable(source):
            self._provider = source
        else:
            raise ValueError(
                f"a URL, a list of URLs or an async provider of URLs, not {type(source).__name__}"
            )
        self._last = ""  # the URL of the last successful dial
        self._start_after = ""  # the URL that failed last: the next attempt starts after it

    @property
    def first(self) -> str:
        """The first fixed URL ("" with a provider that was not asked yet)."""
        return self._fixed[0] if self._fixed else ""

    @property
    def fixed(self) -> tuple[str, ...]:
        """The URLs given (empty with a provider)."""
        return self._fixed

    async def candidates(self) -> list[str]:
        """The URLs to try now, in order (a provider is awaited; its bad URLs raise ``ValueError``)."""
        if self._provider is not None:
            got = await self._provider()
            if isinstance(got, str) or not isinstance(got, Sequence):
                raise ValueError(f"the URL provider returned {type(got).__name__}, not a list")
            urls = [check_url(url) for url in got]
            if not urls:
                raise ValueError("the URL provider returned no URL")
        else:
            urls = list(self._fixed)
        after = self._start_after or ""
        if after in urls:
            start = urls.index(after) + 1
        elif self._last in urls:
            start = urls.index(self._last)
        else:
            start = 0
        start %= len(urls)
        return urls[start:] + urls[:start]

    def worked(self, url: str) -> None:
        """A dial to ``url`` succeeded: stay with it."""
        self._last = url
        self._start_after = ""

    def failed(self, url: str) -> None:
        """The connection to ``url`` dropped (or its node refused us for now): move on."""
        if len(self._fixed) != 1:
            logger.debug("next attempt starts after %s", url)
        self._start_after = url
