"""``python -m roomsignal``: the command line."""

import sys

from roomsignal.cli import main

sys.exit(main())
