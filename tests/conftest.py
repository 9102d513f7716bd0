"""Suite-wide: pytester runs users' test files against the roomsignal.testing plugin."""

pytest_plugins = ["pytester"]
