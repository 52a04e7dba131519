"""docs/adding-a-model.md, followed by a test: a new model is one module in pipeline/models/ (its class,
its hyper-parameter schema and what it reads, together), one params.yaml entry, a run list and a
search space; `simgr check` accepts it, its training group needs no new dvc.yaml stage, and it
trains through the behavioural mixin like every shipped model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import pipeline.models
from model_mixin import PARAMS, RecommenderTestMixin
from pipeline.check import check_models
from pipeline.models.registry import model_classes
from pipeline.run.dvcyaml import generated
from pipeline.run.groups import group_of
from pipeline.run.models import model_entry
from pipeline.settings.sections import Params

ROOT = Path(__file__).resolve().parents[1]

TOY = '''
"""ItemPop-MF: matrix factorisation plus a learned item bias (a toy model for the test of docs/adding-a-model.md)."""

import torch
from torch import nn

from pipeline.data import TrainData
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, l2_reg
from pipeline.settings.types import NonNegativeFloat


class ItemPopMF(Recommender):
    name = "itempop_mf"

    class Params(ModelParams):
        reg: NonNegativeFloat = 1e-4

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.user_emb = xavier_embedding(self.n_users, emb_dim - 1)
        self.item_emb = xavier_embedding(self.n_items, emb_dim - 1)
        self.bias = nn.Parameter(torch.zeros(self.n_items, 1))

    def embeddings(self):
        ones = torch.ones(self.n_users, 1, device=self.bias.device)
        return torch.cat([self.user_emb.weight, ones], 1), torch.cat([self.item_emb.weight, self.bias], 1)

    def loss(self, users, pos, neg):
        u_all, i_all = self.embeddings()
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        return {"bpr": bpr_loss(u, p, n), "reg": self.hp.reg * l2_reg(self.user_emb(users), self.item_emb(pos), self.item_emb(neg))}
'''


@pytest.fixture
def toy_params(tmp_path, monkeypatch):
    """Step 1: the module (here in a folder added to the package's path); steps 2-3: the params entries."""
    folder = tmp_path / "models_ext"
    folder.mkdir()
    (folder / "itempop_mf.py").write_text(textwrap.dedent(TOY))
    monkeypatch.setattr(pipeline.models, "__path__", [*pipeline.models.__path__, str(folder)])
    model_classes.cache_clear()
    raw = PARAMS.model_dump(exclude_none=True, warnings=False)
    raw["models"]["itempop_mf"] = {"reg": "auto", "train": {"lr": "auto"}}
    raw["run"]["models_cf"] = [*raw["run"]["models_cf"], "itempop_mf"]
    raw["tune"]["spaces"]["itempop_mf"] = {"train": {"lr": [0.001, 0.005]}, "model": {"reg": [1e-5, 1e-4]}}
    yield Params.model_validate(raw)
    model_classes.cache_clear()


def test_a_new_model_is_one_module_one_entry_and_trains_through_the_mixin(toy_params):
    assert "itempop_mf" in model_classes()  # found by its name: no list of models to edit
    check_models(toy_params)  # simgr check: its entry, its group, its search space, its auto values
    entry = model_entry(toy_params, "itempop_mf")
    assert entry.reads() == frozenset() and group_of(entry.reads(), None).name == "cf"
    assert generated() in (ROOT / "dvc.yaml").read_text()  # its group has its stages: dvc.yaml is not edited

    class TestItemPopMF(RecommenderTestMixin):
        model_name = "itempop_mf"
        params = toy_params

    tests = [name for name in dir(TestItemPopMF) if name.startswith("test_")]
    assert len(tests) == 5
    for name in tests:
        getattr(TestItemPopMF(), name)("cpu")


def test_a_model_in_the_wrong_group_is_named_with_the_right_one(toy_params):
    from pipeline.errors import UserError

    moved = toy_params.model_copy(update={"run": toy_params.run.model_copy(update={
        "models_cf": [m for m in toy_params.run.models_cf if m != "itempop_mf"], "models_mm": [*toy_params.run.models_mm, "itempop_mf"]})})
    with pytest.raises(UserError, match=r"run.models_mm: 'itempop_mf' reads interactions only: it belongs in run.models_cf"):
        check_models(moved)
