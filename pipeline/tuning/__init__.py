"""Hyper-parameter selection on validation (Optuna): search spaces, trials, the selected values."""
