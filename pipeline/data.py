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
    delta: float | None = None  # the global sign threshold (params pst.delta) of SGA without PST
    pseudo: SignedEdges | None = None  # APFI's pseudo edges (pseudo flag True)
    name: str = "dataset"


#: what a model may read beyond the interactions (Recommender.READS / reads): item feature matrices,
#: item kNN lists, PST's thresholds, the global threshold pst.delta, APFI's pseudo edges
INPUTS = ("features", "knn", "thresholds", "delta", "pseudo")


def _split(df: pl.DataFrame, split: str) -> Interactions:
    part = df.filter(pl.col("split") == split)
    return Interactions.from_arrays(part["user"].to_numpy(), part["item"].to_numpy(), part["rating"].to_numpy())


def load_vectors(vec_dir: str | Path, n_items: int | None = None) -> dict[str, np.ndarray]:
    """modality -> float32 [n_items, d] matrix, from every ``<modality>.npy`` of the features stage's
    ``vectors`` folder (none: a dataset without item features, whose features stage left it empty)."""
    vec_dir = Path(vec_dir)
    if not vec_dir.is_dir():
        raise UserError(f"{vec_dir}: folder not found (run the features stage first)")
    out: dict[str, np.ndarray] = {}
    for path in sorted(vec_dir.glob("*.npy")):
        try:
            mat = np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        except Exception as exc:
            raise UserError(f"{path}: not a readable .npy matrix ({exc.__class__.__name__}: {exc})") from None
        if mat.ndim != 2 or (n_items is not None and mat.shape[0] != n_items):
            raise UserError(f"{path}: shape {mat.shape}, expected one row per item ({n_items} x d)")
        out[path.stem] = mat
    return out


def load_train_data(root: str | Path, reads: frozenset[str] = frozenset(), *, delta: float | None = None,
                    name: str | None = None) -> TrainData:
    """The ``data/<ds>`` (``root``) stage outputs a model reads: the ingest outputs always, and the
    inputs of ``reads`` (:data:`INPUTS`; ``delta`` is passed in: it is a param, not a file)."""
    unknown = sorted(set(reads) - set(INPUTS))
    if unknown:
        raise ValueError(f"unknown inputs {unknown} (known: {list(INPUTS)})")
    if "delta" in reads and delta is None:
        raise ValueError("a model reading 'delta' needs the global threshold (params pst.delta)")
    root = Path(root)
    inter = read_table(root / "ingest" / "interactions.parquet", "interactions")
    n_users = read_table(root / "ingest" / "users.parquet", "users").height
    n_items = read_table(root / "ingest" / "items.parquet", "items").height
    feats: dict[str, np.ndarray] = {}
    if "features" in reads:
        vec_dir = root / "features" / "vectors"
        feats = load_vectors(vec_dir, n_items)
        if not feats:
            raise UserError(f"{vec_dir}: no <modality>.npy feature files (run the features stage)")
    knn_lists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if "knn" in reads:
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
    thresholds = pseudo = None
    if "thresholds" in reads:
        thresholds = thresholds_array(read_table(root / "graph" / "thresholds.parquet", "thresholds"), n_users)
    if "pseudo" in reads:
        pseudo = pseudo_edges(read_table(root / "graph" / "pseudo_edges.parquet", "pseudo_edges"))
    return TrainData(
        n_users=n_users,
        n_items=n_items,
        train=_split(inter, "train"),
        valid=_split(inter, "valid"),
        test=_split(inter, "test"),
        features=feats,
        knn=knn_lists,
        thresholds=thresholds,
        delta=float(delta) if "delta" in reads else None,
        pseudo=pseudo,
        name=name or root.name,
    )


def pseudo_edges(frame: pl.DataFrame) -> SignedEdges:
    """APFI's pseudo edges of a ``pseudo_edges`` table (schema ``pseudo_edges``) as :class:`SignedEdges`."""
    return SignedEdges(
        frame["user"].to_numpy().astype(np.int64),
        frame["item"].to_numpy().astype(np.int64),
        frame["sign"].to_numpy().astype(np.int8),
        np.ones(frame.height, bool),
        frame["weight"].to_numpy().astype(np.float32),
    )


def thresholds_array(frame: pl.DataFrame, n_users: int) -> np.ndarray:
    """PST's delta_u per user (float32, NaN for users without training items) of a ``thresholds`` table."""
    out = np.full(n_users, np.nan, np.float32)
    out[frame["user"].to_numpy()] = frame["delta"].to_numpy()
    return out
