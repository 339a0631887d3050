"""Benchmarks of the pattern (``make bench`` = ``python -m bench.run``); not deployed, not part of ``make test``."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_SUFFIX = "-workflow"  # the workflow function's name ends so; the api and authorizer functions' do not
