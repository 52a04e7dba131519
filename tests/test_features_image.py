"""Image features from ``.b`` files (matching by ASIN, mean fill, unknown and repeated records,
record-length detection), MMRec pass-through, and the modality bookkeeping of build_features."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.errors import UserError
from pipeline.features.build import build_features
from pipeline.features.image import image_features, infer_image_dim
from pipeline.ingest.image_features import write_image_features


def _vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, dim), dtype=np.float32)


def test_matcher_with_missing_unknown_and_repeated_asins(tmp_path):
    vecs = _vectors(5, 16)
    # file: B, X (unknown), A, B again (repeated: first record wins), Y (unknown); item C has none
    path = write_image_features(tmp_path / "img.b", ["B", "X", "A", "B", "Y"], vecs)
    got = image_features(path, ["A", "B", "C"])
    assert (got.n_records, got.n_matched, got.n_fallback, got.n_unknown, got.n_duplicate) == (5, 2, 1, 2, 1)
    np.testing.assert_array_equal(got.matrix[0], vecs[2])  # A
    np.testing.assert_array_equal(got.matrix[1], vecs[0])  # B, first record
    np.testing.assert_allclose(got.matrix[2], (vecs[2] + vecs[0]) / 2, rtol=1e-6)  # C: mean of matched
    assert got.matrix.dtype == np.float32 and got.matrix.shape == (3, 16)


def test_record_length_is_detected(tmp_path):
    assert infer_image_dim(write_image_features(tmp_path / "a.b", ["A1", "B22", "C333"], _vectors(3, 64))) == 64
    assert infer_image_dim(write_image_features(tmp_path / "b.b", ["A", "B"], _vectors(2, 4096))) == 4096
    assert infer_image_dim(write_image_features(tmp_path / "c.b", ["ONLY"], _vectors(1, 7))) == 7
    (tmp_path / "bad.b").write_bytes(b"\x00\x01" * 51)
    with pytest.raises(UserError, match="bad.b: not an image feature file"):
        infer_image_dim(tmp_path / "bad.b")


def test_no_matching_asin_is_a_user_error(tmp_path):
    path = write_image_features(tmp_path / "img.b", ["X", "Y"], _vectors(2, 8))
    with pytest.raises(UserError, match="none of its 2 records matches"):
        image_features(path, ["A", "B"])


class FakeEncoder:
    """Deterministic stand-in for the sentence encoder: character counts of a-z, normalised."""

    def get_embedding_dimension(self) -> int:
        return 26

    def encode(self, sentences, batch_size=64, show_progress_bar=False, convert_to_numpy=True):
        out = np.zeros((len(sentences), 26), np.float32)
        for r, s in enumerate(sentences):
            for ch in s.lower():
                if "a" <= ch <= "z":
                    out[r, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _items(n: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {"item": pl.Series(range(n), dtype=pl.Int32), "asin": [f"A{i}" for i in range(n)],
         "title": ["red shoe", None, "blue hat", "green <b>scarf</b>"][:n]}
    )


def test_build_features_with_images_and_text(tmp_path):
    vecs = _vectors(3, 32)
    img = write_image_features(tmp_path / "raw/img.b", ["A2", "A0", "ZZ"], vecs)
    out = tmp_path / "vectors"
    (out).mkdir()
    report = build_features(_items(), {"format": "amazon2014", "images": str(img)}, out,
                            load_encoder=lambda name, device: FakeEncoder())
    assert report["modalities"] == ["image", "text"]
    assert report["image"]["items_covered"] == 2 and report["image"]["items_fallback"] == 2
    assert report["image"]["records_unknown_asin"] == 1 and report["image"]["dim"] == 32
    assert report["text"]["items_covered"] == 3 and report["text"]["items_fallback"] == 1
    image = np.load(out / "image.npy")
    np.testing.assert_array_equal(image[0], vecs[1])
    np.testing.assert_array_equal(image[2], vecs[0])
    np.testing.assert_allclose(image[1], (vecs[0] + vecs[1]) / 2, rtol=1e-6)
    text = np.load(out / "text.npy")
    assert text.shape == (4, 26) and text[3, ord("s") - 97] > 0 and text[3, ord("b") - 97] == 0  # tag stripped


def test_dataset_without_images_has_text_only_and_stale_files_go(tmp_path):
    out = tmp_path / "vectors"
    out.mkdir()
    np.save(out / "image.npy", np.zeros((4, 2), np.float32))  # left over from an earlier config
    report = build_features(_items(), {"format": "amazon2018"}, out, load_encoder=lambda n, d: FakeEncoder())
    assert report["modalities"] == ["text"]
    assert sorted(p.name for p in out.iterdir()) == ["text.npy"]


def test_no_modality_at_all_leaves_an_empty_folder(tmp_path):
    items = pl.DataFrame({"item": pl.Series([0, 1], dtype=pl.Int32), "asin": ["a", "b"]})
    out = tmp_path / "vectors"
    out.mkdir()
    np.save(out / "text.npy", np.ones((2, 3), np.float32))  # stale, from a run that had text
    report = build_features(items, {"format": "generic"}, out, load_encoder=lambda n, d: pytest.fail("nothing to encode"))
    assert report == {"n_items": 2, "modalities": []} and list(out.iterdir()) == []  # a ratings-only dataset


def test_mmrec_feature_files_pass_through_unchanged(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "baby.inter").write_text("userID\titemID\trating\ttimestamp\tx_label\n")
    image = _vectors(4, 8)
    np.save(folder / "image_feat.npy", image)
    np.save(folder / "text_feat.npy", _vectors(4, 6).astype(np.float64))  # converted to float32
    cfg = {"format": "auto", "reviews": str(folder / "baby.inter")}
    out = tmp_path / "vectors"
    report = build_features(_items(), cfg, out, load_encoder=lambda n, d: pytest.fail("must not encode"))
    assert report["modalities"] == ["image", "text"]
    assert (out / "image.npy").read_bytes() == (folder / "image_feat.npy").read_bytes()
    assert report["text"]["converted_from"] == "float64" and np.load(out / "text.npy").dtype == np.float32
    np.save(folder / "image_feat.npy", _vectors(5, 8))
    with pytest.raises(UserError, match=r"image_feat.npy: shape \(5, 8\), expected one row per item \(4"):
        build_features(_items(), cfg, out, load_encoder=lambda n, d: FakeEncoder())


def test_non_finite_rows_of_an_mmrec_file_are_named_at_the_features_stage(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "baby.inter").write_text("userID\titemID\trating\ttimestamp\tx_label\n")
    image = _vectors(4, 8)
    image[1, 3] = np.nan
    image[3, 0] = np.inf
    np.save(folder / "image_feat.npy", image)
    cfg = {"format": "mmrec", "reviews": str(folder / "baby.inter")}
    with pytest.raises(UserError, match=r"image_feat.npy: 2 row\(s\) hold NaN or infinite values \(row = item id\): 1, 3$"):
        build_features(_items(), cfg, tmp_path / "vectors", load_encoder=lambda n, d: FakeEncoder())
    assert not (tmp_path / "vectors" / "image.npy").exists()


def test_non_finite_image_record_is_named(tmp_path):
    vectors = np.ones((2, 4), np.float32)
    vectors[1, 2] = np.nan
    path = write_image_features(tmp_path / "img.b", ["A1", "A2"], vectors)
    with pytest.raises(UserError, match=r"img.b: 1 record\(s\) hold NaN or infinite values, e.g. ASIN 'A2'"):
        image_features(path, ["A1", "A2"], dim=4)


# --- a folder of image files (pipeline.ingest.image_files, pipeline.features.image_files) ---------------

from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from pipeline.features import image_files  # noqa: E402
from pipeline.neighbors.knn import knn_lists  # noqa: E402
from pipeline.neighbors.similarity import nonzero_rows  # noqa: E402


@pytest.fixture(scope="module")
def cnn():
    """The real encoder (packaged EfficientNet-Lite0 weights), one thread, loaded once."""
    return image_files.load_image_encoder("cpu", threads=1)


def _solid(rgb, size) -> Image.Image:
    return Image.new("RGB", size, rgb)


def _disc(size: int, radius: float, dx: int) -> Image.Image:
    im = Image.new("RGB", (size, size), (0, 0, 0))
    c, r = size / 2 + dx, radius * size
    ImageDraw.Draw(im).ellipse((c - r, size / 2 - r, c + r, size / 2 + r), fill=(255, 255, 255))
    return im


def _stripes(size: int, width: int) -> Image.Image:
    rows = (np.arange(size) // width) % 2 * 255
    return Image.fromarray(np.repeat(np.repeat(rows[:, None], size, 1)[:, :, None], 3, 2).astype(np.uint8))


def _groups_separate(vectors: np.ndarray, labels: list[str]) -> None:
    """Every vector is closer (cosine) to every vector of its group than to any of another group."""
    sim = vectors @ vectors.T
    labels = np.array(labels)
    for g in np.unique(labels):
        inside, outside = labels == g, labels != g
        within = sim[np.ix_(inside, inside)][~np.eye(inside.sum(), dtype=bool)]
        assert within.min() > sim[np.ix_(inside, outside)].max(), (g, within.min(), sim[np.ix_(inside, outside)].max())


def test_the_features_stage_separates_images_of_known_content(tmp_path, cnn):
    # solid colours, each in three sizes and two formats (the same colour: the encoder must not care), and two
    # shapes, each in three geometries (a white disc of other radii and places, horizontal stripes of other widths)
    folder = tmp_path / "images"
    folder.mkdir()
    labels = {}
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    for name, rgb in colours.items():
        for j, (size, ext) in enumerate((((64, 64), "png"), ((92, 138), "jpg"), ((300, 200), "png"))):
            _solid(rgb, size).save(folder / f"{name}{j}.{ext}")
            labels[f"{name}{j}"] = name
    for j, (radius, dx) in enumerate(((0.3, 0), (0.35, 10), (0.25, -8))):
        _disc(160, radius, dx).save(folder / f"disc{j}.png")
        labels[f"disc{j}"] = "disc"
    for j, width in enumerate((10, 16, 24)):
        _stripes(160, width).save(folder / f"stripes{j}.png")
        labels[f"stripes{j}"] = "stripes"
    ids = sorted(labels)
    items = pl.DataFrame({"item": pl.Series(range(len(ids)), dtype=pl.Int32), "asin": ids})
    cfg = {"format": "generic", "images": str(folder)}
    out = tmp_path / "vectors"
    report = build_features(items, cfg, out, batch_size=4, load_image_encoder=lambda device: cnn,
                            load_encoder=lambda n, d: pytest.fail("no text"))
    image = np.load(out / "image.npy")
    assert image.shape == (len(ids), image_files.DIM) and report["image"]["items_covered"] == len(ids)
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-5)
    _groups_separate(image, [labels[i] for i in ids])
    # deterministic: the same folder gives the same bytes (another batch size: the same up to rounding)
    first = (out / "image.npy").read_bytes()
    build_features(items, cfg, out, batch_size=4, load_image_encoder=lambda device: cnn)
    assert (out / "image.npy").read_bytes() == first
    build_features(items, cfg, out, batch_size=16, load_image_encoder=lambda device: cnn)
    np.testing.assert_allclose(np.load(out / "image.npy"), image, atol=1e-5)
    info = report["image"]
    assert info["encoder"]["weights_sha256"] == image_files.WEIGHTS_SHA256 and info["encoder"]["dim"] == 1280
    assert info["preprocessing"]["mean"] == [127.0] * 3 and info["preprocessing"]["input_size"] == 224
    assert info["pattern"] == "{item}.<image extension>" and info["fallback"] == image_files.FALLBACK_RULE


def test_inference_network_is_the_packaged_network_up_to_rounding(cnn):
    plain = image_files.load_image_encoder("cpu", fold=False, threads=1)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    with image_files._deterministic(torch.device("cpu"), 1):
        a, b = plain.encode(x), cnn.encode(x)
    assert a.shape == (2, 1280) and a.min() >= 0 and a.max() <= 6  # pooled ReLU6
    np.testing.assert_allclose(b, a, atol=1e-4)
    assert sum(1 for m in cnn.network.modules() if hasattr(m, "static_padding")) == 5  # only the asymmetric stride-2 pads


def test_the_weights_file_is_checked(monkeypatch):
    monkeypatch.setattr(image_files, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(UserError, match=r"efficientnet-lite0-57934424.pth: sha256 5793442.*, expected 0{64}"):
        image_files.load_image_encoder("cpu")


@dataclass
class MeanColourEncoder:
    """A stand-in CNN: an image's mean normalised colour (+ an offset) and a constant, so rows are recognisable."""

    dim: int = 4
    device: torch.device = torch.device("cpu")
    threads: int = 1
    info: dict = field(default_factory=lambda: {"network": "mean colour (test)"})

    def encode(self, batch: np.ndarray) -> np.ndarray:
        mean = batch.mean(axis=(1, 2)) + 1.5
        return np.concatenate([mean, np.ones((len(batch), 1))], axis=1).astype(np.float32)


def _broken_folder(folder: Path) -> list[str]:
    """Items a-h: a good, b missing, c corrupt, d truncated, e grayscale, f transparent, g odd-sized, h palette;
    plus a second file for a, a file of an unknown id, a file the pattern does not match and a hidden one."""
    folder.mkdir()
    Image.new("RGB", (64, 64), (230, 20, 20)).save(folder / "a.png")
    Image.new("RGB", (64, 64), (20, 230, 20)).save(folder / "a.tif")  # second file for a: skipped (name order)
    (folder / "c.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    good = folder / "tmp.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    (folder / "d.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good.unlink()
    Image.new("L", (64, 64), 200).save(folder / "e.png")
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(folder / "f.png")  # fully transparent: white after compositing
    Image.new("RGB", (120, 40), (20, 20, 230)).save(folder / "g.png")
    Image.new("P", (64, 64), 0).save(folder / "h.gif")
    Image.new("RGB", (64, 64)).save(folder / "zz.png")  # not an item
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    return list("abcdefgh")


def test_missing_and_broken_images_get_zero_rows_in_place_and_are_counted(tmp_path):
    ids = _broken_folder(tmp_path / "img")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    got = image_files.image_folder_features(tmp_path / "img", ids, MeanColourEncoder(threads=2), batch_size=2)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before  # the caller's settings restored
    m = got.matrix
    assert m.shape == (8, 4) and m.dtype == np.float32
    assert got.covered.tolist() == [True, False, False, False, True, True, True, True]
    assert not m[[1, 2, 3]].any()  # the rule: zero vectors, rows in place
    np.testing.assert_allclose(np.linalg.norm(m[got.covered], axis=1), 1.0, rtol=1e-6)
    assert m[0, 0] > m[0, 1] and m[6, 2] > m[6, 0]  # a is red (its .png, not the green .tif); g is blue
    assert m[4, 0] == m[4, 1] == m[4, 2] and m[5, 0] == m[5, 1] == m[5, 2]  # grayscale; transparent -> white
    white = (255 - 127) / 128 + 1.5
    np.testing.assert_allclose(m[5], np.array([white] * 3 + [1]) / np.linalg.norm([white] * 3 + [1]), rtol=1e-6)
    report = got.report()
    assert report["items_missing"] == {"no_file": 1, "unreadable": 2}
    assert (report["items_covered"], report["items_fallback"]) == (5, 3)
    assert report["converted_to_rgb"] == {"L": 1, "P": 1, "RGBA": 1}
    assert report["odd_size"] == {"common_size": "64x64", "items": 1}
    assert report["files"] == {"in_folder": 10, "matched": 7, "not_matching_pattern": 1, "unknown_item": 1, "duplicate_for_an_item": 1}
    # downstream: an item without an image has no image neighbours and is nobody's
    lists, _ = knn_lists(m, 2, name="image.npy")
    assert set(lists.item.tolist()) == {0, 4, 5, 6, 7} and not {1, 2, 3} & set(lists.neighbor.tolist())
    assert nonzero_rows({"image": m, "text": np.ones((8, 3), np.float32)}).tolist() == got.covered.tolist()


def test_build_features_reports_the_folder_rule(tmp_path):
    ids = _broken_folder(tmp_path / "img")
    items = pl.DataFrame({"item": pl.Series(range(8), dtype=pl.Int32), "asin": ids})
    report = build_features(items, {"format": "generic", "images": str(tmp_path / "img")}, tmp_path / "vectors",
                            dataset="toy", load_image_encoder=lambda device: MeanColourEncoder())
    assert report["modalities"] == ["image"] and report["image"]["items_missing"] == {"no_file": 1, "unreadable": 2}
    assert report["image"]["encoder"] == {"network": "mean colour (test)"} and report["image"]["dim"] == 4
    assert np.load(tmp_path / "vectors" / "image.npy").shape == (8, 4)


def test_an_images_path_of_the_wrong_kind_is_a_one_line_error_at_the_features_stage(tmp_path):
    (tmp_path / "img.png").write_bytes(b"x")
    items = pl.DataFrame({"item": pl.Series([0], dtype=pl.Int32), "asin": ["i"]})
    base = {"format": "generic", "reviews": "r.csv"}
    with pytest.raises(UserError, match=rf"^params.yaml: datasets.toy.images: {tmp_path}/img.png is a file, expected a folder"):
        build_features(items, {**base, "images": str(tmp_path / "img.png")}, tmp_path / "v", dataset="toy")
    with pytest.raises(UserError, match=rf"^params.yaml: datasets.toy.images: {tmp_path}/missing not found \(expected a folder of item images\)$"):
        build_features(items, {**base, "images": str(tmp_path / "missing")}, tmp_path / "v", dataset="toy")


def test_text_from_named_columns_is_described_and_its_gaps_counted(tmp_path):
    items = pl.DataFrame(
        {"item": pl.Series(range(3), dtype=pl.Int32), "asin": ["1", "2", "3"], "title": ["Alpha", "Beta", "Gamma"],
         "categories": [["Drama"], None, ["War", "Drama"]], "description": ["a plot", None, None]},
        schema_overrides={"categories": pl.List(pl.String)},
    )
    cfg = {"format": "generic", "items": "items.csv", "items_text": ["title", "overview"], "items_flags_as_categories": ["Drama", "War"]}
    report = build_features(items, cfg, tmp_path / "v", load_encoder=lambda n, d: FakeEncoder())
    assert report["text"]["sentence"] == "title + categories (2 flag columns) + overview (HTML stripped)"
    assert report["text"]["items_without"] == {"title": 0, "categories": 1, "overview": 2}
    # the other formats keep their report (and its bytes): no recipe, no counts
    report = build_features(items, {"format": "amazon2018"}, tmp_path / "v", load_encoder=lambda n, d: FakeEncoder())
    assert "items_without" not in report["text"]
    assert report["text"]["sentence"] == "title + brand + first category path + description (HTML stripped)"
