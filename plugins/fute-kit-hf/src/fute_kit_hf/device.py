"""Choosing the torch device: CUDA when present (or Apple MPS), else the CPU; overridable."""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import FuteError


def resolve_device(device: str = "auto") -> Any:
    """``"auto"`` → cuda, then mps, then cpu; any other torch device string is checked to be usable here."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise FuteError(f"device {device!r} is not valid: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (chosen.index is not None and chosen.index >= count) or count == 0:
            raise FuteError(f"device {device!r} is not available here ({count} CUDA devices): use 'auto' or 'cpu'")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FuteError(f"device {device!r} is not available here: use 'auto' or 'cpu'")
    return chosen
