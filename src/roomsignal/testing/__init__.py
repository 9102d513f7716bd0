"""Test your own bots against the real reference server: a pytest plugin.

Installed with roomsignal (entry point ``pytest11``), the plugin in
[`roomsignal.testing.plugin`][roomsignal.testing.plugin] offers these fixtures to every test:

- ``roomsignal_server``: the reference server on loopback, port 0, with
  simulation on; options through ``@pytest.mark.roomsignal_server(...)``;
- ``roomsignal_secret`` and ``roomsignal_token``: the server's secret, and a
  callable that mints a token for a room;
- ``roomsignal_session``: a factory of ``Session`` objects with test-friendly
  defaults, closed at teardown; a listener that raised fails the test;
- ``cut_proxy``: a [`CutProxy`][roomsignal.testing.CutProxy] in front of the server, to cut or stall
  connections and watch the client reconnect.

It needs pytest and pytest-asyncio (the ``testing`` extra). See
``docs/testing.md`` for a whole test written with it.
"""

from roomsignal.testing._proxy import CutProxy

__all__ = ["FAST_RECONNECT", "CutProxy"]

from roomsignal.client import ReconnectPolicy

FAST_RECONNECT = ReconnectPolicy(
    max_attempts=200, initial_delay=0.005, max_delay=0.05, outlast_seat=False
)
"""The reconnection policy of ``roomsignal_session``'s sessions: retries at once, many times.

About 5 s of attempts (enough for a server restarted by the test), then it
gives up: unlike the default policy it does not wait out the seat (30 s by
default), so a test of giving up does not last half a minute. A test that
needs another policy passes its own (``reconnect=ReconnectPolicy(...)``).
"""
