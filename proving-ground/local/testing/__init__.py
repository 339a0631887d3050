"""Test-only machinery (fault injection); `make run` never imports it."""
