"""The whole pipeline, dataset by dataset (``make run``, ``simgr run-all``).

``dvc repro`` runs every stage of a kind before the next kind (every dataset's studies, then every
dataset's training runs), one stage at a time, so the first report comes after hours. Here:

1. the ``check`` stage;
2. for each dataset of params ``run.datasets``, smallest first (its ratings file's size): its data
   stages, studies and signed graph (``dvc repro``), its training runs ``jobs`` at a time
   (:func:`pipeline.repro.parallel.train_all`, recorded with ``dvc commit``), its evaluation and
   report: the smallest dataset's report is there after minutes;
3. ``dvc repro`` for anything left (nothing, normally): the same state as a plain ``dvc repro``.

What each step prints goes to ``logs/run/<step>.log``; the terminal shows one progress line for the
whole run: runs done of the total (study trials and training runs), elapsed time and an estimate of
the time left (the mean time per run so far times the runs left), and a line per finished dataset.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.repro.parallel import _env, dvc_status, stage_commands, train_all
from pipeline.repro.plan import parse_stage
from pipeline.settings import load_params
from pipeline.tuning.space import parse_space, parse_sweeps

log = get_logger(__name__)
TRIAL_DONE = re.compile(r"trial \d+: .* -> (valid|pruned)")


def dataset_order(params, repo: Path) -> list[str]:
    """``run.datasets`` smallest first: by the interactions its committed ``stats.json`` counts (ingested
    before), else by the size of its ratings file (compressed files with review text say little about
    the number of ratings, so a counted dataset goes first); a dataset still to download last."""
    def size(name: str) -> tuple[int, int]:
        stats = repo / "data" / name / "ingest" / "stats.json"
        try:
            return 0, int(json.loads(stats.read_text())["n_interactions"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        path = repo / params.dataset(name).reviews
        return 1, path.stat().st_size if path.is_file() else sys.maxsize

    return sorted(params.run.datasets, key=size)


def study_trials(params, model: str) -> int:
    """The trials a study of ``model`` runs at most (its grid or TPE budget, plus its sweeps)."""
    tune = params.tune
    if not tune.enabled:
        return 0
    space = parse_space(model, (tune.spaces or {}).get(model), tune.max_trials)
    sweeps = parse_sweeps(model, (tune.sweeps or {}).get(model), space) if space.values else {}
    return space.n_trials + sum(len(v) - 1 for v in sweeps.values())


class Progress:
    """The one progress line: runs done of the total, elapsed, estimated time left."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()
        self.bar = progress(total=total, unit="run", desc="pipeline", bar_format="{desc}: {n}/{total} runs |{bar}| {postfix}")
        self.lock = threading.Lock()
        self.step = ""

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            self.bar.update(n)
            self._postfix()

    def drop(self, n: int) -> None:
        """Runs that turn out not to be needed (a study up to date after its inputs were rebuilt)."""
        with self.lock:
            self.total -= n
            self.bar.total = self.total
            self._postfix()

    def at(self, step: str) -> None:
        with self.lock:
            self.step = step
            self._postfix()

    def _postfix(self) -> None:
        elapsed = time.perf_counter() - self.started
        left = (elapsed / self.done * (self.total - self.done)) if self.done else None
        eta = f"~{_clock(left)} left" if left is not None else "estimating"
        self.bar.set_postfix_str(f"{_clock(elapsed)} elapsed, {eta}; {self.step}", refresh=True)

    def say(self, line: str) -> None:
        if self.bar.disable:
            log.info(line)
        else:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _dvc(repo: Path, args: list[str], log_file: Path, on_line=None) -> None:
    """``dvc <args>`` in ``repo``, its output to ``log_file``; ``on_line`` sees each line as it comes."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=repo, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            out.write(line)
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    if code:
        tail = log_file.read_text().strip().splitlines()[-3:]
        raise UserError(f"dvc {' '.join(args[:3])} failed (exit {code}; {log_file}): {' | '.join(tail)}")


def run_all(repo: str | Path = ".", jobs: int = 2) -> None:
    """The pipeline of ``repo``, dataset by dataset (module docstring)."""
    repo = Path(repo).resolve()
    logs = repo / "logs" / "run"
    params = load_params(repo / "params.yaml")
    order = dataset_order(params, repo)
    cmds = stage_commands(repo)
    status = dvc_status(repo)
    by_dataset: dict[str, list[tuple[str, Any]]] = {ds: [] for ds in order}
    for name, cmd in cmds.items():
        st = parse_stage(name, cmd)
        if st.dataset in by_dataset and name in status:
            by_dataset[st.dataset].append((name, st))
    trials = {name: study_trials(params, st.args[1]) for ds in order for name, st in by_dataset[ds] if st.module == "tune"}
    runs = {ds: [n for n, st in stages if st.module == "train"] for ds, stages in by_dataset.items()}
    bar = Progress(sum(trials.values()) + sum(map(len, runs.values())))
    bar.say(f"run-all: datasets {', '.join(order)} (smallest first); {len(trials)} stale studies (at most {sum(trials.values())} "
            f"trials) and {sum(map(len, runs.values()))} training runs; logs in {logs}")
    try:
        bar.at("check")
        _dvc(repo, ["repro", "check"], logs / "check.log")
        for ds in order:
            started = time.perf_counter()
            before = [n for n, st in by_dataset[ds] if st.module not in ("train", "evaluate", "report")]
            if before:
                bar.at(f"{ds}: data, studies, graph")
                ran: dict[str, int] = {}  # stage -> trials seen

                def seen(line: str, ds: str = ds) -> None:
                    m = re.search(r"Running stage '([^']+)'", line)
                    if m:
                        ran[m.group(1)] = 0
                        bar.at(f"{ds}: {m.group(1)}")
                    elif TRIAL_DONE.search(line) and ran:
                        ran[next(reversed(ran))] += 1
                        bar.add()

                _dvc(repo, ["repro", *before], logs / f"{ds}-data-and-studies.log", seen)
                # a study up to date once its inputs were rebuilt runs no trial; one ran fewer than its budget
                # (inert keys left out, a model without the features it reads): the total becomes what ran
                bar.drop(sum(trials[n] - ran.get(n, 0) for n in before if n in trials))
            if runs[ds]:
                bar.at(f"{ds}: training {len(runs[ds])} runs, {jobs} at a time")
                train_all(repo, jobs, dataset=ds, on_done=lambda name, seconds: (bar.add(), bar.at(name)))
            bar.at(f"{ds}: evaluate, report")
            _dvc(repo, ["repro", f"evaluate@{ds}", f"report@{ds}"], logs / f"{ds}-report.log")
            bar.say(f"{ds}: reports/{ds}.md written ({_clock(time.perf_counter() - started)} for this dataset, "
                    f"{_clock(time.perf_counter() - bar.started)} since the start)")
        bar.at("dvc repro (what is left)")
        _dvc(repo, ["repro"], logs / "final.log")
    finally:
        bar.close()
    log.info("run-all: done in %s", _clock(time.perf_counter() - bar.started))

