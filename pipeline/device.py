"""The ``device`` parameters (train, features, neighbors, evaluate): auto, cpu or cuda[:n], resolved once."""

from __future__ import annotations

from pipeline.errors import UserError


def resolve_device(device: str, key: str = "device") -> str:
    """``auto`` -> ``cuda`` when a CUDA GPU is visible to torch, else ``cpu``.

    ``cuda`` (or ``cuda:N``) without a GPU is a UserError naming ``key`` (the params key).
    """
    import torch

    device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UserError(f"params.yaml {key}: '{device}' asked for but no CUDA GPU is available (use auto or cpu)")
        return device
    raise UserError(f"params.yaml {key}: expected auto, cpu or cuda[:n], got '{device}'")


def set_deterministic(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms(mode, warn_only=...)`` without its import of
    ``torch._inductor`` (about 3 s in every process that trains: it also sets the compiler's flag,
    and nothing here compiles), so the switch of the ATen kernels alone."""
    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # pragma: no cover - another torch than the pinned one
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)
