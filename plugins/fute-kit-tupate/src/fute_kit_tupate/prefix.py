"""Key/value prefixes at every attention module (P-tuning v2), for every architecture family.

Why not peft's ``PrefixTuningConfig``: peft feeds prefixes through the model's key/value cache. The T5
encoder stack drops any cache (so an encoder-only T5 surrogate never sees a prefix), the copy peft makes
for T5's cross-attention is discarded, and for an encoder-decoder model its layer split hands half of the
prefix parameters to no layer at all: those slots never receive a gradient. Going through the cache also
shifts the positions of the real tokens by the prefix length in absolute-position models (BERT, GPT-2).

Here the prefix is added inside the attention function instead: two transformers attention
implementations, ``fute_prefix_sdpa`` and ``fute_prefix_eager``, wrap the stock ones. Before calling them
they put the module's own prefix keys and values in front of the real ones, extend the attention mask
(prefix always visible, also under a causal mask) and, for T5, the relative position bias (zero for the
prefix). Real tokens keep their positions. Every attention module the surrogate's forward pass runs gets
its own slot, so every slot receives a gradient by construction (and the tests check it).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch

_BASES = ("sdpa", "eager")
_REGISTERED = False


@attrs.frozen
class Slot:
    """One attention module that receives a prefix: its name and the shape of its key/value heads."""

    name: str
    role: str  # the name with the layer index replaced by '*': slots of one role are averaged over layers
    kv_heads: int
    head_dim: int
    value_dim: int


class _Recorder:
    """During a probe pass: the keys and values each attention module computes, in call order."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


_PROBE: list[_Recorder] = []


def _base_function(module: torch.nn.Module, base: str) -> Callable[..., Any]:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if base == "sdpa":
        return ALL_ATTENTION_FUNCTIONS["sdpa"]
    # Eager attention is model-specific (T5 adds its position bias there): use the module's own.
    own = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if own is None:
        raise RuntimeError(f"{type(module).__name__} has no eager_attention_forward; use the sdpa implementation")
    return own


def _pad_left(tensor: torch.Tensor, length: int, value: float | bool) -> torch.Tensor:
    pad = torch.full((*tensor.shape[:-1], length), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([pad, tensor], dim=-1)


def _with_prefix(
    module: torch.nn.Module,
    base: str,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    kwargs: dict[str, Any],
    prefix_key: torch.Tensor,
    prefix_value: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    b, length = key.shape[0], prefix_key.shape[1]
    q_len, k_len = query.shape[2], key.shape[2]
    key = torch.cat([prefix_key.to(key.dtype).unsqueeze(0).expand(b, -1, -1, -1), key], dim=2)
    value = torch.cat([prefix_value.to(value.dtype).unsqueeze(0).expand(b, -1, -1, -1), value], dim=2)
    if attention_mask is None:
        # sdpa without a mask means "causal when the module is causal": that alignment breaks once keys
        # are longer than queries, so spell the causal mask out with the prefix visible to every query.
        causal = kwargs.get("is_causal")
        causal = getattr(module, "is_causal", True) if causal is None else causal
        if base == "sdpa" and causal and q_len > 1:
            real = torch.ones(q_len, k_len, dtype=torch.bool, device=key.device).tril(diagonal=k_len - q_len)
            attention_mask = _pad_left(real, length, True).view(1, 1, q_len, length + k_len)
    elif attention_mask.dtype == torch.bool:
        attention_mask = _pad_left(attention_mask, length, True)
    else:
        attention_mask = _pad_left(attention_mask, length, 0.0)
    bias = kwargs.get("position_bias")
    if bias is not None:  # T5: no relative position between a query and a prefix slot
        kwargs = {**kwargs, "position_bias": _pad_left(bias, length, 0.0)}
    return key, value, attention_mask, kwargs


def _attention(base: str) -> Callable[..., Any]:
    def attention(
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        **kwargs: Any,
    ) -> Any:
        if _PROBE:
            _PROBE[-1].seen.setdefault(id(module), (key.detach(), value.detach()))
        hook: PrefixParameters | None = module.__dict__.get("_fute_prefix")
        if hook is not None:
            prefix_key, prefix_value = hook.prefix_of(module)
            key, value, attention_mask, kwargs = _with_prefix(
                module, base, query, key, value, attention_mask, kwargs, prefix_key, prefix_value
            )
        return _base_function(module, base)(module, query, key, value, attention_mask, **kwargs)

    return attention


def register_implementations() -> None:
    """Register ``fute_prefix_sdpa`` / ``fute_prefix_eager`` with transformers (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask
    from transformers.modeling_utils import AttentionInterface

    masks = {"sdpa": sdpa_mask, "eager": eager_mask}
    for base in _BASES:
        AttentionInterface.register(f"fute_prefix_{base}", _attention(base))
        AttentionMaskInterface.register(f"fute_prefix_{base}", masks[base])
    _REGISTERED = True


def use_prefix_attention(model: torch.nn.Module) -> str:
    """Switch a (copied) model to the prefix-aware attention; returns the implementation name."""
    register_implementations()
    current = str(getattr(model.config, "_attn_implementation", "sdpa") or "sdpa")
    base = "eager" if current.endswith("eager") else "sdpa"
    name = f"fute_prefix_{base}"
    if current != name:
        model.set_attn_implementation(name)
        if getattr(model.config, "_attn_implementation", None) != name:
            raise RuntimeError(
                f"{type(model).__name__} does not let its attention implementation be changed; prefix tuning "
                "needs a model that uses transformers' attention interface (choose variant 'prompt' or 'lora')"
            )
    return name


@contextlib.contextmanager
def probe() -> Iterator[_Recorder]:
    """Record the keys and values of every attention module run inside the block (call order kept)."""
    recorder = _Recorder()
    _PROBE.append(recorder)
    try:
        yield recorder
    finally:
        _PROBE.remove(recorder)


def role_of(name: str) -> str:
    """``encoder.layer.3.attention.self`` → ``encoder.layer.*.attention.self``: the module's place in any layer."""
    return re.sub(r"\.\d+(?=\.|$)", ".*", name, count=1)


class PrefixParameters(torch.nn.Module):
    """The trained prefixes: for each slot, keys (kv_heads, L, head_dim) and values (kv_heads, L, value_dim)."""

    def __init__(self, slots: list[Slot], keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        super().__init__()
        self.slots = slots
        self.keys = torch.nn.ParameterList([torch.nn.Parameter(k.clone()) for k in keys])
        self.values = torch.nn.ParameterList([torch.nn.Parameter(v.clone()) for v in values])
        self._index: dict[int, int] = {}

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[1])

    def attach(self, modules: dict[str, torch.nn.Module]) -> None:
        """Give each slot's module its prefix (the attribute is not a submodule: the model's state is unchanged)."""
        for i, slot in enumerate(self.slots):
            module = modules[slot.name]
            module.__dict__["_fute_prefix"] = self
            self._index[id(module)] = i

    def prefix_of(self, module: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        i = self._index[id(module)]
        return self.keys[i], self.values[i]

    def per_role(self) -> torch.Tensor:
        """(L, roles x (keys + values)): each role's slots averaged over layers, heads laid side by side."""
        roles: dict[str, list[int]] = {}
        for i, slot in enumerate(self.slots):
            roles.setdefault(slot.role, []).append(i)
        columns = []
        for members in roles.values():
            for table in (self.keys, self.values):
                # (kv_heads, L, d) → (L, kv_heads * d), then the mean over the role's layers.
                stacked = torch.stack([table[i].permute(1, 0, 2).reshape(self.length, -1) for i in members])
                columns.append(stacked.mean(dim=0))
        return torch.cat(columns, dim=1)


def build_prefix(
    model: torch.nn.Module,
    run_probe: Callable[[], None],
    length: int,
    init: str,
    generator: torch.Generator,
) -> PrefixParameters:
    """Find the attention modules the forward pass uses and give each a prefix of ``length`` positions.

    ``run_probe`` runs the model once on ``length`` random vocabulary tokens (no gradients). ``init="vocab"``
    starts every slot from the keys/values those tokens produce there; ``init="random"`` draws normal values
    with each slot's own key/value standard deviation on them, so both start on the model's scale.
    """
    use_prefix_attention(model)
    training = model.training
    model.eval()  # no dropout in the probe: the initial prefix depends on the seed only
    try:
        with probe() as recorder, torch.no_grad():
            run_probe()
    finally:
        model.train(training)
    names = {id(m): n for n, m in model.named_modules()}
    slots, keys, values = [], [], []
    for module_id, (key, value) in recorder.seen.items():
        name = names.get(module_id)
        if name is None:
            continue
        # key: (1, kv_heads, t, head_dim) from the probe batch of one sequence of `length` tokens.
        key, value = key[0, :, -length:, :].float(), value[0, :, -length:, :].float()
        if key.shape[1] != length:
            raise RuntimeError(f"prefix probe: attention {name!r} saw {key.shape[1]} keys, expected {length}")
        slots.append(Slot(name, role_of(name), int(key.shape[0]), int(key.shape[2]), int(value.shape[2])))
        if init == "vocab":
            keys.append(key.clone())
            values.append(value.clone())
        else:
            keys.append(torch.randn(key.shape, generator=generator) * key.std().clamp_min(1e-3))
            values.append(torch.randn(value.shape, generator=generator) * value.std().clamp_min(1e-3))
    if not slots:
        raise RuntimeError(
            f"{type(model).__name__} ran no attention through transformers' attention interface: prefix tuning "
            "cannot reach it (choose variant 'prompt' or 'lora')"
        )
    device = next(model.parameters()).device
    prefix = PrefixParameters(slots, keys, values).to(device)
    prefix.attach(dict(model.named_modules()))
    return prefix
