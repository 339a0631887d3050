"""Diagnostic only: the two-line fix proposed for ``local/http_base.py``, applied to a whole process.

``bench.run`` puts this directory on ``PYTHONPATH`` of one extra local-stack
process (never of the workers) to measure what the fix would change:

* ``disable_nagle_algorithm``: ``BaseHTTPRequestHandler`` writes the status line and
  headers, then the body, as two sends on a keep-alive connection; with Nagle on,
  the body waits for the peer's delayed ACK (40 ms on Linux) on every response.
* ``request_queue_size``: ``socketserver`` listens with a backlog of 5, so a burst
  of new connections is dropped or reset.
"""

import socketserver

socketserver.StreamRequestHandler.disable_nagle_algorithm = True
socketserver.TCPServer.request_queue_size = 128
