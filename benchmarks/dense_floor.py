"""How far can a training epoch shrink without changing the model? The dense products a model cannot avoid.

Issue 18 asks for SiMGR's epoch <= 4x LightGCN's and LGMRec's <= 5x at Baby size on 2 CPU cores. Some of
their work does not depend on how the code is written but on what the model computes per batch:

* ``projection``: a trainable W [d_m x 64] applied to a fixed 4,096-d image feature matrix of every item
  (SiMGR's modality branch, eq. 3's W_m; LGMRec's and FREEDOM-style projections): each batch needs
  X W for the rows it uses (every item, or the batch's ~7,000 distinct nodes of the propagated
  features, the same order) and W's gradient X^T G: two [7,050 x 4,096] x [4,096 x 64] products;
* ``hyperedge_nce``: LGMRec's cross-modal InfoNCE, whose negatives are *all* users (19,445) for the
  batch's 2,048 users and all items (7,050) for its positive items: logits, logsumexp and their backward;
* ``trainable_projection``: MGCN with MMRec's ``train_features: true`` (the raw features are parameters):
  X W for every item and both modalities, W's gradient X^T G, X's gradient G W^T, and Adam's step over
  X itself (7,050 x 4,480 floats) every batch;
* ``feature_adam``: BM3 with ``train_features: true``: its projections read only the batch's items,
  but Adam's step still runs over every feature (7,050 x 4,480 floats) every batch;
* ``propagation``: SiReN's positive LightGCN in its authors' configuration (4 layers, batches of 1,024,
  edges with rating > 3.5), forward and backward over the whole graph, with the same kernel
  (``pipeline.graph.adjacency.propagate``) that LightGCN's epoch uses: not a dense product, but work
  whose amount the configuration fixes (twice LightGCN's batches, twice its layers); a faster kernel
  would speed LightGCN as much.

This script times one epoch of LightGCN and of each model with a target (the trainer's own ``train_epoch``,
default hyper-parameters, random Baby-shaped data: 19,445 users, 7,050 items, 128,634 training pairs, image 4,096-d
and text 384-d features) and, beside them, those products alone for an epoch's batches, in one process
with ``--threads`` threads. The floor is the products' time; "floor / LightGCN" is the ratio no
rewrite of the same model can go below on this machine. Writes ``--out`` (markdown) and JSON next to it.

    python benchmarks/dense_floor.py --out benchmarks/results/dense-floor-cpu-2core.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from pipeline.data import Interactions, SignedEdges, TrainData  # noqa: E402
from pipeline.graph.adjacency import normalized_adjacency, propagate  # noqa: E402
from pipeline.models.registry import model_class  # noqa: E402
from pipeline.training.sampler import NegativeSampler  # noqa: E402
from pipeline.training.trainer import seed_everything, train_epoch  # noqa: E402

BABY = {"users": 19_445, "items": 7_050, "train": 128_634, "image": 4_096, "text": 384}
EMB, BATCH = 64, 2048
#: epoch <= ratio x LightGCN's epoch at Baby size on 2 cores: issue 18 (SiMGR, SiReN, LGMRec) and
#: issue 21 (the bar for the models it added: MGCN, BM3, LSGRec)
TARGETS = {"simgr": 4.0, "siren": 3.0, "lgmrec": 5.0, "mgcn": 5.0, "bm3": 5.0, "lsgrec": 5.0}
MODELS = ("lightgcn", *TARGETS)


def baby_data(scale: float, seed: int = 0) -> TrainData:
    """Random Baby-shaped data: distinct (user, item) pairs, ratings 1-5, both modalities, PST-like thresholds."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(2, int(BABY["users"] * scale)), max(2, int(BABY["items"] * scale))
    n_train = min(int(BABY["train"] * scale), n_users * n_items // 2)
    key = np.unique(rng.integers(0, n_users * n_items, size=int(n_train * 1.2)))[:n_train]
    rng.shuffle(key)
    user, item = key // n_items, key % n_items
    rating = rng.integers(1, 6, len(key)).astype(np.float32)
    train = Interactions.from_arrays(user, item, rating)
    held = Interactions.from_arrays(np.arange(n_users) % n_users, rng.integers(0, n_items, n_users))
    features = {"image": np.abs(rng.normal(size=(n_items, BABY["image"]))).astype(np.float32),
                "text": rng.normal(size=(n_items, BABY["text"])).astype(np.float32)}
    mean = np.bincount(user, weights=rating, minlength=n_users) / np.maximum(np.bincount(user, minlength=n_users), 1)
    none = np.zeros(0, np.int64)
    pseudo = SignedEdges(none, none, np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0, np.float32))
    return TrainData(n_users, n_items, train, held, held, features=features, thresholds=mean.astype(np.float32),
                     delta=3.0, pseudo=pseudo, knn={m: random_knn(n_items, 10, rng) for m in features}, name="baby-shaped")


def random_knn(n_items: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k distinct random neighbours per item (never itself) with descending scores in (0, 1): the shape of
    the neighbors stage's lists (MGCN's item graphs), whose cost does not depend on which items they name."""
    item = np.repeat(np.arange(n_items), k)
    neighbor = (item + 1 + np.concatenate([rng.choice(n_items - 1, k, replace=False) for _ in range(n_items)])) % n_items
    score = np.sort(rng.uniform(0.1, 1.0, (n_items, k)), axis=1)[:, ::-1].ravel().astype(np.float32)
    return item.astype(np.int64), neighbor.astype(np.int64), score


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def batch_size(name: str) -> int:
    """The training batch params.yaml gives ``name`` (``models.<name>.train.batch_size``, e.g. SiReN's authors'
    1,024), else the shared one of this script; the model keys themselves stay at their class defaults."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return int(((params["models"].get(name) or {}).get("train") or {}).get("batch_size", BATCH))


def epoch_seconds(name: str, data: TrainData, epochs: int) -> list[float]:
    """Seconds of each of ``epochs`` training epochs of model ``name`` at its default hyper-parameters."""
    cls = model_class(name)
    seed_everything(1)
    model = cls(data, cls.Params(), EMB, torch.device("cpu"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(1)
    sampler = NegativeSampler(data.n_users, data.n_items, data.train.user, data.train.item, "cpu")
    users, items = torch.from_numpy(data.train.user), torch.from_numpy(data.train.item)
    batch = batch_size(name)
    return [timed(lambda: train_epoch(model, opt, sampler, users, items, batch, e, gen)) for e in range(1, epochs + 1)]


def projection_seconds(data: TrainData, batches: int) -> float:
    """An epoch of X W and X^T G for the fixed image features X [items x 4096] (contiguous X^T, as the model keeps)."""
    x = torch.from_numpy(data.features["image"])
    x_t = x.T.contiguous()
    w = torch.randn(x.shape[1], EMB)

    def batch() -> None:
        out = x @ w
        _ = x_t @ out  # W's gradient has this shape and cost (G = dL/d(XW) is [items x 64])

    batch()  # warm-up
    return timed(lambda: [batch() for _ in range(batches)])


def nce_seconds(data: TrainData, batches: int, tau: float = 0.2) -> float:
    """An epoch of LGMRec's two InfoNCE terms with all users / all items as negatives, forward and backward."""
    gen = torch.Generator().manual_seed(0)
    cand_u = torch.randn(data.n_users, EMB, generator=gen, requires_grad=True)
    cand_i = torch.randn(data.n_items, EMB, generator=gen, requires_grad=True)
    anchor = torch.randn(min(BATCH, data.n_users), EMB, generator=gen, requires_grad=True)

    def batch() -> None:
        # cosines, as the model's (raw dot products of random rows would put exp() in the denormal range)
        a = torch.nn.functional.normalize(anchor, dim=-1)
        u, i = torch.nn.functional.normalize(cand_u, dim=-1), torch.nn.functional.normalize(cand_i, dim=-1)
        loss = torch.logsumexp(a @ u.T / tau, dim=1).sum() + torch.logsumexp(a @ i.T / tau, dim=1).sum()
        loss.backward()

    batch()
    return timed(lambda: [batch() for _ in range(batches)])


def trainable_projection_seconds(data: TrainData, batches: int) -> float:
    """An epoch of MGCN's products with trainable features: X W, X^T G, G W^T per modality and Adam over X."""
    feats = {m: torch.nn.Parameter(torch.from_numpy(f.copy())) for m, f in sorted(data.features.items())}
    ws = {m: torch.randn(f.shape[1], EMB) for m, f in feats.items()}
    opt = torch.optim.Adam(list(feats.values()), lr=1e-3, fused=True)
    grad_out = {m: torch.randn(f.shape[0], EMB) for m, f in feats.items()}  # G = dL/d(XW), [items x 64]

    def batch() -> None:
        for m, x in feats.items():
            _ = x.detach() @ ws[m]
            _ = x.detach().T @ grad_out[m]           # W's gradient
            x.grad = grad_out[m] @ ws[m].T           # X's gradient
        opt.step()

    batch()
    return timed(lambda: [batch() for _ in range(batches)])


def feature_adam_seconds(data: TrainData, batches: int) -> float:
    """An epoch of Adam steps over every raw feature (BM3 with trainable features; only the batch's rows
    have a non-zero gradient, but Adam's moments decay and the step moves every entry)."""
    feats = [torch.nn.Parameter(torch.from_numpy(f.copy())) for _, f in sorted(data.features.items())]
    for f in feats:
        f.grad = torch.zeros_like(f)
    opt = torch.optim.Adam(feats, lr=1e-3, fused=True)
    opt.step()
    return timed(lambda: [opt.step() for _ in range(batches)])


def siren_propagation_seconds(data: TrainData) -> float:
    """An epoch of SiReN's positive LightGCN in the configuration its epoch above runs (its authors'): ``n_layers``
    propagations of the whole table over the edges with rating > ``offset``, forward and backward, once per batch."""
    hp, tr = model_class("siren").Params(), data.train
    keep = tr.rating > hp.offset
    adj = normalized_adjacency(data.n_users, data.n_items, tr.user[keep], tr.item[keep], "cpu")
    table = torch.nn.Parameter(torch.randn(data.n_users + data.n_items, EMB))

    def one() -> None:
        propagate(adj, table, hp.n_layers, symmetric=True).sum().backward()

    one()
    return timed(lambda: [one() for _ in range(math.ceil(len(tr) / batch_size("siren")))])


def reachable(floor_ratio: float, target: float) -> str:
    """'no' when the floor alone exceeds the target, else 'not ruled out' (a floor below it proves nothing more)."""
    return "no" if floor_ratio > target else "not ruled out"


def markdown(result: dict[str, Any]) -> str:
    m, env = result["measured"], result["environment"]
    lg = m["lightgcn"]["epoch"]
    lines = [f"# Dense floor of a training epoch at Baby size: {result['label']}", "",
             f"`python benchmarks/dense_floor.py {' '.join(result['argv'])}`; {env['when']}; {env['cpu']}; {env['cpus']} CPUs, "
             f"torch {env['torch']}, {env['threads']} threads. Random Baby-shaped data ({result['shape']}), batch {BATCH}, "
             f"{result['batches']} batches per epoch; epoch = fastest of {result['epochs']} (the trainer's `train_epoch`).", "",
             "| model | epoch (s) | vs LightGCN | target | unavoidable products per epoch (s) | floor vs LightGCN | target reachable here |",
             "|---|---:|---:|---:|---|---:|---|"]
    for name in MODELS:
        e = m[name]["epoch"]
        floor = m[name].get("floor", {})
        total = sum(floor.values())
        parts = " + ".join(f"{k} {v:.2f}" for k, v in floor.items()) or "-"
        target = TARGETS.get(name)
        lines.append(f"| {name} | {e:.2f} | {e / lg:.1f}x | {f'<= {target:.0f}x' if target else '-'} | {parts} | "
                     f"{f'{total / lg:.1f}x' if floor else '-'} | {reachable(total / lg, target) if floor else ('not ruled out (no floor measured)' if target else '-')} |")
    lines += ["", "The floor counts only the products named in the module docstring (for SiReN its positive branch's "
              "propagations, with LightGCN's own kernel), not the rest of the model or Python; a model cannot be faster "
              "than its floor on this machine without computing something else (fewer feature columns, a lower "
              "precision, frozen features, fewer layers or larger batches than its authors', a GPU)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of Baby's users, items and pairs")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--label", default="cpu-2core")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dense-floor-cpu-2core.md"))
    args = ap.parse_args()
    os.environ.setdefault("SIMGR_PROGRESS", "0")
    torch.set_num_threads(args.threads)
    data = baby_data(args.scale)
    batches = math.ceil(len(data.train) / BATCH)
    measured: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        secs = epoch_seconds(name, data, args.epochs)
        measured[name] = {"epochs": [round(s, 3) for s in secs], "epoch": min(secs)}
        print(f"{name}: epochs {measured[name]['epochs']} s", flush=True)
    proj = projection_seconds(data, batches)
    nce = nce_seconds(data, batches)
    trainable = trainable_projection_seconds(data, batches)
    adam = feature_adam_seconds(data, batches)
    siren = siren_propagation_seconds(data)
    measured["simgr"]["floor"] = {"projection": proj}
    measured["lgmrec"]["floor"] = {"projection": proj, "hyperedge_nce": nce}
    measured["mgcn"]["floor"] = {"trainable_projection": trainable}
    measured["bm3"]["floor"] = {"feature_adam": adam}
    measured["siren"]["floor"] = {"propagation": siren}
    print(f"per epoch: projection {proj:.2f} s, hyperedge_nce {nce:.2f} s, trainable_projection {trainable:.2f} s, "
          f"feature_adam {adam:.2f} s, siren propagation {siren:.2f} s", flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    result = {"label": args.label, "argv": sys.argv[1:], "batches": batches, "epochs": args.epochs,
              "shape": f"{data.n_users} users, {data.n_items} items, {len(data.train)} pairs, image {BABY['image']}-d, text {BABY['text']}-d",
              "environment": {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu, "cpus": os.cpu_count(),
                              "torch": torch.__version__, "threads": args.threads, "load_average": os.getloadavg()},
              "measured": measured}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.write_text(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
