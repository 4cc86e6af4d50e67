"""How a method's forward passes compute: bfloat16 autocast where the hardware has native bfloat16, else float32.

``precision`` is a training option (:class:`fute_kit_hf.training.TrainingOptions`):

- ``"fp32"``: float32 everywhere and the per-parameter AdamW loop: the reference numerics, the same results bit
  for bit as before the option existed.
- ``"bf16"``: matrix products under ``torch.autocast(dtype=torch.bfloat16)`` (master weights, the optimizer
  state, losses and layer norms stay float32) and the fused AdamW kernel; fails where the hardware has no native
  bfloat16.
- ``"auto"``: ``"bf16"`` where the device has native bfloat16 (a CUDA GPU that supports it; a CPU with AVX-512
  BF16 or AMX), else float32 with the fused AdamW kernel.

Measured on a 2-core AMD EPYC with AVX-512 BF16 (bench/RESULTS-embedding-speed.md): faster per embedding, and the
embedding as close to the fp32 one of the same seed as seed noise allows.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from fute_kit.plugin import FuteError

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def native_bf16(device: Any) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (not emulated, which would be slower)."""
    import torch

    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        flags = _cpu_flags()
        return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))
    return False  # MPS and others: float32


def _cpu_flags() -> dict[str, Any]:
    """The CPU's feature flags as torch's cpuinfo reads them ({} where this torch cannot say)."""
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:
        return {}
    try:
        return dict(capabilities())
    except RuntimeError:
        return {}


def check_precision(choice: str) -> None:
    """Refuse a precision that is none of ``PRECISIONS`` (before any model is loaded)."""
    if choice not in PRECISIONS:
        raise FuteError(f"precision must be one of {', '.join(PRECISIONS)}; got {choice!r}")


def resolve_precision(choice: str, device: Any) -> str:
    """The precision a run uses on ``device``: ``"fp32"`` or ``"bf16"``."""
    check_precision(choice)
    if choice == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if choice == "bf16" and not native_bf16(device):
        raise FuteError(
            f"precision 'bf16': device {device} has no native bfloat16 (a CPU needs AVX-512 BF16 or AMX, a GPU "
            "bfloat16 support); use precision 'auto' (falls back to float32) or 'fp32'"
        )
    return choice


def autocast(precision: str, device: Any) -> Any:
    """The context of a forward pass in the resolved ``precision`` (nothing at all for ``"fp32"``)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(getattr(device, "type", str(device)), dtype=torch.bfloat16)


def fused_adamw(choice: str, device: Any) -> bool:
    """Whether AdamW runs as the fused kernel: every choice but the reference ``"fp32"``, on CPU and CUDA."""
    return choice != "fp32" and getattr(device, "type", str(device)) in ("cpu", "cuda")
