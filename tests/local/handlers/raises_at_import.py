"""Fails at import with its own exception (the runtime reports the exception's type)."""

raise LookupError("table name missing from the environment")
