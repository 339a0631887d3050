"""How functions run: their definitions, the per-tenant worker pools and the worker process."""
