"""`make repro-check`: rebuild the committed HEAD in a temporary clone and compare by the contract.

    python -m stages.repro_check [--keep] [--dir DIR]

Not a DVC stage: it runs DVC. Prints what it rebuilds and trusts, one table of every comparison
and what moved, and exits 1 when the reproducibility contract (docs/reproducibility.md) is broken.
"""

from __future__ import annotations

import sys

from pipeline.errors import UserError
from pipeline.repro.check import run_check
from stages._main import run_stage


def main(*flags: str) -> None:
    keep, workdir, rest = False, None, list(flags)
    while rest:
        flag = rest.pop(0)
        if flag == "--keep":
            keep = True
        elif flag == "--dir" and rest:
            workdir = rest.pop(0)
        else:
            raise UserError(f"repro_check: unknown option {flag!r} (known: --keep, --dir DIR)")
    code = run_check(".", workdir=workdir, keep=keep)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    run_stage(main)
