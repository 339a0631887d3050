"""The local stack: the whole pattern on loopback (``make run``). Not deployed.

The handlers' own code lives in ``src/`` (what each Lambda zip holds); the local
stack reads the same contract, schema and demo tenants from ``src/shared``, so
it puts ``src`` on the import path once, here.
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent.parent / "src"
if str(SRC_DIR) not in sys.path:
    sys.path.insert(0, str(SRC_DIR))
