"""Operator tools: the demo, the confirmer (an external party) and the demo API keys."""
