"""Loss terms shared by the models: BPR (eq. 1), L2 regularisation (squared, and MMRec's unsquared
EmbLoss), sign loss (eq. 4), InfoNCE (eq. 22)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-mean ln sigmoid(y_ui - y_uj) with y = inner product (eq. 1, averaged over the batch)."""
    return -F.logsigmoid((user * pos).sum(-1) - (user * neg).sum(-1)).mean()


def l2_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """Sum of squared L2 norms / 2, divided by the batch size (the first dimension)."""
    batch = max(tensors[0].shape[0], 1)
    return sum(t.pow(2).sum() for t in tensors) / (2.0 * batch)


def reg_norms(*tensors: torch.Tensor) -> torch.Tensor:
    """MMRec's EmbLoss (LGMRec, BM3): sum of (unsquared) Frobenius norms / the last tensor's rows (the batch size)."""
    return sum(t.norm(p=2) for t in tensors) / tensors[-1].shape[0]


def sign_loss(user: torch.Tensor, item: torch.Tensor, sign: torch.Tensor, gamma: float, psi: float) -> torch.Tensor:
    """Sign cosine loss over signed edges (eq. 4): 1 - cos on positive, gamma * max(0, cos - psi) on negative."""
    cos = F.cosine_similarity(user, item, dim=-1)
    pos_part = (1.0 - cos) * (sign > 0)
    neg_part = gamma * torch.clamp(cos - psi, min=0.0) * (sign < 0)
    return (pos_part + neg_part).mean() if len(cos) else cos.sum()


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE between matching rows of a and b, in-batch negatives (eq. 22), mean over rows."""
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    pos = (a * b).sum(-1) / tau
    logits = a @ b.T / tau
    return (torch.logsumexp(logits, dim=1) - pos).mean()
