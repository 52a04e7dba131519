"""The trainer: reproducible reruns, resume after an interruption, early stopping, outputs."""

import json

import numpy as np
import pytest
import torch

from pydantic import ValidationError

from model_mixin import PARAMS
from model_mixin import build as build_model
from pipeline.errors import UserError
from pipeline.settings import validate_params
from pipeline.training.trainer import TrainSettings, fit
from planted import planted_data

SETTINGS = TrainSettings(max_validations=6, valid_every_steps=1, patience=20, lr=0.01, batch_size=256, emb_dim=16, eval_batch_size=512, device="cpu")


def _build(name="lightgcn", fail_at_epoch=None):
    def build(device):
        model = build_model(name, planted_data(), device, SETTINGS.emb_dim)
        if fail_at_epoch is not None:
            def pre_epoch(epoch, generator):
                if epoch == fail_at_epoch:
                    raise KeyboardInterrupt
            model.pre_epoch = pre_epoch
        return model

    return build


def test_two_runs_with_the_same_seed_write_identical_files(tmp_path):
    a = fit(_build(), planted_data(), SETTINGS, seed=3, out_dir=tmp_path / "a")
    b = fit(_build(), planted_data(), SETTINGS, seed=3, out_dir=tmp_path / "b")
    assert a.history == b.history
    for name in ("history.json", "embeddings.pt", "best.pt", "checkpoint.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    c = fit(_build(), planted_data(), SETTINGS, seed=4)
    assert c.history["curve"][0]["loss"] != a.history["curve"][0]["loss"]


def test_resume_after_interruption_gives_the_same_result(tmp_path):
    straight = fit(_build(), planted_data(), SETTINGS, seed=1, out_dir=tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit(_build(fail_at_epoch=4), planted_data(), SETTINGS, seed=1, out_dir=tmp_path / "resumed")
    ckpt = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert ckpt["run"]["epoch"] == 3
    resumed = fit(_build(), planted_data(), SETTINGS, seed=1, out_dir=tmp_path / "resumed", resume=True)
    assert resumed.history == straight.history
    assert torch.equal(resumed.user_emb, straight.user_emb) and torch.equal(resumed.item_emb, straight.item_emb)
    # every output file, the checkpoint included, has the bytes of the uninterrupted run (DVC hashes agree)
    for name in ("history.json", "embeddings.pt", "best.pt", "checkpoint.pt"):
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name
    # resuming a finished run trains nothing more and rewrites the same files
    again = fit(_build(), planted_data(), SETTINGS, seed=1, out_dir=tmp_path / "resumed", resume=True)
    assert again.history == straight.history
    assert (tmp_path / "straight" / "embeddings.pt").read_bytes() == (tmp_path / "resumed" / "embeddings.pt").read_bytes()


def test_resume_with_other_settings_is_refused(tmp_path):
    fit(_build("mf"), planted_data(), SETTINGS.model_copy(update={"max_validations": 1}), seed=1, out_dir=tmp_path)
    other = TrainSettings(**{**SETTINGS.__dict__, "lr": 0.02})
    with pytest.raises(UserError, match="checkpoint was written with other settings"):
        fit(_build("mf"), planted_data(), other, seed=1, out_dir=tmp_path, resume=True)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    # lr 1e-12 leaves the float32 weights unchanged: epoch 1 stays best, epochs 2-4 do not improve
    settings = TrainSettings(**{**SETTINGS.__dict__, "lr": 1e-12, "patience": 2, "max_validations": 50})
    res = fit(_build("mf"), planted_data(), settings, seed=1, out_dir=tmp_path)
    h = json.loads((tmp_path / "history.json").read_text())
    assert (h["best_epoch"], h["epochs"], h["stopped_early"]) == (1, 4, True)
    assert [row["epoch"] for row in h["curve"]] == [1, 2, 3, 4]
    assert h["valid"] == h["curve"][0]["valid"] == res.history["valid"]
    emb = torch.load(tmp_path / "embeddings.pt")
    assert emb["user"].shape == (120, 16) and emb["item"].shape == (80, 16) and emb["user"].dtype == torch.float32


def test_best_epoch_weights_are_exported(tmp_path):
    res = fit(_build(), planted_data(), SETTINGS, seed=1, out_dir=tmp_path)
    best = res.history["best_epoch"]
    scores = [row["valid"]["recall@20"] for row in res.history["curve"]]
    assert scores[best - 1] == max(scores) and scores.index(max(scores)) == best - 1
    # the exported embeddings reproduce the best epoch's validation metrics
    from pipeline.evaluation.ranking import EvalSets, evaluate

    emb = torch.load(tmp_path / "embeddings.pt")
    again = evaluate(emb["user"], emb["item"], EvalSets.from_data(planted_data()), split="valid", ks=SETTINGS.ks)
    assert again.mean == res.history["valid"]


def test_dvclive_logs_and_timing_and_a_rerun_into_the_same_log_dir(tmp_path):
    logs = tmp_path / "logs"
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_validations": 2})
    for _ in range(2):  # a second run into an existing log dir starts clean
        fit(_build("mf"), planted_data(), settings, seed=1, out_dir=tmp_path / "out", log_dir=logs)
    rows = (logs / "plots" / "metrics" / "valid" / "recall@20.tsv").read_text().strip().splitlines()
    assert rows[0].split("\t") == ["step", "recall@20"] and [r.split("\t")[0] for r in rows[1:]] == ["1", "2"]
    assert (logs / "plots" / "metrics" / "loss" / "bpr.tsv").exists()
    assert (logs / "plots" / "metrics" / "epoch_seconds.tsv").exists()
    timing = json.loads((logs / "timing.json").read_text())
    assert timing["epochs_run"] == 2 and timing["epoch_seconds"] > 0 and timing["peak_rss_mb"] > 0


@pytest.mark.parametrize(
    "field, value, message",
    [("valid_metric", "recal@20", "valid_metric"), ("batch_size", 0, "batch_size"), ("lr", -1.0, "lr")],
)
def test_bad_settings_are_user_errors(field, value, message):
    # the train settings are the params schema's train section: checked once, where params.yaml is read
    with pytest.raises(UserError, match=rf"^params.yaml: train\.{message}: "):
        validate_params({"train": {field: value}})
    with pytest.raises(ValidationError):
        TrainSettings(**{field: value})


def test_settings_are_the_train_section_and_the_protocol():
    s = TrainSettings.model_validate({**PARAMS.train.model_dump(), "protocol": PARAMS.evaluate.protocol})
    assert (s.lr, s.batch_size, s.emb_dim, s.patience, s.valid_metric, s.protocol) == (0.001, 2048, 64, 20, "recall@20", "mmrec")
    with pytest.raises(UserError, match="unknown key"):
        validate_params({"train": {"lr": 0.1, "lrr": 1}})
    assert TrainSettings(valid_metric="ndcg@5").ks == (5, 10, 20, 50)
    assert np.isclose(s.lr, 1e-3)


def test_validation_cadence_is_counted_in_optimiser_steps():
    from pipeline.training.stopping import steps_per_epoch, validation_interval

    # Baby: 128,634 training pairs / 2,048 = 63 steps: every epoch, as in the paper
    assert (steps_per_epoch(128_634, 2048), validation_interval(128_634, 2048, 50)) == (63, 1)
    # MovieLens: 79,790 pairs = 39 steps: every 2 epochs; Magazine: 1,430 pairs = 1 step: every 50 epochs
    assert validation_interval(79_790, 2048, 50) == 2 and validation_interval(1_430, 2048, 50) == 50
    assert validation_interval(10, 2048, 1) == 1


def test_patience_and_budget_count_validations(tmp_path):
    data = planted_data()
    steps = -(-len(data.train) // SETTINGS.batch_size)
    every = -(-3 * steps // steps)  # valid_every_steps = 3 epochs' worth of steps -> every 3 epochs
    settings = TrainSettings(**{**SETTINGS.__dict__, "valid_every_steps": 3 * steps, "lr": 1e-12, "patience": 1, "max_validations": 50})
    res = fit(_build("mf"), data, settings, seed=1, out_dir=tmp_path / "a")
    h = res.history
    # validations at epochs 3, 6, 9; the first is best, two more without improvement > patience 1
    assert [row["epoch"] for row in h["curve"]] == [3, 6, 9] and every == 3
    assert (h["best_epoch"], h["epochs"], h["validations"], h["valid_every"], h["stop_reason"]) == (3, 9, 3, 3, "early_stopping")
    budget = TrainSettings(**{**settings.__dict__, "patience": 20, "max_validations": 2})
    h = fit(_build("mf"), data, budget, seed=1, out_dir=tmp_path / "b").history
    assert (h["epochs"], h["validations"], h["stop_reason"], h["stopped_early"]) == (6, 2, "budget", False)
    # resumed with a larger budget, the run trains on from epoch 6
    more = TrainSettings(**{**budget.__dict__, "max_validations": 3})
    h = fit(_build("mf"), data, more, seed=1, out_dir=tmp_path / "b", resume=True).history
    assert (h["epochs"], h["validations"], h["stop_reason"]) == (9, 3, "budget")
