"""Synthetic raw files in the Amazon 2014 format, with the shape of the real ones.

:func:`write_synthetic` writes ``reviews_<Cat>_5.json.gz`` (JSON lines), ``meta_<Cat>.json.gz``
(one Python-literal dict per line, single quotes, as the real 2014 files) and
``image_features_<Cat>.b`` (10-byte ASIN + float32 vector records).

How the data is shaped, so that every stage of the pipeline has something to find:

* **Degrees**: user and item degrees are ``min_degree`` (5 when the sizes allow it) plus a
  multinomial share of the remaining interactions with Pareto weights, so both are long-tailed
  (a few heavy users and popular items, a median near the minimum) and a 5-core keeps everything.
  Pairs are matched configuration-model style (each user slot meets one item stub), so both
  degree sequences and the total are met exactly; repeated (user, item) pairs are swapped away.
* **Clusters**: every item belongs to one of ``n_clusters`` clusters. Image vectors are a
  non-negative sparse cluster centroid plus noise (ReLU, like CNN features); titles, brands,
  categories and descriptions come from cluster-specific vocabularies, so the text encoder sees
  the clusters too. Every user prefers one cluster (40 % of users a second one) and spends most
  of their interactions there.
* **Ratings**: a latent score = user bias (generous vs strict raters) + item quality + a bonus
  for in-cluster items (a penalty outside) + noise, cut at quantiles so the marginal distribution
  is Amazon's (about 56 % 5-star, 21 % 4, 11 % 3, 6 % 2, 6 % 1). Per-user rating means differ,
  so a personalised sign threshold (PST) has something to correct.

Everything is drawn from ``numpy.random.default_rng(seed)`` and gzip is written with
``mtime=0`` and no file name, so the same arguments give the same bytes.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.ingest.image_features import write_image_features
from pipeline.log import get_logger

log = get_logger(__name__)

#: cumulative share of ratings 1, 2, 3, 4 (the rest are 5): Amazon 2014 Baby 5-core, rounded
RATING_CDF = (0.06, 0.12, 0.23, 0.44)
MIN_DEGREE = 5
USER_ALPHA = 2.0  # Pareto shape of user activity weights (larger = lighter tail)
ITEM_ALPHA = 1.6  # Pareto shape of item popularity weights
SECOND_CLUSTER_RATE = 0.4  # share of users with a second preferred cluster
START_TIME = 1_199_145_600  # 2008-01-01
END_TIME = 1_406_073_600  # 2014-07-23, the end of the 2014 crawl

# Cluster themes: (category path name, nouns, adjectives). Cluster c uses theme c % len(THEMES);
# clusters beyond the themes also get their own brand and model words, so they stay distinct.
THEMES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Feeding", ("bottle", "nipple", "bib", "spoon", "formula", "sippy", "cup", "bowl", "warmer", "sterilizer", "pump", "teether"), ("bpa-free", "spill-proof", "anti-colic", "dishwasher-safe")),
    ("Strollers", ("stroller", "canopy", "wheel", "buggy", "pram", "jogger", "basket", "harness", "frame", "footmuff", "umbrella", "travel-system"), ("lightweight", "foldable", "all-terrain", "compact")),
    ("Car Seats", ("car-seat", "base", "booster", "buckle", "headrest", "latch", "cushion", "carrier", "seatbelt", "mirror", "sunshade", "insert"), ("crash-tested", "rear-facing", "convertible", "padded")),
    ("Toys", ("rattle", "puzzle", "blocks", "plush", "mobile", "activity-gym", "stacker", "xylophone", "ball", "shape-sorter", "doll", "crinkle-book"), ("colorful", "musical", "sensory", "educational")),
    ("Bathing", ("bathtub", "shampoo", "washcloth", "towel", "sponge", "lotion", "thermometer", "bath-seat", "hooded-towel", "body-wash", "rinser", "bath-toy"), ("tear-free", "gentle", "hypoallergenic", "soft")),
    ("Nursery", ("crib", "mattress", "sheet", "bassinet", "dresser", "glider", "night-light", "bumper", "changing-pad", "wardrobe", "bookshelf", "rocker"), ("organic", "breathable", "sturdy", "waterproof")),
    ("Diapering", ("diaper", "wipes", "pail", "liner", "cream", "changing-mat", "cloth-diaper", "insert-pad", "wet-bag", "caddy", "powder", "refill"), ("leak-proof", "absorbent", "fragrance-free", "reusable")),
    ("Safety", ("gate", "monitor", "outlet-cover", "corner-guard", "lock", "latch-strap", "camera", "alarm", "door-stopper", "anchor", "edge-guard", "sensor"), ("secure", "wireless", "childproof", "adjustable")),
    ("Clothing", ("onesie", "romper", "sock", "hat", "mittens", "sleeper", "bodysuit", "cardigan", "booties", "leggings", "swaddle-suit", "bib-set"), ("cotton", "cozy", "stretchy", "snug")),
    ("Sleep", ("swaddle", "sleep-sack", "white-noise", "pacifier", "blanket", "lullaby", "sound-machine", "pillow", "sleep-bag", "nightlight", "soother", "wrap"), ("calming", "quiet", "warm", "silky")),
    ("Carriers", ("sling", "wrap-carrier", "backpack", "hip-seat", "strap", "buckle-pad", "ring-sling", "mei-tai", "hood", "waist-belt", "drool-pad", "carrier-cover"), ("ergonomic", "hands-free", "supportive", "breezy")),
    ("Health", ("thermometer", "aspirator", "nail-clipper", "medicine-dropper", "humidifier", "gum-massager", "brush", "comb", "vitamin", "scale", "saline", "first-aid-kit"), ("digital", "accurate", "clinical", "precise")),
    ("Activity", ("bouncer", "walker", "jumper", "swing", "playmat", "high-chair", "play-yard", "exersaucer", "tunnel", "tent", "ride-on", "rocker-seat"), ("entertaining", "portable", "vibrating", "spacious")),
    ("Gear", ("diaper-bag", "organizer", "cooler", "changing-station", "hook", "cup-holder", "seat-cover", "blanket-clip", "stroller-fan", "bag-strap", "tote", "pouch"), ("roomy", "stylish", "water-resistant", "durable")),
    ("Keepsakes", ("photo-album", "frame", "handprint-kit", "memory-book", "ornament", "milestone-card", "journal", "box", "casting-kit", "blanket-tag", "keepsake-tin", "growth-chart"), ("memorable", "personalized", "classic", "charming")),
    ("Potty", ("potty-seat", "step-stool", "training-pants", "urinal", "seat-reducer", "splash-guard", "potty-chair", "reward-chart", "liner-bag", "travel-potty", "flushable-wipe", "handle"), ("easy-clean", "non-slip", "kid-sized", "cheerful")),
)
SENTIMENT = {
    1: ("broke", "useless", "returned", "disappointed", "cheap", "waste"),
    2: ("flimsy", "meh", "poor", "unhappy", "awkward", "leaky"),
    3: ("okay", "average", "decent", "fine", "mixed", "acceptable"),
    4: ("good", "nice", "handy", "solid", "pleased", "recommend"),
    5: ("love", "perfect", "excellent", "amazing", "favorite", "wonderful"),
}
FILLER = ("this", "the", "it", "my", "baby", "we", "for", "with", "and", "very", "is", "so", "our", "son", "daughter", "works")
_SYLLABLES = ("ka", "lo", "mi", "ber", "zu", "ton", "ri", "va", "sen", "pa", "dor", "qui", "nel", "fa", "gro", "shi")


def _check_sizes(n_users: int, n_items: int, n_interactions: int, n_clusters: int, image_dim: int) -> int:
    """Validate the sizes; return the minimum degree every user and item can get."""
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_interactions", n_interactions),
                        ("n_clusters", n_clusters), ("image_dim", image_dim)):
        if int(value) != value or value < 1:
            raise UserError(f"synth: {name} must be a positive integer, got {value!r}")
    if n_clusters > n_items:
        raise UserError(f"synth: n_clusters ({n_clusters}) must not exceed n_items ({n_items})")
    if n_interactions < max(n_users, n_items):
        raise UserError(
            f"synth: n_interactions ({n_interactions}) must be at least max(n_users, n_items) "
            f"({max(n_users, n_items)}) so every user and item has an interaction"
        )
    if n_interactions > n_users * n_items // 2:
        raise UserError(
            f"synth: n_interactions ({n_interactions}) must be at most half of n_users * n_items "
            f"({n_users * n_items // 2}); a denser matrix is not Amazon-shaped"
        )
    return min(MIN_DEGREE, n_interactions // n_users, n_interactions // n_items)


def long_tail_degrees(
    n: int, total: int, min_deg: int, max_deg: int, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """``n`` degrees in [min_deg, max_deg] summing to ``total``: min_deg + multinomial(Pareto weights)."""
    if not n * min_deg <= total <= n * max_deg:
        raise ValueError(f"cannot give {n} nodes degrees in [{min_deg}, {max_deg}] summing to {total}")
    weights = rng.pareto(alpha, n) + 1.0
    deg = np.full(n, min_deg, np.int64) + rng.multinomial(total - n * min_deg, weights / weights.sum())
    while (over := deg > max_deg).any():  # clip and hand the excess to the others, same weights
        excess = int((deg[over] - max_deg).sum())
        deg[over] = max_deg
        free = np.where(deg < max_deg, weights, 0.0)
        deg += rng.multinomial(excess, free / free.sum())
    return deg


def _max_degree(n: int, n_other: int, n_interactions: int) -> int:
    """Degree cap: a few percent of the other side (Baby: items <= 972 users, users <= 352 items),
    at least 4x the mean degree, at most half the other side (so repeated pairs can be swapped away)."""
    mean = -(-n_interactions // n)
    return max(mean, min(n_other // 2, max(n_other // 20, 4 * mean)))


def _pseudo_word(rng: np.random.Generator, n_syllables: int = 3) -> str:
    return "".join(_SYLLABLES[k] for k in rng.integers(0, len(_SYLLABLES), n_syllables))


def _assign_clusters(
    slot_user: np.ndarray, item_cluster: np.ndarray, stubs_per_item: np.ndarray, n_users: int,
    n_clusters: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster of each user slot so that every cluster gets exactly as many slots as item stubs.

    Returns (slot cluster, primary cluster per user, secondary cluster per user or -1).
    """
    supply = np.bincount(item_cluster, weights=stubs_per_item, minlength=n_clusters).astype(np.int64)
    primary = rng.choice(n_clusters, n_users, p=supply / supply.sum())
    secondary = np.where(rng.random(n_users) < SECOND_CLUSTER_RATE, rng.choice(n_clusters, n_users, p=supply / supply.sum()), -1)
    secondary = np.where(secondary == primary, -1, secondary)
    loyalty = rng.beta(6.0, 2.0, n_users)  # share of a user's slots in their preferred clusters (mean 0.75)
    n_slots = len(slot_user)
    preferred = rng.random(n_slots) < loyalty[slot_user]
    use_second = (secondary[slot_user] >= 0) & (rng.random(n_slots) < 0.4)
    slot_cluster = np.where(preferred, np.where(use_second, secondary[slot_user], primary[slot_user]), -1)
    demand = np.bincount(slot_cluster[preferred], minlength=n_clusters)
    for c in np.flatnonzero(demand > supply):  # oversubscribed cluster: free a random subset
        members = np.flatnonzero(slot_cluster == c)
        slot_cluster[rng.choice(members, demand[c] - supply[c], replace=False)] = -1
        demand[c] = supply[c]
    free = np.flatnonzero(slot_cluster < 0)
    slot_cluster[free] = rng.permutation(np.repeat(np.arange(n_clusters), supply - demand))
    return slot_cluster, primary, secondary


def _match(
    slot_user: np.ndarray, slot_cluster: np.ndarray, item_cluster: np.ndarray, item_deg: np.ndarray,
    n_items: int, rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Item of each slot: random matching of slots and item stubs within each cluster, then
    degree-preserving swaps until no (user, item) pair repeats. Returns (slot item, swaps made)."""
    n = len(slot_user)
    slot_order = np.lexsort((rng.random(n), slot_cluster))
    stub_item = np.repeat(np.arange(n_items), item_deg)
    stub_order = np.lexsort((rng.random(n), item_cluster[stub_item]))
    slot_item = np.empty(n, np.int64)
    slot_item[slot_order] = stub_item[stub_order]

    key = slot_user * n_items + slot_item
    _, first = np.unique(key, return_index=True)
    dup = np.setdiff1d(np.arange(n), first)
    if len(dup) == 0:
        return slot_item, 0
    seen = set(key[first].tolist())
    pending = np.zeros(n, bool)  # repeated slots not fixed yet: their key belongs to another slot
    pending[dup] = True
    # candidates for swapping: slots of the same cluster first (keeps the cluster structure)
    cluster_start = np.searchsorted(slot_cluster[slot_order], np.arange(int(item_cluster.max()) + 2))
    swaps = 0
    for s in rng.permutation(dup).tolist():
        u, i = int(slot_user[s]), int(slot_item[s])
        c = int(slot_cluster[s])
        lo, hi = int(cluster_start[c]), int(cluster_start[c + 1])
        for attempt in range(200):
            t = int(slot_order[rng.integers(lo, hi)]) if attempt < 50 else int(rng.integers(0, n))
            v, j = int(slot_user[t]), int(slot_item[t])
            kt = v * n_items + j
            if pending[t] or u * n_items + j in seen or v * n_items + i in seen:
                continue  # t must be a kept slot and the swapped pairs must both be new
            seen.discard(kt)
            seen.add(u * n_items + j)
            seen.add(v * n_items + i)
            slot_item[s], slot_item[t] = j, i
            pending[s] = False
            swaps += 1
            break
        else:
            raise RuntimeError(f"synth: could not remove a repeated (user, item) pair for user {u}; matrix too dense")
    return slot_item, swaps


def _ratings(
    slot_user: np.ndarray, slot_item: np.ndarray, item_cluster: np.ndarray, primary: np.ndarray,
    secondary: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    """Star ratings 1..5 from a latent score cut at Amazon's rating quantiles."""
    n_users, n_items = len(primary), len(item_cluster)
    user_bias = rng.normal(0.0, 0.8, n_users)  # generous vs strict raters
    quality = rng.normal(0.0, 0.4, n_items)
    cl = item_cluster[slot_item]
    in_cluster = (cl == primary[slot_user]) | (cl == secondary[slot_user])
    latent = user_bias[slot_user] + quality[slot_item] + np.where(in_cluster, 0.6, -0.6) + rng.normal(0.0, 0.7, len(slot_user))
    cuts = np.quantile(latent, RATING_CDF)
    return (np.searchsorted(cuts, latent) + 1).astype(np.int64)


def _asins(n: int, rng: np.random.Generator) -> list[str]:
    codes = rng.choice(10**9, n, replace=False)
    return [f"B{c:09d}" for c in codes.tolist()]


def _reviewer_ids(n: int, rng: np.random.Generator) -> list[str]:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = rng.choice(36**6, n, replace=False)  # unique; padded with random characters
    tails = rng.integers(0, 36, (n, 7))
    out = []
    for code, tail in zip(codes.tolist(), tails.tolist()):
        head = ""
        for _ in range(6):
            code, r = divmod(code, 36)
            head += digits[r]
        out.append("A" + head + "".join(digits[t] for t in tail))
    return out


def _vocabularies(n_clusters: int, rng: np.random.Generator) -> list[dict]:
    """Per cluster: category name, nouns, adjectives and brand names."""
    vocab = []
    for c in range(n_clusters):
        name, nouns, adjectives = THEMES[c % len(THEMES)]
        extra = []
        if c >= len(THEMES):  # beyond the themes: own product words keep the cluster distinct
            extra = [_pseudo_word(rng) for _ in range(6)]
            name = f"{name} {extra[0].title()}"
        brands = [_pseudo_word(rng, 2 + k % 2).title() for k in range(4)]
        vocab.append({"category": name, "nouns": list(nouns) + extra, "adjectives": list(adjectives), "brands": brands})
    return vocab


def _pick(words, x: float):
    """The word at fraction ``x`` in [0, 1) of ``words``."""
    return words[int(x * len(words))]


def _item_meta(asins: list[str], item_cluster: np.ndarray, vocab: list[dict], category: str, rng: np.random.Generator) -> list[str]:
    """One Python-literal dict per item, like the real meta_<Cat>.json.gz."""
    lines = []
    n = len(asins)
    prices = np.round(rng.lognormal(3.0, 0.7, n), 2)
    has_brand = rng.random(n) > 0.1
    has_desc = rng.random(n) > 0.05
    html = rng.random(n) < 0.1
    picks = rng.random((n, 16))
    for k, asin in enumerate(asins):
        v = vocab[int(item_cluster[k])]
        p = picks[k]
        nouns, adjs, brands = v["nouns"], v["adjectives"], v["brands"]
        brand = _pick(brands, p[0])
        title = f"{brand} {_pick(adjs, p[1]).title()} {_pick(nouns, p[2]).title()} {_pick(nouns, p[3]).title()}"
        record: dict = {"asin": asin, "title": title, "price": float(prices[k]),
                        "imUrl": f"http://ecx.images-amazon.com/images/I/{asin}.jpg"}
        if has_brand[k]:
            record["brand"] = brand
        record["categories"] = [[category, v["category"]]]
        if has_desc[k]:
            words = [_pick(nouns, x) if j % 3 == 0 else _pick(adjs, x) if j % 3 == 1 else _pick(FILLER, x)
                     for j, x in enumerate(p[4:16])]
            sentence = f"The {_pick(adjs, p[5])} {_pick(nouns, p[6])} by {brand}: " + " ".join(words) + "."
            record["description"] = sentence.replace(": ", ":<br />", 1) if html[k] else sentence
        lines.append(repr(record))
    return lines


def _review_lines(
    user_ids: list[str], asins: list[str], slot_user: np.ndarray, slot_item: np.ndarray, rating: np.ndarray,
    item_cluster: np.ndarray, vocab: list[dict], rng: np.random.Generator,
) -> list[str]:
    """JSON lines of the reviews file, sorted by item then time (the real files are grouped by asin)."""
    n = len(slot_user)
    times = rng.integers(START_TIME, END_TIME, n)
    order = np.lexsort((slot_user, times, slot_item))
    days = times.astype("datetime64[s]").astype("datetime64[D]").astype(str)
    picks = rng.random((n, 6))
    helpful_total = rng.geometric(0.6, n) - 1
    helpful_yes = rng.binomial(helpful_total, 0.7)
    lines = []
    for s in order.tolist():
        r = int(rating[s])
        nouns = vocab[int(item_cluster[slot_item[s]])]["nouns"]
        senti = SENTIMENT[r]
        p = picks[s]
        noun = nouns[int(p[0] * len(nouns))]
        text = (f"{FILLER[int(p[1] * len(FILLER))]} {noun} is {senti[int(p[2] * len(senti))]}, "
                f"{senti[int(p[3] * len(senti))]} for the price. {FILLER[int(p[4] * len(FILLER))]} {noun}.")
        y, m, d = days[s].split("-")
        lines.append(json.dumps({
            "reviewerID": user_ids[slot_user[s]],
            "asin": asins[slot_item[s]],
            "helpful": [int(helpful_yes[s]), int(helpful_total[s])],
            "reviewText": text,
            "overall": float(r),
            "summary": f"{senti[int(p[5] * len(senti))].capitalize()} {noun}",
            "unixReviewTime": int(times[s]),
            "reviewTime": f"{m} {int(d)}, {y}",
        }))
    return lines


def _write_gzip_lines(path: Path, lines: list[str]) -> Path:
    """Gzip text lines with no timestamp or file name in the header (byte-reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def image_vectors(item_cluster: np.ndarray, n_clusters: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Non-negative sparse-ish vectors: ReLU(cluster centroid + item noise), float32 [n_items, dim]."""
    active = rng.random((n_clusters, dim)) < 0.25
    centroids = np.where(active, rng.gamma(2.0, 1.0, (n_clusters, dim)), 0.0).astype(np.float32)
    vec = rng.standard_normal((len(item_cluster), dim), dtype=np.float32)
    vec *= np.float32(0.8)
    vec += centroids[item_cluster]
    np.maximum(vec, 0.0, out=vec)
    return vec


def synthetic_files(out_dir: str | Path, category: str = "Synthetic") -> dict[str, Path]:
    """The paths :func:`write_synthetic` writes in ``out_dir`` (reviews, meta, images)."""
    out_dir = Path(out_dir)
    return {
        "reviews": out_dir / f"reviews_{category}_5.json.gz",
        "meta": out_dir / f"meta_{category}.json.gz",
        "images": out_dir / f"image_features_{category}.b",
    }


def write_synthetic(
    out_dir: Path,
    *,
    n_users: int,
    n_items: int,
    n_interactions: int,
    n_clusters: int,
    image_dim: int = 4096,
    seed: int = 0,
    category: str = "Synthetic",
) -> dict[str, Path]:
    """Write Amazon-2014-format raw files for a synthetic dataset into ``out_dir``.

    Returns ``{"reviews": ..., "meta": ..., "images": ...}``. Exactly ``n_interactions`` distinct
    (user, item) pairs; every user and item has at least 5 of them when
    ``n_interactions >= 5 * max(n_users, n_items)`` (else as many as the sizes allow).
    """
    min_deg = _check_sizes(n_users, n_items, n_interactions, n_clusters, image_dim)
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)

    user_deg = long_tail_degrees(n_users, n_interactions, min_deg, _max_degree(n_users, n_items, n_interactions), USER_ALPHA, rng)
    item_deg = long_tail_degrees(n_items, n_interactions, min_deg, _max_degree(n_items, n_users, n_interactions), ITEM_ALPHA, rng)
    # clusters of unequal size (Dirichlet shares), every cluster with at least one item
    shares = rng.dirichlet(np.full(n_clusters, 4.0))
    sizes = 1 + rng.multinomial(n_items - n_clusters, shares)
    item_cluster = rng.permutation(np.repeat(np.arange(n_clusters), sizes))

    slot_user = np.repeat(np.arange(n_users), user_deg)
    slot_cluster, primary, secondary = _assign_clusters(slot_user, item_cluster, item_deg, n_users, n_clusters, rng)
    slot_item, swaps = _match(slot_user, slot_cluster, item_cluster, item_deg, n_items, rng)
    rating = _ratings(slot_user, slot_item, item_cluster, primary, secondary, rng)

    asins = _asins(n_items, rng)
    user_ids = _reviewer_ids(n_users, rng)
    vocab = _vocabularies(n_clusters, rng)
    reviews = _write_gzip_lines(
        synthetic_files(out_dir, category)["reviews"],
        _review_lines(user_ids, asins, slot_user, slot_item, rating, item_cluster, vocab, rng),
    )
    meta = _write_gzip_lines(synthetic_files(out_dir, category)["meta"], _item_meta(asins, item_cluster, vocab, category, rng))
    images = write_image_features(synthetic_files(out_dir, category)["images"], asins, image_vectors(item_cluster, n_clusters, image_dim, rng))
    hist = np.bincount(rating, minlength=6)[1:]
    log.info(
        "wrote synthetic %s: %d users, %d items, %d interactions (%d repeated pairs swapped away), "
        "%d clusters, %d-d images; user degree median %d max %d, item degree median %d max %d; "
        "ratings 1-5: %s -> %s",
        category, n_users, n_items, n_interactions, swaps, n_clusters, image_dim,
        int(np.median(user_deg)), int(user_deg.max()), int(np.median(item_deg)), int(item_deg.max()),
        hist.tolist(), out_dir,
    )
    return {"reviews": reviews, "meta": meta, "images": images}
