"""Thin DVC stage entry points: `python -m stages.<name> <dataset> ...` from the repository root."""
