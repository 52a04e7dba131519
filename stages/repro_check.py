"""`make repro-check`: rebuild the committed HEAD in a temporary clone and compare by the contract.

    python -m stages.repro_check [--keep] [--dir DIR] [--budget-minutes N]

Not a DVC stage: it runs DVC. Prints what it rebuilds and trusts, one table of every comparison
and what moved, and exits 1 when the reproducibility contract (docs/reproducibility.md) is broken.
"""

from __future__ import annotations

import sys

from pipeline.errors import UserError
from pipeline.repro.check import run_check
from stages._main import run_stage


def budget_minutes(text: str) -> float:
    """The value of ``--budget-minutes``: a positive number of minutes."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UserError(f"repro_check: --budget-minutes: expected a positive number of minutes, got {text!r}")
    return value


def main(*flags: str) -> None:
    keep, workdir, budget, rest = False, None, None, list(flags)
    while rest:
        flag = rest.pop(0)
        if flag == "--keep":
            keep = True
        elif flag == "--dir" and rest:
            workdir = rest.pop(0)
        elif flag == "--budget-minutes" and rest:
            budget = budget_minutes(rest.pop(0))
        else:
            raise UserError(f"repro_check: unknown option {flag!r} (known: --keep, --dir DIR, --budget-minutes N)")
    code = run_check(".", workdir=workdir, keep=keep, budget_minutes=budget)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    run_stage(main)
