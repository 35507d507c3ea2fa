"""``python -m chaos``: the packaged harness, ``raftq.chaos.main``."""

import sys

from raftq.chaos.main import main

sys.exit(main())
