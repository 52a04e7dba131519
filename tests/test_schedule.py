"""Longest runs first (pipeline/repro/schedule.py): the expected cost of a run and the order, by hand."""

from __future__ import annotations

import heapq
import json
from pathlib import Path

from pipeline.repro.schedule import expected_costs, longest_first, order_runs, order_within_budget


def _project(root: Path) -> Path:
    (root / "benchmarks" / "results").mkdir(parents=True)
    (root / "benchmarks" / "results" / "cpu-2core.json").write_text(json.dumps(
        {"runs": {"x1": {"steps": {"train:mf": {"seconds": {"epoch": 0.5}}, "train:simgr": {"seconds": {"epoch": 4.0}},
                                   "features": {"seconds": {"total": 9.0}}}}}}))
    for ds, n_train in (("small", 100), ("big", 1000)):
        (root / "data" / ds / "ingest").mkdir(parents=True)
        (root / "data" / ds / "ingest" / "stats.json").write_text(json.dumps({"splits": {"train": n_train}}))
        (root / "metrics" / ds).mkdir(parents=True)
    for ds, run, seed, epochs in (("small", "mf", 1, 200), ("big", "mf", 1, 30), ("big", "base", 1, 10), ("big", "simgr", 2, 20)):
        (root / "metrics" / ds / f"{run}-{seed}.json").write_text(json.dumps({"epochs": epochs}))
    return root


def test_cost_is_epochs_times_training_pairs_times_the_models_epoch_seconds(tmp_path):
    repo = _project(tmp_path)
    runs = {"a": ("small", "mf", 1), "b": ("big", "mf", 1), "c": ("big", "base", 1), "d": ("big", "simgr", 2),
            "e": ("big", "lgmrec", 1), "f": ("new", "mf", 3)}
    costs = expected_costs(runs, repo, {"base": {"variant_of": "simgr"}})
    assert costs["a"] == 200 * 100 * 0.5
    assert costs["b"] == 30 * 1000 * 0.5
    assert costs["c"] == 10 * 1000 * 4.0           # a variant costs as its model
    assert costs["d"] == 20 * 1000 * 4.0
    assert costs["e"] == 200 * 1000 * 4.0          # not committed, not benchmarked: the largest known epochs and seconds
    assert costs["f"] == 200 * 1000 * 0.5          # a dataset never ingested: the largest known training pairs
    assert longest_first(costs) == ["e", "f", "d", "c", "b", "a"]


def test_equal_costs_keep_name_order_and_nothing_known_is_still_an_order(tmp_path):
    assert longest_first({"z": 1.0, "a": 1.0, "m": 2.0}) == ["m", "a", "z"]
    costs = expected_costs({"x": ("d", "m", 1), "y": ("d", "m", 2)}, tmp_path)  # an empty folder: every cost 1
    assert costs == {"x": 1.0, "y": 1.0}


def test_order_runs_reads_stage_commands_and_shortens_the_wall_time(tmp_path):
    repo = _project(tmp_path)
    cmds = {"train@small-mf-1": "python -m stages.train small mf 1", "train@big-mf-1": "python -m stages.train big mf 1",
            "train@big-simgr-2": ["python -m stages.train big simgr 2"]}
    order = order_runs(cmds, repo)
    assert order == ["train@big-simgr-2", "train@big-mf-1", "train@small-mf-1"]   # 80,000 > 15,000 > 10,000
    costs = {"s1": 1.0, "s2": 1.0, "long": 2.0}

    def wall(seq, jobs=2):  # a pool of 2 taking the runs in order
        ends = [0.0] * jobs
        for name in seq:
            heapq.heappush(ends, heapq.heappop(ends) + costs[name])
        return max(ends)

    assert wall(["s1", "s2", "long"]) == 3.0 and wall(longest_first(costs)) == 2.0


def test_under_a_budget_the_required_runs_go_longest_first_then_the_optional_cheapest_first(tmp_path):
    repo = _project(tmp_path)
    required = {"train@small-mf-1": "python -m stages.train small mf 1", "train@big-simgr-2": "python -m stages.train big simgr 2"}
    optional = {"train@big-mf-1": "python -m stages.train big mf 1", "train@big-base-1": "python -m stages.train big base 1",
                "train@big-lgmrec-1": "python -m stages.train big lgmrec 1"}
    order = order_within_budget(required, optional, repo, {"base": {"variant_of": "simgr"}})
    # required: 80,000 then 10,000; optional: 15,000 (mf), 40,000 (base as simgr), 800,000 (lgmrec: unknown, the largest known)
    assert order == ["train@big-simgr-2", "train@small-mf-1", "train@big-mf-1", "train@big-base-1", "train@big-lgmrec-1"]
    # the proposed model's sampled runs ahead of the cheaper ones of other models (a variant is not the model)
    optional["train@small-simgr-1"] = "python -m stages.train small simgr 1"  # 200 (largest known epochs) x 100 x 4.0
    order = order_within_budget(required, optional, repo, {"base": {"variant_of": "simgr"}}, first=("simgr",))
    assert order[2:] == ["train@small-simgr-1", "train@big-mf-1", "train@big-base-1", "train@big-lgmrec-1"]
