"""MF-BPR: the shared behavioural tests plus its loss on a hand case."""

import math

import torch

from model_mixin import RecommenderTestMixin


class TestMF(RecommenderTestMixin):
    model_name = "mf"


def test_mf_loss_hand_case():
    from pipeline.models.mf import MF
    from planted import planted_data

    model = MF(planted_data(), MF.Params(reg=0.5), emb_dim=2, device="cpu")
    with torch.no_grad():
        model.user_emb.weight[0] = torch.tensor([1.0, 0.0])
        model.item_emb.weight[1] = torch.tensor([2.0, 1.0])
        model.item_emb.weight[2] = torch.tensor([0.0, 3.0])
    parts = model.loss(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    # y_ui = 2, y_uj = 0: -ln sigmoid(2); reg = 0.5 * (1 + 5 + 9) / 2
    assert math.isclose(parts["bpr"].item(), -math.log(1 / (1 + math.exp(-2))), rel_tol=1e-6)
    assert math.isclose(parts["reg"].item(), 0.5 * 15 / 2, rel_tol=1e-6)
