"""Training runs side by side: DVC runs one stage at a time, but the training runs of the matrix are
independent, so on a machine with N cores N of them (one thread each, ``train.threads``) finish in
about 1/N of the time. :func:`run_parallel` runs stage commands N at a time; ``simgr train-all``
runs the training stages ``dvc status`` finds stale that way and records them with ``dvc commit``
(the same outputs ``dvc repro`` would write: the same code, params and thread count), after which
``dvc repro`` goes on with evaluation and reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.repro.plan import parse_stage

log = get_logger(__name__)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_parallel(commands: dict[str, list[str]], jobs: int, cwd: Path, logs: Path | None = None) -> dict[str, float]:
    """Run each named command (argv) in ``cwd``, ``jobs`` at a time; seconds per name. Output goes to
    ``logs/<name>.log`` when given (else it is discarded); the first failure is a UserError naming
    its log after the running ones finish."""
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def one(name: str, argv: list[str]) -> float:
        t0 = time.perf_counter()
        out = open(logs / f"{name}.log", "w") if logs is not None else subprocess.DEVNULL
        try:
            code = subprocess.run(argv, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT).returncode
        finally:
            if logs is not None:
                out.close()
        if code:
            where = f" (see {logs / f'{name}.log'})" if logs is not None else ""
            raise UserError(f"{name}: '{' '.join(argv)}' failed with exit status {code}{where}")
        return time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, name, argv): name for name, argv in commands.items()}
        bar = progress(total=len(futures), desc=f"runs ({jobs} at a time)", unit="run")
        for future in as_completed(futures):
            name = futures[future]
            seconds[name] = future.result()
            bar.update(1)
            log.info("%s: done in %.0f s (%d of %d)", name, seconds[name], len(seconds), len(futures))
        bar.close()
    return seconds


def stage_command(entry: dict[str, Any]) -> list[str]:
    """The argv of a ``python -m stages.<module> ...`` stage command, with this interpreter."""
    cmd = entry["cmd"] if isinstance(entry["cmd"], str) else " && ".join(entry["cmd"])
    st = parse_stage("?", cmd)
    return [sys.executable, "-m", f"stages.{st.module}", *st.args]


def train_all(repo: str | Path = ".", jobs: int = 2) -> list[str]:
    """Run the stale training stages of ``repo`` ``jobs`` at a time, then ``dvc commit`` them; their names."""
    repo = Path(repo)
    status = json.loads(subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, env=_env(),
                                       capture_output=True, text=True, check=True).stdout or "{}")
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        cmds = {st.addressing: st.cmd for st in dvc_repo.index.stages}
    names = [n for n in cmds if n.startswith("train_") and n in status]
    upstream = sorted({n for n, entries in status.items() if not n.startswith(("train_", "evaluate", "report"))
                       and any(isinstance(e, dict) and e.get("changed outs") for e in entries)})
    if upstream:
        raise UserError(f"stages before training are not up to date ({', '.join(upstream[:4])}{' ...' if len(upstream) > 4 else ''}): "
                        "run `dvc repro` for them first (e.g. dvc repro graph tune_cf tune_mm)")
    if not names:
        log.info("every training stage is up to date")
        return []
    commands = {name: stage_command({"cmd": cmds[name]}) for name in names}
    log.info("training %d stale run(s), %d at a time", len(commands), jobs)
    run_parallel(commands, jobs, repo, repo / "logs" / "train-all")
    subprocess.run([sys.executable, "-m", "dvc", "commit", "--force", "--quiet", *names], cwd=repo, env=_env(), check=True)
    log.info("recorded %d training stage(s) in dvc.lock (dvc commit)", len(names))
    return names
