"""The browser side, shipped as package data: ``roomsignal.js`` and the watch-together page.

Served by ``SignalingServer`` (``roomsignal.server._web``); docs/web.md
describes the JS API. Nothing here is imported at run time by Python.
"""
