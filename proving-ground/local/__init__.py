"""The local stack: the whole pattern on loopback (``make run``). Not deployed.

The handlers' own code lives in ``src/`` (what each Lambda zip holds); the local
stack imports the same contract, schema and demo tenants from ``shared`` (the
repository is installed into ``.venv`` as one editable project, see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

# The code root of every function: what `make build` zips and each local worker imports from.
REPO_ROOT = Path(__file__).resolve().parents[2]
SRC_DIR = REPO_ROOT / "src"
