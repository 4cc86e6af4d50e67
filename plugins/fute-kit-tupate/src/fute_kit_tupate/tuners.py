"""The four TuPaTE variants: which parameters are trained, how they enter the forward pass, what is embedded.

Every variant works on a private copy of the surrogate's backbone with every weight frozen; only the
tuned parameters (and the head, elsewhere) receive gradients.

- ``prompt``: L soft-prompt vectors before the input embeddings. The parameter is peft's
  ``PromptEmbedding`` (its ``SAMPLE_VOCAB`` initialisation for ``init="vocab"``); the vectors are placed
  by ``Surrogate.forward_features(prompt=...)``, which keeps pooling on the real tokens. (peft's
  ``PeftModelForFeatureExtraction`` would prepend them itself and hand back L extra positions that the
  surrogate's pooling does not know about.)
- ``prefix``: key/value prefixes at every attention module (:mod:`fute_kit_tupate.prefix`; peft's prefix
  tuning does not reach a T5 encoder, see there).
- ``lora``: peft's LoRA injected in place (``inject_adapter_in_model``) on peft's default target modules
  for the architecture (BERT query/value, T5 q/v, GPT-2 c_attn, Llama q_proj/v_proj...).
- ``bitfit``: only the bias terms the forward pass uses (peft has no BitFit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import torch

from fute_kit.plugin import DataError
from fute_kit_hf.surrogate import Batch, Surrogate
from fute_kit_tupate.prefix import PrefixParameters, build_prefix


class VariantError(DataError):
    """A variant that cannot be applied to this surrogate (e.g. BitFit on a model without biases)."""


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose (initialisation, ...) derived from the space's seed only."""
    digest = hashlib.sha256(f"fute-tupate:{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@attrs.define(eq=False)
class Tuned:
    """The frozen model copy, the tuned parameters (name → parameter, in a fixed order) and how to embed them."""

    variant: str
    model: Any
    params: dict[str, torch.nn.Parameter]
    prompt: Any = None  # peft PromptEmbedding (prompt)
    prefix: PrefixParameters | None = None
    details: dict[str, Any] = attrs.field(factory=dict)

    def pooled(self, surrogate: Surrogate, batch: Batch) -> torch.Tensor:
        prompt = self.prompt.embedding.weight if self.prompt is not None else None
        return surrogate.forward_features(self.model, batch, output_hidden_states=False, prompt=prompt).pooled

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.params.items()}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state[name])

    @property
    def size(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def embedding(self, output: str) -> np.ndarray:
        """prompt: (L, hidden); prefix: (L, roles x (key + value dims)), averaged over layers; else flat."""
        with torch.no_grad():
            if self.prompt is not None:
                array = self.prompt.embedding.weight.detach()
            elif self.prefix is not None:
                array = self.prefix.per_role()
            else:
                array = torch.cat([p.detach().reshape(-1) for p in self.params.values()])
            if output == "mean" and array.dim() == 2:
                array = array.mean(dim=0)
            return array.float().cpu().numpy().astype(np.float32)


@attrs.define(eq=False)
class TunedWithHead:
    """The tuned parameters and the head, as ``fute_kit_hf.training`` trains them (the model copy stays frozen).

    AdamW groups as the reference schedule: weight decay on the tuned parameters and the head's weight, the
    head at its own learning rate.
    """

    tuned: Tuned
    head: torch.nn.Linear
    head_learning_rate: float

    @property
    def model(self) -> Any:
        return self.tuned.model

    def pooled(self, surrogate: Surrogate, batch: Batch) -> torch.Tensor:
        return self.tuned.pooled(surrogate, batch)

    def param_groups(self, settings: Any) -> list[dict[str, Any]]:
        tuned = list(self.tuned.params.values())
        return [
            {"params": tuned, "lr": settings.learning_rate, "weight_decay": settings.weight_decay},
            {"params": [self.head.weight], "lr": self.head_learning_rate, "weight_decay": settings.weight_decay},
            {"params": [self.head.bias], "lr": self.head_learning_rate, "weight_decay": 0.0},
        ]

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return self.tuned.snapshot(), {k: v.clone() for k, v in self.head.state_dict().items()}

    def restore(self, state: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]) -> None:
        self.tuned.restore(state[0])
        self.head.load_state_dict(state[1])


def _random_token_ids(surrogate: Surrogate, length: int, generator: torch.Generator) -> torch.Tensor:
    vocab = min(len(surrogate.tokenizer), surrogate.backbone.get_input_embeddings().num_embeddings)
    return torch.randint(0, vocab, (1, length), generator=generator)


def _rng_devices(surrogate: Surrogate) -> list[Any]:
    # peft initialises on the model's device: seed that device's generator too.
    return [surrogate.device] if getattr(surrogate.device, "type", "cpu") == "cuda" else []


def _freeze(model: torch.nn.Module) -> None:
    model.requires_grad_(False)


def _prompt(surrogate: Surrogate, model: Any, length: int, init: str, seed: int) -> Tuned:
    from peft import PromptEmbedding, PromptTuningConfig, PromptTuningInit

    words = model.get_input_embeddings()
    config = PromptTuningConfig(
        task_type="FEATURE_EXTRACTION",
        num_virtual_tokens=length,
        token_dim=surrogate.hidden_size,
        num_transformer_submodules=1,
        num_layers=surrogate.num_layers,
        num_attention_heads=1,
        prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB if init == "vocab" else PromptTuningInit.RANDOM,
    )
    # peft draws the vocabulary ids (or the random vectors) from torch's global RNG: seed it here only.
    with torch.random.fork_rng(devices=_rng_devices(surrogate)):
        torch.manual_seed(derived_seed(seed, "prompt-init"))
        prompt = PromptEmbedding(config, words).to(surrogate.device)
        if init == "random":
            # peft's RANDOM is N(0, 1), far from the scale of most models' word embeddings: use theirs.
            with torch.no_grad():
                prompt.embedding.weight.normal_(0.0, float(words.weight.float().std()))
    prompt.embedding.weight.requires_grad_(True)
    return Tuned("prompt", model, {"prompt": prompt.embedding.weight}, prompt=prompt)


def _probe_batch(surrogate: Surrogate, ids: torch.Tensor) -> Batch:
    ids = ids.to(surrogate.device)
    return Batch({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, np.zeros(1, dtype=np.int64), 0)


def _prefix(surrogate: Surrogate, model: Any, length: int, init: str, seed: int) -> Tuned:
    generator = torch.Generator().manual_seed(derived_seed(seed, "prefix-init"))
    batch = _probe_batch(surrogate, _random_token_ids(surrogate, length, generator))

    def run_probe() -> None:
        surrogate.forward_features(model, batch, output_hidden_states=False)

    prefix = build_prefix(model, run_probe, length, init, generator)
    params = {}
    for i, slot in enumerate(prefix.slots):
        params[f"{slot.name}.prefix_key"] = prefix.keys[i]
        params[f"{slot.name}.prefix_value"] = prefix.values[i]
    roles = list(dict.fromkeys(slot.role for slot in prefix.slots))
    return Tuned("prefix", model, params, prefix=prefix, details={"prefix_slots": len(prefix.slots), "roles": roles})


def _used_parameters(surrogate: Surrogate, model: Any, candidates: dict[str, torch.nn.Parameter]) -> list[str]:
    """Names of the candidates that a forward pass actually uses (a pooler the features skip is not)."""
    for p in candidates.values():
        p.requires_grad_(True)
    ids = torch.arange(4).view(1, 4) + 10
    model.eval()
    surrogate.forward_features(model, _probe_batch(surrogate, ids), output_hidden_states=False).pooled.sum().backward()
    model.train()
    used = [name for name, p in candidates.items() if p.grad is not None]
    for p in candidates.values():
        p.grad = None
    return used


def _lora(surrogate: Surrogate, model: Any, rank: int, alpha: float, seed: int) -> Tuned:
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none")
    with torch.random.fork_rng(devices=_rng_devices(surrogate)):
        torch.manual_seed(derived_seed(seed, "lora-init"))  # peft draws A from the global RNG (B starts at 0)
        try:
            inject_adapter_in_model(config, model)
        except ValueError as exc:
            raise VariantError(
                f"tupate: LoRA cannot be applied to surrogate {surrogate.name!r} ({type(model).__name__}): {exc}"
            ) from exc
    model.to(surrogate.device)
    _freeze(model)
    candidates = {n: p for n, p in model.named_parameters() if "lora_" in n}
    used = _used_parameters(surrogate, model, candidates)
    _freeze(model)
    params = {n: candidates[n] for n in used}
    for p in params.values():
        p.requires_grad_(True)
    targets = sorted({n.split(".lora_")[0].rsplit(".", 1)[-1] for n in params})
    return Tuned("lora", model, params, details={"lora_target_modules": targets, "lora_rank": rank})


def _bitfit(surrogate: Surrogate, model: Any) -> Tuned:
    candidates = {n: p for n, p in model.named_parameters() if n.endswith("bias")}
    if not candidates:
        raise VariantError(
            f"tupate: surrogate {surrogate.name!r} ({type(model).__name__}) has no bias terms, so BitFit has "
            "nothing to train (T5 and Llama have none): choose variant 'prompt', 'prefix' or 'lora'"
        )
    used = _used_parameters(surrogate, model, candidates)
    _freeze(model)
    params = {n: candidates[n] for n in used}
    for p in params.values():
        p.requires_grad_(True)
    return Tuned("bitfit", model, params, details={"bias_tensors": len(params)})


def setup_variant(
    surrogate: Surrogate, variant: str, *, length: int, init: str, rank: int, alpha: float, seed: int
) -> Tuned:
    """A frozen copy of the surrogate with the variant's tuned parameters, initialised from ``seed``."""
    model = surrogate.trainable_copy()
    _freeze(model)
    builders: dict[str, Callable[[], Tuned]] = {
        "prompt": lambda: _prompt(surrogate, model, length, init, seed),
        "prefix": lambda: _prefix(surrogate, model, length, init, seed),
        "lora": lambda: _lora(surrogate, model, rank, alpha, seed),
        "bitfit": lambda: _bitfit(surrogate, model),
    }
    tuned = builders[variant]()
    model.train()
    return tuned
