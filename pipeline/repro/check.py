"""The reproducibility check (``make repro-check``, ``simgr repro-check``): rebuild, compare, report.

1. Clone the repository's committed HEAD into a temporary folder (uncommitted changes are not
   part of what is checked) and work there, so the caller's tree and DVC cache are untouched.
2. Staleness, machine-independent: ``dvc status`` must find every stage's code, params and
   shipped inputs as ``dvc.lock`` records them, and every committed (``cache: false``) output
   equal to its lock entry. A change committed without re-running the pipeline fails here.
3. Rebuild what :mod:`pipeline.repro.plan` selects: the data stages with ``dvc repro
   --single-item --force``, the training runs ``repro.jobs`` at a time (:mod:`pipeline.repro.parallel`:
   one thread each, as in ``dvc repro``), then the full datasets' evaluation and reports (trusted
   stages are never run), and evaluate the sampled training runs.
4. Compare every rebuilt output with the committed one by the rule of its kind
   (:mod:`pipeline.repro.contract`, :mod:`pipeline.repro.compare`); print one table and the plan;
   fail only when the contract is broken.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.repro import compare, contract
from pipeline.repro.compare import Finding
from pipeline.repro.parallel import run_parallel, stage_command
from pipeline.repro.plan import Plan, make_plan, parse_stage
from pipeline.repro.schedule import committed_epochs, order_runs, order_within_budget

log = get_logger(__name__)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python -m stages.x` is the venv's
    return env


def _run(args: list[str], cwd: Path, what: str, capture: bool = False) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), text=True, capture_output=capture)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-5:] if capture else []
        raise UserError(f"repro-check: {what} failed (exit {proc.returncode}){': ' + ' | '.join(tail) if tail else ''}")
    return proc.stdout if capture else ""


def _dvc(cwd: Path, *args: str, capture: bool = False) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd, f"dvc {' '.join(args[:3])}", capture)


def clone(repo: Path, into: Path) -> Path:
    """A clone of ``repo``'s HEAD in ``into/repo`` (local clone: hard links, seconds)."""
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, text=True, capture_output=True).stdout
    if dirty.strip():
        log.warning("uncommitted changes in %s are not checked: the check rebuilds the committed HEAD", repo)
    target = into / "repo"
    _run(["git", "clone", "--quiet", str(repo), str(target)], into, "git clone")
    return target


def _outputs(lock: dict[str, Any]) -> set[str]:
    return {o["path"] for st in lock.get("stages", {}).values() for o in st.get("outs", [])}


def stale_stages(status: dict[str, Any], lock: dict[str, Any]) -> list[Finding]:
    """Findings for every stage whose non-generated inputs differ from ``dvc.lock``.

    ``status`` is ``dvc status --json`` of a fresh clone. Inputs produced by a stage (or folders
    holding such outputs) are missing in a clone and are rebuilt; anything else that changed --
    code, params, shipped data, a committed output edited by hand -- means the commit's outputs
    were not regenerated.
    """
    produced = _outputs(lock)
    holds_output = lambda p: any(o == p or o.startswith(p.rstrip("/") + "/") for o in produced)  # noqa: E731
    found = []
    for stage, entries in sorted(status.items()):
        reasons = []
        for entry in entries:
            if isinstance(entry, str):
                reasons.append(entry)
                continue
            for path, state in (entry.get("changed deps") or {}).items():
                if isinstance(state, dict):
                    reasons += [f"param {k} {v}" for k, v in state.items()]
                elif not holds_output(path):
                    reasons.append(f"{path} {state}")
            for path, state in (entry.get("changed outs") or {}).items():
                if state == "modified":
                    reasons.append(f"committed output {path} differs from dvc.lock")
        if stage not in lock.get("stages", {}) and not reasons:
            reasons.append("not in dvc.lock")
        if reasons:
            found.append(Finding(stage, "stale", "code, params and inputs as in dvc.lock", False, "; ".join(reasons[:3])))
    return found


def _git_bytes(repo: Path, path: str) -> bytes | None:
    proc = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=repo, capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def _parquet(data: bytes | None) -> pl.DataFrame | None:
    return None if data is None else pl.read_parquet(io.BytesIO(data))


def _json(data: bytes | None) -> Any:
    return None if data is None else json.loads(data)


def _out_md5(entry: dict[str, Any] | None) -> dict[str, str]:
    return {o["path"]: o.get("md5") for o in (entry or {}).get("outs", [])}


def _metrics_runs(repo: Path, dataset: str, lock: dict[str, Any], committed: bool) -> dict[str, dict[int, dict]]:
    """model -> seed -> metrics JSON of a dataset (committed versions from git, else the files)."""
    runs: dict[str, dict[int, dict]] = {}
    for name, entry in lock["stages"].items():
        st = parse_stage(name, entry["cmd"])
        if st.module != "train" or st.dataset != dataset:
            continue
        model, seed = st.args[1], int(st.args[2])
        path = f"metrics/{dataset}/{model}-{seed}.json"
        data = _git_bytes(repo, path) if committed else ((repo / path).read_bytes() if (repo / path).exists() else None)
        if data is not None:
            runs.setdefault(model, {})[seed] = json.loads(data)
    return runs


def compare_outputs(repo: Path, committed_lock: dict[str, Any], rebuilt_lock: dict[str, Any], plan: Plan) -> list[Finding]:
    """Every output of the rebuilt stages, and the metrics of the sampled runs, by their rules."""
    findings: list[Finding] = []
    derived: dict[str, int] = {}
    committed_runs: dict[str, dict] = {}

    def committed(ds: str) -> dict:  # the committed metrics of a dataset, read from git once
        if ds not in committed_runs:
            committed_runs[ds] = _metrics_runs(repo, ds, committed_lock, committed=True)
        return committed_runs[ds]

    def band(ds: str, rel: str) -> dict:  # the per-run band of the run metrics/<ds>/<model>-<seed>.json
        return compare.bands(committed(ds), Path(rel).stem.rsplit("-", 1)[0])

    for stage in plan.rebuilt:
        before = _out_md5(committed_lock["stages"].get(stage))
        after = _out_md5(rebuilt_lock["stages"].get(stage))
        for path in sorted(before | after):
            rule = contract.rule_for(path)
            if rule.kind == "derived":
                key = f"{path.split('/')[0]}/ of {stage.split('@')[0]}@{contract.dataset_of(path).split('.')[0].split('_')[0]}"
                derived[key] = derived.get(key, 0) + 1
            elif rule.kind == "represented":
                same = before.get(path) == after.get(path)
                via = rule.via.format(ds=contract.dataset_of(path))
                findings.append(Finding(path, "represented", rule.how, True, "-" if same else f"bytes differ: compared through {via}"))
            elif rule.kind == "band":
                ds = contract.dataset_of(path)
                for file in sorted((repo / path).glob("*.json")):
                    rel = f"{path}/{file.name}"
                    findings.append(compare.compare_metrics(rel, _json(_git_bytes(repo, rel)), json.loads(file.read_bytes()), band(ds, rel)))
            elif rule.kind == "sketch":
                findings.append(compare.compare_sketch(path, _parquet(_git_bytes(repo, path)), pl.read_parquet(repo / path)))
            elif rule.kind == "ties":
                findings.append(compare.compare_fingerprint(path, _parquet(_git_bytes(repo, path)), pl.read_parquet(repo / path)))
            elif rule.how == "md5 in dvc.lock":
                findings.append(compare.compare_md5(path, before.get(path), after.get(path)))
            elif path.endswith(".json") and rule.how.startswith("committed JSON"):
                ties = contract.TIE_FIELDS.get(Path(path).name, ())
                findings.append(compare.compare_json(path, _json(_git_bytes(repo, path)), json.loads((repo / path).read_bytes()), ties))
            else:
                findings.append(compare.compare_bytes(path, _git_bytes(repo, path), (repo / path).read_bytes() if (repo / path).exists() else None))
    for ds in sorted({contract.dataset_of(p) for st in plan.rebuilt for p in _out_md5(rebuilt_lock["stages"].get(st))
                      if contract.rule_for(p).kind == "band"}):
        findings += compare.compare_model_means(ds, committed(ds), _metrics_runs(repo, ds, committed_lock, committed=False))
    for ds, runs in plan.sampled.items():
        for run in runs:
            rel = f"metrics/{ds}/{run}.json"
            findings.append(compare.compare_metrics(rel, _json(_git_bytes(repo, rel)), json.loads((repo / rel).read_bytes()), band(ds, rel)))
    for key, n in sorted(derived.items()):
        findings.append(Finding(f"{key} ({n} output{'s' if n > 1 else ''})", "derived", contract.rule_for(key.split()[0] + "x").how, True))
    return findings


def table(findings: list[Finding]) -> str:
    """The findings as one aligned text table (status, kind, output, rule, what moved)."""
    rows = [("status", "kind", "output", "rule", "moved")]
    rows += [("ok" if f.ok else "BROKEN", f.kind, f.output, f.rule, f.moved) for f in findings]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows)


def _summary(names: list[str]) -> str:
    groups: dict[str, int] = {}
    for name in names:
        kind, _, item = name.partition("@")
        key = f"{kind}@{item.split('-')[0]}" if item else kind
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in sorted(groups.items())) or "none"


def run_check(repo: str | Path = ".", *, workdir: str | Path | None = None, keep: bool = False,
              budget_minutes: float | None = None) -> int:
    """Run the whole check on ``repo``'s HEAD; print the plan and the findings; 0 when the contract holds.

    ``budget_minutes``: no training run starts, and any still running is stopped, that many minutes
    after the check began (evaluation and comparisons follow). The full datasets' runs go first and
    must all finish (else the check fails); the sampled runs follow, the proposed model's first, then
    cheapest first, and those the budget leaves out are trusted from the commit and listed."""
    repo = Path(repo).resolve()
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="simgr-repro-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    deadline = None if budget_minutes is None else time.time() + 60 * budget_minutes
    try:
        work = clone(repo, base)
        committed_lock = yaml.safe_load((work / "dvc.lock").read_text())
        params = yaml.safe_load((work / "params.yaml").read_text())
        settings = params.get("repro") or {}
        full, seed = list(settings.get("full", [])), int(settings.get("seed", 0))
        jobs = int(settings.get("jobs", 2))
        print(f"repro-check: {repo} at {_run(['git', 'rev-parse', '--short', 'HEAD'], work, 'git', True).strip()}, in {work}", flush=True)
        stale = stale_stages(json.loads(_dvc(work, "status", "--json", capture=True) or "{}"), committed_lock)
        if stale:
            print(table(stale))
            print(f"repro-check: BROKEN: {len(stale)} stage(s) changed since dvc.lock was written "
                  "(re-run `dvc repro` and commit dvc.lock with the outputs)", flush=True)
            return 1
        train_cmds = {n: e["cmd"] for n, e in committed_lock["stages"].items() if parse_stage(n, e["cmd"]).module == "train"}
        plan = make_plan(committed_lock["stages"], full, seed, committed_epochs(train_cmds, work))
        print(f"repro-check: rebuilds {len(plan.rebuilt)} stage(s): {_summary(plan.rebuilt)}")
        for ds, runs in plan.sampled.items():
            print(f"repro-check: {ds}: one seed per model, the one that ran the fewest epochs, retrained and evaluated ({', '.join(runs)})")
        print(f"repro-check: trusts {len(plan.trusted)} stage(s) from the commit: {_summary(plan.trusted)}", flush=True)
        t0 = time.perf_counter()
        _dvc(work, "repro", "--single-item", "--force", *plan.data)
        cmds = {name: committed_lock["stages"][name]["cmd"] for name in plan.train}
        if deadline is None:
            # the longest runs first (pipeline/repro/schedule.py): the wall time is then about max(longest, total / jobs)
            order = order_runs(cmds, work, params.get("models"))
            print(f"repro-check: training runs longest first (expected from their committed epochs): {', '.join(order[:3])}"
                  f"{' ...' if len(order) > 3 else ''}", flush=True)
        else:
            required = set(plan.required)
            proposed = str((params.get("report") or {}).get("proposed") or "")
            order = order_within_budget({n: c for n, c in cmds.items() if n in required},
                                        {n: c for n, c in cmds.items() if n not in required}, work, params.get("models"),
                                        first=(proposed,))
            print(f"repro-check: budget {budget_minutes:g} min: the {len(required)} run(s) of {', '.join(full) or 'no full dataset'} "
                  f"first, longest first, then the {len(order) - len(required)} sampled run(s), {proposed or 'the proposed model'}'s "
                  f"first, cheapest first until {time.strftime('%H:%M:%S', time.localtime(deadline))}", flush=True)
        train = {name: stage_command(committed_lock["stages"][name]) for name in order}
        print(f"repro-check: data stages rebuilt in {time.perf_counter() - t0:.0f} s; training {len(train)} run(s), {jobs} at a time",
              flush=True)
        finished = run_parallel(train, jobs, work, work / "logs" / "repro-check", deadline=deadline)
        unfinished = [name for name in order if name not in finished]
        missing = [name for name in plan.required if name in unfinished]
        if missing:
            print(f"repro-check: BROKEN: the budget of {budget_minutes:g} min ran out before {len(missing)} of the "
                  f"{len(plan.required)} run(s) of the full datasets were retrained ({', '.join(missing[:3])}"
                  f"{' ...' if len(missing) > 3 else ''}): give the check more time or fewer full datasets (repro.full)", flush=True)
            return 1
        if unfinished:
            plan.leave_out(unfinished)
            print(f"repro-check: {len(unfinished)} sampled run(s) not retrained within the budget, trusted from the commit: "
                  f"{', '.join(n.partition('@')[2] for n in unfinished)}", flush=True)
        if plan.evaluate or plan.report:
            _dvc(work, "repro", "--single-item", "--force", *plan.evaluate, *plan.report)
        for ds, runs in plan.sampled.items():
            _run([sys.executable, "-m", "stages.evaluate", ds, "--runs", ",".join(runs)], work, f"evaluate {ds}")
        rebuild_s = time.perf_counter() - t0
        rebuilt_lock = yaml.safe_load((work / "dvc.lock").read_text())
        findings = compare_outputs(work, committed_lock, rebuilt_lock, plan)
        print(table(findings))
        broken = [f for f in findings if not f.ok]
        total = time.perf_counter() - started
        left_out = f"; {len(plan.unfinished)} sampled run(s) left out by the budget" if plan.unfinished else ""
        print(f"repro-check: {len(findings)} comparisons, {len(broken)} broken; rebuild {rebuild_s:.0f} s, total {total:.0f} s{left_out}")
        if broken:
            print(f"repro-check: BROKEN: {broken[0].output}: {broken[0].moved}")
            return 1
        print("repro-check: the rebuild reproduces the commit within the contract (docs/reproducibility.md)")
        return 0
    finally:
        if keep:
            print(f"repro-check: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
