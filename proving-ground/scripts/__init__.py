"""Build and repository tooling for make, the local stack and the tests (never deployed)."""
