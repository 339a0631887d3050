"""Benchmarks of the pattern (``make bench`` = ``python -m bench.run``). Not deployed, not part of ``make test``.

``bench.run`` drives everything and writes ``docs/benchmarks.{md,json,png}``;
``bench.floor`` is the reference the local stack is compared against; the
figures are computed by the pure modules ``bench.stats``, ``bench.cost`` and
``bench.report``, which ``tests/bench`` covers.
"""
