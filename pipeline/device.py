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
