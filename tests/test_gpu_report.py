"""The GPU run's report (benchmarks/gpu_report.py): each target's measured value, the CPU figure and
the ratios, from hand-made results files; missing parts are reported as not measured."""

from __future__ import annotations

import json

from benchmarks.gpu_report import build_report, render_report


def _step(**seconds) -> dict:
    return {"status": "ok", "seconds": seconds}


def _results(steps: dict) -> dict:
    return {"machine": "x", "runs": {"x1": {"scale": 1.0, "sizes": {"n_users": 1, "n_items": 1, "n_interactions": 1, "image_dim": 4},
                                           "text_encoder": "hashed", "epochs_timed": 3, "threads": 1, "steps": steps,
                                           "environment": {"date": "d", "platform": "p", "cpu_count": 16, "torch": "2.11",
                                                           "torch_threads": 16, "cuda": "NVIDIA H200", "device_requested": "cuda"},
                                           "loadavg_start": [0, 0, 0], "loadavg_end": [0, 0, 0]}}}


def test_targets_measured_against_the_cpu_figures(tmp_path):
    cpu_dir, work = tmp_path / "results", tmp_path / "work"
    (work / "results").mkdir(parents=True)
    cpu_dir.mkdir()
    stages = {"synth": 2.0, "ingest": 1.0, "features": 50.0, "neighbors": 7.0, "graph": 3.0}
    cpu = {s: _step(total=v) for s, v in stages.items()}
    cpu |= {"train:simgr": _step(epoch=12.0, epochs=[12.5, 12.0], eval_pass=0.5),
            "train:lightgcn": _step(epoch=1.0, epochs=[1.0], eval_pass=0.4),
            "fit:simgr": _step(total=437.0)}
    (cpu_dir / "cpu-2core.json").write_text(json.dumps(_results(cpu)))
    (cpu_dir / "neighbors.json").write_text(json.dumps({"runs": {"baby": {"seconds": {"knn_image": 4.9}, "knn_image_backend": "faiss-cpu"}}}))
    gpu = {s: _step(total=v) for s, v in {"synth": 2.0, "ingest": 1.0, "features": 1.0, "neighbors": 2.0, "graph": 2.0}.items()}
    gpu |= {"knn": {**_step(total=0.2, runs=[0.3, 0.2, 0.2]), "peak_cuda_mb": 600.0},
            "train:simgr": {**_step(epoch=0.24, epochs=[0.9, 0.24, 0.25], eval_pass=0.05), "peak_cuda_mb": 3000.0},
            "train:lightgcn": {"status": "failed", "error": "boom", "peak_cuda_mb": None},
            "fit:simgr": {**_step(total=42.0), "epochs": 40, "best_epoch": 19, "metrics": {"test": {"recall@20": 0.16}}}}
    (work / "results" / "nvidia-h200.json").write_text(json.dumps(_results(gpu)))
    (work / "phases.tsv").write_text("tests\t1\t61\t180\nbench_more\tskipped\t0\t0\n")
    (work / "tests.xml").write_text(
        '<testsuites><testsuite tests="5" failures="1" errors="0" skipped="1" time="12.5">'
        '<testcase classname="tests.test_mf.TestMF" name="test_a[cuda]"><failure message="x"/></testcase>'
        '<testcase classname="t" name="b"/></testsuite></testsuites>'
    )

    rep = build_report(work, "nvidia-h200", cpu_dir)
    rows = {r["target"]: r for r in rep["targets"]}
    assert rows["simgr_epoch"] == {"target": "simgr_epoch", "what": "SiMGR training epoch", "limit_s": 0.3, "measured_s": 0.24,
                                   "of_target": 0.8, "met": True, "cpu_s": 12.0, "cpu_source": "cpu-2core.md", "cpu_over_gpu": 50.0}
    assert rows["simgr_eval_pass"]["of_target"] == 0.5 and rows["simgr_eval_pass"]["cpu_over_gpu"] == 10.0
    assert rows["lightgcn_epoch"]["measured_s"] is None and rows["lightgcn_epoch"]["met"] is None  # the step failed
    assert rows["lightgcn_epoch"]["cpu_s"] == 1.0
    # the kNN figure on the CPU comes from neighbors.json, as cpu-2core did not time the search alone
    assert rows["knn"]["cpu_s"] == 4.9 and rows["knn"]["cpu_over_gpu"] == 24.5 and "neighbors.json" in rows["knn"]["cpu_source"]
    # raw files to metrics: the five stages + the complete run (train + evaluate)
    assert rows["pipeline"]["measured_s"] == 2 + 1 + 1 + 2 + 2 + 42 and rows["pipeline"]["cpu_s"] == 2 + 1 + 50 + 7 + 3 + 437
    assert rows["pipeline"]["met"] is True and rows["pipeline"]["cpu_over_gpu"] == 10.0
    assert rep["pipeline_without_features_s"] == {"gpu": 49.0, "cpu": 450.0}
    assert rep["peak_cuda_mb"] == {"knn": 600.0, "train:simgr": 3000.0}
    assert rep["tests"] == {"tests": 5, "failures": 1, "errors": 0, "skipped": 1, "seconds": 12.5, "passed": 3,
                            "failed": ["tests.test_mf.TestMF::test_a[cuda]"]}
    assert rep["simgr_run"] == {"epochs": 40, "best_epoch": 19, "test_recall@20": 0.16}

    md = render_report(rep)
    assert "| SiMGR training epoch | 0.240 | 0.3 | 0.80 | yes | 12.00 | 50.0x | cpu-2core.md |" in md
    assert "| LightGCN training epoch | — | 0.1 | — | — | 1.00 | — | cpu-2core.md |" in md
    assert "3 passed, 1 failed, 1 skipped" in md and "Largest: 3000 MB (train:simgr)" in md
    assert "| bench_more | skipped | 0 | 0 |" in md


def test_nothing_measured_is_reported_as_such(tmp_path):
    rep = build_report(tmp_path, "nvidia-h200", tmp_path)
    assert all(r["measured_s"] is None and r["cpu_s"] is None for r in rep["targets"])
    md = render_report(rep)
    assert md.count("Not run (no report).") == 2
