"""Training runs side by side: DVC runs one stage at a time, but the training runs of the matrix are
independent, so on a machine with N cores N of them (one thread each, ``train.threads``) finish in
about 1/N of the time. :func:`run_parallel` runs stage commands N at a time; ``simgr train-all``
runs the training stages ``dvc status`` finds stale that way and records them with ``dvc commit``
(the same outputs ``dvc repro`` would write: the same code, params and thread count), after which
``dvc repro`` goes on with evaluation and reports.

A ``python -m stages.<module>`` command runs in a process forked from a server that imported torch
once (:mod:`multiprocessing`'s ``forkserver``): the same fresh process a new interpreter would be,
without its 7 s of imports per run (torch, and the compiler front end an optimizer imports), which on
a small dataset is half of a run. Nothing else is shared: the server runs no torch operation, so no
thread pool or state is forked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import multiprocessing
import os
import runpy
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.repro.plan import parse_stage
from pipeline.repro.schedule import order_runs

log = get_logger(__name__)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_parallel(commands: dict[str, list[str]], jobs: int, cwd: Path, logs: Path | None = None,
                 on_done: Callable[[str, float], None] | None = None, deadline: float | None = None) -> dict[str, float]:
    """Run each named command (argv) in ``cwd``, ``jobs`` at a time, in the order given; seconds per name
    of those that finished. Output goes to ``logs/<name>.log`` when given (else it is discarded); the
    first failure is a UserError naming its log after the running ones finish. ``on_done(name, seconds)``
    follows each one that ends well (then no bar of its own is shown). ``deadline`` (``time.time()``):
    no command starts after it and any still running then is stopped; those are logged and absent
    from the result."""
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def one(name: str, argv: list[str]) -> float | str:
        if deadline is not None and time.time() >= deadline:
            return "not started"
        t0 = time.perf_counter()
        log_file = logs / f"{name}.log" if logs is not None else Path(os.devnull)
        code = _run(argv, cwd, log_file, deadline)
        if code is None:
            return "stopped"
        if code:
            where = f" (see {logs / f'{name}.log'})" if logs is not None else ""
            raise UserError(f"{name}: '{' '.join(argv)}' failed with exit status {code}{where}")
        return time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, name, argv): name for name, argv in commands.items()}
        bar = progress(total=len(futures), desc=f"runs ({jobs} at a time)", unit="run", **({"disable": True} if on_done else {}))
        for future in as_completed(futures):
            name = futures[future]
            result = future.result()
            if isinstance(result, str):
                log.info("%s: %s, the deadline has passed", name, result)
                bar.update(1)
                continue
            seconds[name] = result
            if on_done is not None:
                on_done(name, seconds[name])
                continue
            bar.update(1)
            log.info("%s: done in %.0f s (%d of %d)", name, seconds[name], len(seconds), len(futures))
        bar.close()
    return seconds


# what a forked stage finds imported: torch, and the compiler front end its optimizers import when
# created (3.5 s). Not polars or the stages: polars starts threads on import, which a fork must not copy.
PRELOAD = ["torch", "torch._dynamo"]
#: seconds a run stopped at the deadline gets to exit on SIGTERM before it is killed
STOP_GRACE_S = 10


def _forked_stage(module: str, args: list[str], cwd: str, log_file: str) -> None:
    """In the forked child: ``python -m <module> <args>`` in ``cwd``, stdout and stderr to ``log_file``."""
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(cwd)
    os.environ.update(_env())  # as the subprocess would have it
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)  # SystemExit(n) is the exit status


def _imports_from(repo: Path) -> bool:
    """Whether this interpreter imports ``stages`` from ``repo`` (``python -m`` in ``repo`` would import
    ``repo``'s; a checkout elsewhere, such as the reproducibility check's clone, runs as a subprocess)."""
    spec = importlib.util.find_spec("stages")
    return spec is not None and spec.origin is not None and Path(spec.origin).resolve().parent.parent == repo.resolve()


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.time())


def _run(argv: list[str], cwd: Path, log_file: Path, deadline: float | None = None) -> int | None:
    """Exit status of ``argv`` run in ``cwd`` with its output in ``log_file``; a ``python -m stages.*``
    command of this interpreter in a forked process (module docstring), anything else as a subprocess.
    None when it was still running at ``deadline`` (``time.time()``) and was stopped."""
    if (len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m" and argv[2].startswith("stages.")
            and _imports_from(Path(cwd))):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        proc = ctx.Process(target=_forked_stage, args=(argv[2], argv[3:], str(Path(cwd).resolve()), str(log_file)))
        proc.start()
        proc.join(_left(deadline))
        if proc.is_alive():  # past the deadline
            proc.terminate()
            proc.join(STOP_GRACE_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
            return None
        return proc.exitcode
    with open(log_file, "w") as out:
        child = subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            return child.wait(_left(deadline))
        except subprocess.TimeoutExpired:  # past the deadline
            child.terminate()
            try:
                child.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return None


def stage_command(entry: dict[str, Any]) -> list[str]:
    """The argv of a ``python -m stages.<module> ...`` stage command, with this interpreter."""
    cmd = entry["cmd"] if isinstance(entry["cmd"], str) else " && ".join(entry["cmd"])
    st = parse_stage("?", cmd)
    return [sys.executable, "-m", f"stages.{st.module}", *st.args]


def dvc_status(repo: Path) -> dict[str, Any]:
    """``dvc status --json`` of ``repo``: stale stage -> what changed."""
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, env=_env(), capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{repo.resolve()}: `dvc status` failed (exit {done.returncode}: {last}); run train-all at the root of the "
                        "repository, after dvc repro has run the stages before training")
    return json.loads(done.stdout or "{}")


def stage_commands(repo: Path) -> dict[str, str | list[str]]:
    """Every stage of ``repo``'s dvc.yaml (expanded: ``train_cf@magazine-mf-1``) -> its command."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {st.addressing: st.cmd for st in dvc_repo.index.stages}


def train_all(repo: str | Path = ".", jobs: int = 2, dataset: str | None = None,
              on_done: Callable[[str, float], None] | None = None) -> list[str]:
    """Run the stale training stages of ``repo`` (of one ``dataset``, or all) ``jobs`` at a time, then
    ``dvc commit`` them; their names."""
    repo = Path(repo)
    if jobs < 1:
        raise UserError(f"--jobs: expected at least 1 training run at a time, got {jobs}")
    status = dvc_status(repo)
    cmds = stage_commands(repo)
    names = [n for n, cmd in cmds.items() if n.startswith("train_") and n in status
             and (dataset is None or parse_stage(n, cmd).dataset == dataset)]
    upstream = sorted({n for n, entries in status.items() if not n.startswith(("train_", "evaluate", "report"))
                       and (dataset is None or parse_stage(n, cmds[n]).dataset in (dataset, None))
                       and any(isinstance(e, dict) and e.get("changed outs") for e in entries)})
    if upstream:
        raise UserError(f"stages before training are not up to date ({', '.join(upstream[:4])}{' ...' if len(upstream) > 4 else ''}): "
                        "run `dvc repro` for them first (e.g. dvc repro graph tune_cf tune_mm)")
    if not names:
        log.info("every training stage is up to date")
        return []
    # the longest runs first (pipeline/repro/schedule.py): the wall time is then about max(longest, total / jobs)
    models = (yaml.safe_load((repo / "params.yaml").read_text()) or {}).get("models") if (repo / "params.yaml").is_file() else None
    commands = {name: stage_command({"cmd": cmds[name]}) for name in order_runs({n: cmds[n] for n in names}, repo, models)}
    log.info("training %d stale run(s), %d at a time", len(commands), jobs)
    run_parallel(commands, jobs, repo, repo / "logs" / "train-all", on_done=on_done)
    t0 = time.perf_counter()
    commit_stages(repo, names)
    log.info("recorded %d training stage(s) in dvc.lock (%.0f s)", len(names), time.perf_counter() - t0)
    return names


def commit_stages(repo: str | Path, names: list[str]) -> None:
    """What ``dvc commit --force <names>`` records (each stage's deps and outs hashed, its outs in the
    cache, its entry in dvc.lock), with the pipeline collected once and dvc.lock written once per file.

    DVC's command collects the whole pipeline and rewrites dvc.lock once *per target*, which for a
    dataset's 65 training runs in a 165-stage pipeline took 6.5-7.7 min of one core
    (benchmarks/results/wall-2026-12-03.md); the work per stage is the same here.
    """
    from dvc.repo import Repo, lock_repo

    # DVC resolves stage paths and names against the working directory, as its command does in the repo
    with contextlib.chdir(repo), Repo(".") as dvc_repo, lock_repo(dvc_repo):
        by_name = {st.addressing: st for st in dvc_repo.index.stages}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UserError(f"{Path(repo).resolve() / 'dvc.yaml'}: no stage {missing[0]!r} to record in dvc.lock")
        by_file: dict[str, list[Any]] = {}
        for name in names:
            stage = by_name[name]
            stage.save()
            stage.commit()
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        for stages in by_file.values():
            stages[0].dvcfile.dump_stages(stages, update_pipeline=False)
