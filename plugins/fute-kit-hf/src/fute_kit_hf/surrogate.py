"""The surrogate model of an embedding space: loading, batching and per-layer features.

Every method (``textemb``, ``taskemb``, ``tupate``) sees a surrogate through this module only, so the
three architecture families behave the same way:

- ``encoder`` (BERT-like, loaded with ``AutoModel``): layers = the output of each transformer layer
  (after residual + LayerNorm); pooled = mean of the last layer over real tokens (all-MiniLM-L6-v2, the
  default surrogate, is trained as a mean-pooled sentence encoder).
- ``encoder-decoder`` (T5-like): **only the encoder is used** (``AutoModelForTextEncoding``); layers = each
  encoder block's output, pooled = mean of the encoder's final (normalised) states over real tokens,
  as in Sentence-T5. Choosing the encoder keeps one token grid for every layer, so features have the
  same shapes for every family, and a trainable copy does not carry an unused decoder.
- ``decoder`` (GPT-2, Llama...; loaded with ``AutoModel``, no LM head): layers = each block's output
  (the last one after the final norm, as transformers reports it), pooled = the last real token (the
  only position that has seen the whole input). A missing pad token is set to the EOS token.

API (stable; other plugins build on it):

- ``load_surrogate(name, device="auto") -> Surrogate``, cached per process by (resolved path, device).
- ``Surrogate`` attributes: ``name``, ``path``, ``tokenizer``, ``backbone`` (pristine, frozen, eval mode:
  never train it in place), ``family``, ``hidden_size``, ``num_layers``, ``device``, ``max_positions``;
  ``trainable_copy()`` gives a deep copy with gradients on, for training.
- ``Surrogate.tokenize(examples, max_length) -> Tokenized`` (once per dataset) and
  ``Surrogate.batches(examples_or_tokenized, batch_size, max_length, order="length"|"shuffle"|"grouped", seed,
  epoch)``
  yielding ``Batch`` values: padded per batch (right padding), with the original ``indices`` and the
  number of ``truncated`` inputs in the batch.
- ``Surrogate.forward_features(model, batch, ...) -> Features``: ``layers`` (one (b, t, h) tensor per layer),
  ``pooled`` (b, h), ``mask`` (b, t) bool of real tokens and ``last`` (b, t, h) final token states.
- ``make_head(hidden_size, num_outputs, seed)``: a linear head whose initial weights depend only on
  (seed, num_outputs), so one space and one number of classes give one initial head.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples, FuteError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("fute_kit")

Family = Literal["encoder", "encoder-decoder", "decoder"]
Order = Literal["length", "shuffle", "grouped", "given"]
GROUP_BATCHES = 8  # order "grouped": batches per group of examples sorted by length


class SurrogateError(FuteError):
    """A surrogate model that cannot be loaded or used."""


@attrs.frozen(eq=False)
class Tokenized:
    """A whole dataset tokenised once (no padding): token ids per example and how many were cut."""

    input_ids: tuple[tuple[int, ...], ...]
    token_type_ids: tuple[tuple[int, ...], ...] | None
    truncated_mask: np.ndarray  # bool (n,): the input was longer than max_length and was cut
    max_length: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    @property
    def truncated(self) -> int:
        return int(self.truncated_mask.sum())

    def select(self, indices: Sequence[int] | np.ndarray) -> Tokenized:
        """A subset (for example a training split), in the given order."""
        idx = [int(i) for i in indices]
        types = self.token_type_ids
        return Tokenized(
            tuple(self.input_ids[i] for i in idx),
            None if types is None else tuple(types[i] for i in idx),
            self.truncated_mask[idx],
            self.max_length,
        )


@attrs.frozen(eq=False)
class Batch:
    """One padded batch: model inputs on the surrogate's device and where its rows came from."""

    inputs: dict[str, Any]  # input_ids, attention_mask (and token_type_ids): (b, t) tensors
    indices: np.ndarray  # original positions of the rows in the dataset
    truncated: int  # rows of this batch that were cut to max_length

    @property
    def size(self) -> int:
        return len(self.indices)

    @property
    def real_tokens(self) -> int:
        return int(self.inputs["attention_mask"].sum().item())

    @property
    def processed_tokens(self) -> int:
        return int(self.inputs["attention_mask"].numel())


@attrs.frozen(eq=False)
class Features:
    """What every family returns: per-layer token states, a pooled vector and the real-token mask."""

    layers: list[Any]  # num_layers tensors (b, t, h)
    pooled: Any  # (b, h)
    mask: Any  # (b, t) bool, True on real (non-padding, non-prompt) tokens
    last: Any  # (b, t, h) the model's final token states (same as layers[-1] when layers are returned)


@attrs.define(eq=False)
class Surrogate:
    """A loaded surrogate: tokenizer, pristine backbone and the facts methods need about it."""

    name: str
    path: str
    tokenizer: Any
    backbone: Any
    family: Family
    hidden_size: int
    num_layers: int
    device: Any
    max_positions: int

    def __repr__(self) -> str:
        return (
            f"Surrogate({self.name!r}, family={self.family!r}, layers={self.num_layers}, "
            f"hidden={self.hidden_size}, device={self.device})"
        )

    # -- models -------------------------------------------------------------------------------
    def trainable_copy(self) -> Any:
        """A deep copy of the backbone with gradients enabled, in train mode (the backbone stays pristine)."""
        model = copy.deepcopy(self.backbone)
        model.requires_grad_(True)
        model.train()
        return model

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def effective_max_length(self, max_length: int) -> int:
        if max_length < 2:
            raise DataError(f"max_length {max_length} is too small: use at least 8 tokens")
        return min(int(max_length), self.max_positions)

    # -- tokenising and batching --------------------------------------------------------------
    def tokenize(self, examples: Examples | Sequence[str], max_length: int = 128) -> Tokenized:
        """Tokenise a whole dataset once, truncating to ``max_length`` (counted in ``truncated``)."""
        texts, pairs = _texts_of(examples)
        max_length = self.effective_max_length(max_length)
        if not texts:
            return Tokenized((), None, np.zeros(0, dtype=bool), max_length)
        # Tokenise without truncation first (lengths tell what is cut), then re-tokenise only the
        # long ones with truncation: the tokenizer's own strategy handles pairs and special tokens.
        full = self.tokenizer(list(texts), list(pairs) if pairs else None, truncation=False, verbose=False)
        ids = [list(x) for x in full["input_ids"]]
        types = [list(x) for x in full["token_type_ids"]] if "token_type_ids" in full else None
        long = [i for i, row in enumerate(ids) if len(row) > max_length]
        if long:
            cut = self.tokenizer(
                [texts[i] for i in long],
                [pairs[i] for i in long] if pairs else None,
                truncation=True,
                max_length=max_length,
            )
            for j, i in enumerate(long):
                ids[i] = list(cut["input_ids"][j])
                if types is not None:
                    types[i] = list(cut["token_type_ids"][j])
        mask = np.zeros(len(ids), dtype=bool)
        mask[long] = True
        return Tokenized(
            tuple(tuple(r) for r in ids),
            None if types is None else tuple(tuple(r) for r in types),
            mask,
            max_length,
        )

    def batches(
        self,
        examples: Examples | Tokenized | Sequence[str],
        batch_size: int = 32,
        max_length: int = 128,
        order: Order = "length",
        seed: int = 0,
        epoch: int = 0,
    ) -> Iterator[Batch]:
        """Padded batches of a dataset.

        ``order="length"``: sorted by token length (least padding; for inference and the Fisher pass).
        ``order="shuffle"``: a permutation drawn from ``(seed, epoch)`` (for training: the space's seed
        fixes the data order). ``order="grouped"``: the same permutation cut into groups of
        ``GROUP_BATCHES`` batches, each group sorted by length, then the batches shuffled (from the same
        seed): random batches of similar lengths, so training pads less. ``order="given"``: the
        dataset's own order. Pass a ``Tokenized`` to
        avoid tokenising again (for example once per epoch).
        """
        import torch

        if batch_size < 1:
            raise DataError(f"batch_size {batch_size} must be at least 1")
        tokenized = examples if isinstance(examples, Tokenized) else self.tokenize(examples, max_length)
        pad = self.pad_token_id
        for rows in _batch_rows(tokenized.lengths, batch_size, order, seed, epoch):
            width = max(len(tokenized.input_ids[i]) for i in rows)
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            attention = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64) if tokenized.token_type_ids is not None else None
            for r, i in enumerate(rows):  # over rows of token lists, before any tensor exists
                row = tokenized.input_ids[i]
                ids[r, : len(row)] = row
                attention[r, : len(row)] = 1
                if types is not None:
                    types[r, : len(row)] = tokenized.token_type_ids[i]  # type: ignore[index]
            inputs = {
                "input_ids": torch.from_numpy(ids).to(self.device),
                "attention_mask": torch.from_numpy(attention).to(self.device),
            }
            if types is not None:
                inputs["token_type_ids"] = torch.from_numpy(types).to(self.device)
            yield Batch(inputs, np.asarray(rows, dtype=np.int64), int(tokenized.truncated_mask[rows].sum()))

    # -- features -----------------------------------------------------------------------------
    def forward_features(
        self,
        model: Any,
        batch: Batch,
        output_hidden_states: bool = True,
        *,
        inputs_require_grad: bool = False,
        prompt: Any = None,
    ) -> Features:
        """Run ``model`` (the backbone or a trainable copy) on a batch.

        Returns per-layer outputs (empty list when ``output_hidden_states`` is False), the pooled
        representation and the real-token mask, with the same meaning for every family.
        ``inputs_require_grad``: make the input embeddings require gradients, so that gradients can
        reach layer outputs when every weight is frozen (the Fisher pass).
        ``prompt``: a (p, h) or (b, p, h) tensor of soft-prompt vectors placed before the text tokens
        (prompt tuning); those positions are attended to but are not real tokens in ``mask``.
        """
        import torch

        input_ids = batch.inputs["input_ids"]
        attention = batch.inputs["attention_mask"]
        embeds = model.get_input_embeddings()(input_ids)
        kwargs: dict[str, Any] = {}
        if "token_type_ids" in batch.inputs and self.family == "encoder":
            kwargs["token_type_ids"] = batch.inputs["token_type_ids"]
        real = attention.bool()
        if prompt is not None:
            b = input_ids.shape[0]
            prompt = prompt.to(embeds.dtype)
            prompt = prompt.unsqueeze(0).expand(b, -1, -1) if prompt.dim() == 2 else prompt
            p = prompt.shape[1]
            embeds = torch.cat([prompt, embeds], dim=1)
            attention = torch.cat([attention.new_ones(b, p), attention], dim=1)
            real = torch.cat([real.new_zeros(b, p), real], dim=1)
            if "token_type_ids" in kwargs:
                kwargs["token_type_ids"] = torch.cat([attention.new_zeros(b, p), kwargs["token_type_ids"]], dim=1)
        if inputs_require_grad and not embeds.requires_grad:
            embeds = embeds.detach().requires_grad_(True)
        if self.family == "decoder":
            kwargs["use_cache"] = False
        out = model(
            inputs_embeds=embeds,
            attention_mask=attention,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        last = out.last_hidden_state
        layers: list[Any] = []
        if output_hidden_states:
            hidden = out.hidden_states
            if len(hidden) != self.num_layers + 1:
                raise SurrogateError(
                    f"surrogate {self.name!r} reported {len(hidden)} hidden states for {self.num_layers} layers"
                )
            layers = list(hidden[1:])
        if self.family == "decoder":
            # Right padding: the last real token is at (prompt length + real length - 1).
            prompt_length = attention.shape[1] - input_ids.shape[1]
            position = batch.inputs["attention_mask"].sum(dim=1) - 1 + prompt_length
            pooled = last[torch.arange(last.shape[0], device=last.device), position]
        else:
            weights = real.to(last.dtype).unsqueeze(-1)
            pooled = (last * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return Features(layers, pooled, real, last)


def _batch_rows(lengths: np.ndarray, batch_size: int, order: Order, seed: int, epoch: int) -> list[np.ndarray]:
    """The rows of each batch, in the order ``Surrogate.batches`` describes."""
    n = len(lengths)
    if order == "length":
        positions = np.argsort(lengths, kind="stable")
    elif order in ("shuffle", "grouped"):
        rng = np.random.default_rng([int(seed), int(epoch)])
        positions = rng.permutation(n)
        if order == "grouped":
            return length_grouped(positions, lengths, batch_size, rng.permutation)
    elif order == "given":
        positions = np.arange(n)
    else:
        raise DataError(f"batch order {order!r} is not known: use 'length', 'shuffle', 'grouped' or 'given'")
    return [positions[start : start + batch_size] for start in range(0, n, batch_size)]


def length_grouped(
    positions: Sequence[int] | np.ndarray, lengths: Sequence[int] | np.ndarray, batch_size: int, permutation: Any
) -> list[np.ndarray]:
    """Batches of similar lengths from shuffled ``positions``: groups of ``GROUP_BATCHES`` batches sorted by
    length (stable) and batched; the batches are then reordered by ``permutation(number of batches)``, so a
    long batch is not always last in its group.
    """
    positions = np.asarray(positions, dtype=np.int64)
    lengths = np.asarray(lengths)
    group = batch_size * GROUP_BATCHES
    batches = []
    for start in range(0, len(positions), group):
        chunk = positions[start : start + group]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in permutation(len(batches))]


def _texts_of(examples: Examples | Sequence[str]) -> tuple[Sequence[str], Sequence[str] | None]:
    if isinstance(examples, Examples):
        return examples.texts, examples.text_pairs
    if isinstance(examples, str):
        raise DataError("expected a list of texts, got one string")
    return list(examples), None


# -- loading -------------------------------------------------------------------------------------
_CACHE: dict[tuple[str, str], Surrogate] = {}


def detect_family(config: Any) -> Family:
    """encoder-decoder (T5...), decoder (GPT-2, Llama...) or encoder (BERT...) from a model config."""
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", "")
    # BERT-likes also have a causal-LM class; a model type with no masked-LM class is decoder-only.
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "decoder"
    return "encoder"


def _max_positions(config: Any, tokenizer: Any) -> int:
    limits = [
        int(v)
        for key in ("max_position_embeddings", "n_positions")
        if isinstance(v := getattr(config, key, None), int) and v > 0
    ]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits) if limits else 512


def load_surrogate(name: str, device: str = "auto") -> Surrogate:
    """Load (once per process) the surrogate ``name``: an alias (``minilm``), a local folder or a hub id."""
    from fute_kit_hf.assets import resolve_model
    from fute_kit_hf.device import resolve_device

    path = resolve_model(name)
    torch_device = resolve_device(device)
    key = (path, str(torch_device))
    if key not in _CACHE:
        import torch

        # Loading may initialise weights missing from the folder (a pooler...): keep the caller's RNG as it was.
        with torch.random.fork_rng(devices=[torch_device] if torch_device.type == "cuda" else []):
            _CACHE[key] = _load(name, path, torch_device)
    return _CACHE[key]


def _load(name: str, path: str, device: Any) -> Surrogate:
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    local = Path(path)
    if path.startswith((".", "/", "~")) and not local.exists():
        raise SurrogateError(f"surrogate folder {path!r} does not exist: check [space] surrogate")
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise SurrogateError(
            f"surrogate {name!r} could not be loaded from {path!r}: {exc}. Give a folder with config.json, "
            "weights and a tokenizer, a hub id (needs the internet), or the alias 'minilm'"
        ) from exc
    family = detect_family(config)
    try:
        if family == "encoder-decoder":
            try:
                from transformers import AutoModelForTextEncoding

                model = AutoModelForTextEncoding.from_pretrained(path, dtype=torch.float32)
            except (ValueError, ImportError):
                model = AutoModel.from_pretrained(path, dtype=torch.float32).get_encoder()
        else:
            model = AutoModel.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise SurrogateError(f"surrogate {name!r}: weights in {path!r} could not be loaded: {exc}") from exc
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise SurrogateError(f"surrogate {name!r}: tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()
    model.requires_grad_(False)  # pristine: methods train copies
    hidden = int(getattr(model.config, "hidden_size", 0) or getattr(config, "d_model", 0))
    layers = int(getattr(model.config, "num_hidden_layers", 0) or getattr(config, "num_layers", 0))
    if not hidden or not layers:
        raise SurrogateError(f"surrogate {name!r}: cannot read hidden size / number of layers from its config")
    return Surrogate(
        name=name,
        path=path,
        tokenizer=tokenizer,
        backbone=model,
        family=family,
        hidden_size=hidden,
        num_layers=layers,
        device=device,
        max_positions=_max_positions(config, tokenizer),
    )


def clear_cache() -> None:
    """Forget loaded surrogates (tests that rewrite a folder in place)."""
    _CACHE.clear()


# -- heads ---------------------------------------------------------------------------------------
def head_seed(seed: int, num_outputs: int) -> int:
    """The generator seed of a head: derived from (space seed, number of outputs) only."""
    digest = hashlib.sha256(f"fute-head:{int(seed)}:{int(num_outputs)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def make_head(hidden_size: int, num_outputs: int, seed: int, device: Any = None) -> torch.nn.Linear:
    """A linear head with weights ~ N(0, 0.02) drawn on the CPU from (seed, num_outputs), bias zero.

    Same space + same number of classes => same initial head, whatever the device or global RNG.
    """
    import torch

    if num_outputs < 1:
        raise DataError(f"a head needs at least one output, got {num_outputs}")
    generator = torch.Generator(device="cpu").manual_seed(head_seed(seed, num_outputs))
    # skip_init: Linear's own initialisation would draw from (and move) the global RNG.
    head = torch.nn.utils.skip_init(torch.nn.Linear, hidden_size, num_outputs)
    with torch.no_grad():
        head.weight.copy_(torch.randn(num_outputs, hidden_size, generator=generator) * 0.02)
        head.bias.zero_()
    return head.to(device) if device is not None else head
