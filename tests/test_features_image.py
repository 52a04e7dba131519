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
