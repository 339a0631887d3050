"""The durable execution backend: the official emulator and the adapter that makes its history match AWS."""
