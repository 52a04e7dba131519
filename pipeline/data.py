"""What models are built from: interactions, item features, kNN lists and the signed graph's parts.

The data classes sit below both the models and the trainer (both import them; neither imports
the other for them). :func:`load_train_data` reads the stage outputs of one dataset (only those
asked for) into a :class:`TrainData`. Tests build :class:`TrainData` directly from arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.errors import UserError
from pipeline.schemas import read_table


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays of one split: user and item ids (int64) and ratings (float32)."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray

    @staticmethod
    def from_arrays(user, item, rating=None) -> "Interactions":
        user = np.asarray(user, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        rating = np.ones(len(user), np.float32) if rating is None else np.asarray(rating, dtype=np.float32)
        return Interactions(user, item, rating)

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True)
class SignedEdges:
    """Signed edges: a model's signed graph (observed and pseudo edges), or APFI's pseudo edges alone."""

    user: np.ndarray  # int64
    item: np.ndarray  # int64
    sign: np.ndarray  # int8, +1 / -1
    pseudo: np.ndarray  # bool, True for APFI pseudo edges
    weight: np.ndarray  # float32: rating (observed) or fused similarity (pseudo)


@dataclass(frozen=True)
class TrainData:
    n_users: int
    n_items: int
    train: Interactions
    valid: Interactions
    test: Interactions
    features: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> [n_items, d] float32
    knn: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)  # modality -> (item, neighbor, score)
    thresholds: np.ndarray | None = None  # PST's delta_u per user, float32 (NaN for users without training items)
    pseudo: SignedEdges | None = None  # APFI's pseudo edges (pseudo flag True)
    name: str = "dataset"

#: what a model may read beyond the interactions (Recommender.inputs); "delta" is the param pst.delta
INPUTS = ("features", "knn", "thresholds", "pseudo", "delta")


def _split(df: pl.DataFrame, split: str) -> Interactions:
    part = df.filter(pl.col("split") == split)
    return Interactions.from_arrays(part["user"].to_numpy(), part["item"].to_numpy(), part["rating"].to_numpy())


def load_train_data(
    root: str | Path,
    *,
    features: bool = False,
    knn: bool = False,
    thresholds: bool = False,
    pseudo: bool = False,
    name: str | None = None,
) -> TrainData:
    """Load ``data/<ds>`` (``root``) stage outputs: ingest always, the others when asked."""
    root = Path(root)
    inter = read_table(root / "ingest" / "interactions.parquet", "interactions")
    n_users = read_table(root / "ingest" / "users.parquet", "users").height
    n_items = read_table(root / "ingest" / "items.parquet", "items").height
    feats: dict[str, np.ndarray] = {}
    if features:
        vec_dir = root / "features" / "vectors"
        for path in sorted(vec_dir.glob("*.npy")):
            mat = np.load(path).astype(np.float32, copy=False)
            if mat.shape[0] != n_items:
                raise UserError(f"{path}: {mat.shape[0]} rows, expected one per item ({n_items})")
            feats[path.stem] = mat
        if not feats:
            raise UserError(f"{vec_dir}: no <modality>.npy feature files (run the features stage)")
    knn_lists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if knn:
        lists = root / "neighbors" / "lists"
        for path in sorted(lists.glob("knn_*.parquet")):
            df = read_table(path, "knn")
            knn_lists[path.stem.removeprefix("knn_")] = (
                df["item"].to_numpy().astype(np.int64),
                df["neighbor"].to_numpy().astype(np.int64),
                df["score"].to_numpy().astype(np.float32),
            )
        if not knn_lists:
            raise UserError(f"{lists}: no knn_<modality>.parquet files (run the neighbors stage)")
    delta = edges = None
    if thresholds:
        t = read_table(root / "graph" / "thresholds.parquet", "thresholds").sort("user")
        delta = np.full(n_users, np.nan, np.float32)
        delta[t["user"].to_numpy()] = t["delta"].to_numpy()
    if pseudo:
        e = read_table(root / "graph" / "pseudo_edges.parquet", "pseudo_edges")
        edges = SignedEdges(
            e["user"].to_numpy().astype(np.int64),
            e["item"].to_numpy().astype(np.int64),
            e["sign"].to_numpy().astype(np.int8),
            np.ones(e.height, bool),
            e["weight"].to_numpy().astype(np.float32),
        )
    return TrainData(
        n_users=n_users,
        n_items=n_items,
        train=_split(inter, "train"),
        valid=_split(inter, "valid"),
        test=_split(inter, "test"),
        features=feats,
        knn=knn_lists,
        thresholds=delta,
        pseudo=edges,
        name=name or root.name,
    )
