"""``python -m local``: the local stack (``make run``)."""

import sys

from local.cli import main

sys.exit(main())
