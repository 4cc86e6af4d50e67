"""The ``hf-prompted`` model source: a causal (or encoder-decoder) LM plus a prompt with label words.

How a soft label is read (FUTE's "LLM + prompt = one model"):

1. Each input is written into the prompt template (``{text}``, or ``{text_a}`` and ``{text_b}`` for pairs).
   With a chat template (SmolLM2 has one) the prompt is the user turn, after the optional system message and
   the few-shot examples as earlier user/assistant turns, rendered with ``add_generation_prompt=True``;
   without one, the pieces are joined as plain text (few-shot answers follow their prompt after a space).
   An optional ``answer_prefix`` ("The sentiment of this review is") is written as the start of the answer:
   small chat models tend to open with "The ..." otherwise, and the label word must be the next token.
2. One forward pass per batch (left padding, explicit position ids) gives the next-token logits at the last
   position. If the most likely next token is pure whitespace (a newline, a space), it is appended and the pass
   repeated, at most ``skip_whitespace`` times: the first generated step whose top token is not whitespace is
   read, as in the reference code.
3. Each label word is tokenised in these variants: the word as written, all lower-case, and with a capital first
   letter, each with and without a leading space (up to six strings). The FIRST sub-token of each variant is
   kept (a leading sub-token that is pure whitespace is skipped). A class's score is the max logit over the
   tokens of all its words; the soft label is the softmax over classes. Two classes sharing a token is an error
   raised before any inference.
4. The share of inputs whose most likely next token is none of the label tokens is recorded as
   ``off_label_top1``: a high share means the prompt does not make the model answer with a label word.

The reference floored class scores at zero; that quirk is not reproduced.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from fute_kit.plugin import (
    CALIBRATION_HELP,
    Calibration,
    DataError,
    Examples,
    FuteError,
    RunContext,
    calibrate_and_record,
    option,
)


class PromptError(FuteError, ValueError):
    """A prompt template, label words or few-shot examples that cannot work."""


def _placeholders(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise PromptError(
            f"prompt {template!r} is not a valid template ({exc}); write literal braces as {{{{ }}}}"
        ) from exc


def _validate_prompt(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    names = _placeholders(value)
    if names not in ({"text"}, {"text_a", "text_b"}):
        raise PromptError(
            f"prompt must contain {{text}} (single texts) or both {{text_a}} and {{text_b}} (pairs); "
            f"it has {sorted(names) or 'no placeholder'}"
        )


def _validate_labels(instance: Any, attribute: attrs.Attribute, value: Mapping[str, Any]) -> None:
    if len(value) < 2:
        raise PromptError(
            f"labels needs at least two classes, e.g. {{positive = ['great'], negative = ['bad']}}; got {dict(value)}"
        )
    for label, words in value.items():
        words = [words] if isinstance(words, str) else words
        if not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise PromptError(f"labels: class {label!r} needs a list of non-empty label words, got {words!r}")


def _validate_few_shot(instance: Any, attribute: attrs.Attribute, value: Sequence[Mapping[str, Any]]) -> None:
    for i, shot in enumerate(value):
        if "label" not in shot or shot["label"] not in instance.labels:
            raise PromptError(
                f"few_shot[{i}]: 'label' must be one of {list(instance.labels)}, got {shot.get('label')!r}"
            )
        fields = {"text"} if "text" in shot else {"text_a", "text_b"}
        if not fields <= set(shot):
            raise PromptError(f"few_shot[{i}]: needs 'text' (or 'text_a' and 'text_b') and 'label'")


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value}")


# -- label words ------------------------------------------------------------------------------------
def word_variants(word: str) -> list[str]:
    """The strings a label word is looked up as: as written, lower-case, Capitalised; each with and without
    a leading space (duplicates removed, order kept)."""
    core = word.strip()
    forms = [core, core.lower(), core[:1].upper() + core[1:]]
    out: list[str] = []
    for form in forms:
        for variant in (form, " " + form):
            if variant not in out:
                out.append(variant)
    return out


def first_token(tokenizer: Any, text: str) -> int | None:
    """The id of the first sub-token of ``text`` that is not pure whitespace (None if there is none)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for token_id in ids:
        if tokenizer.decode([token_id]).strip():
            return int(token_id)
    return None


def label_token_ids(tokenizer: Any, labels: Mapping[str, Sequence[str] | str]) -> list[list[int]]:
    """Token ids of each class (first sub-tokens of every variant of its words); a shared token is an error."""
    owner: dict[int, tuple[str, str]] = {}
    per_class: list[list[int]] = []
    for label, words in labels.items():
        ids: list[int] = []
        for word in [words] if isinstance(words, str) else words:
            for variant in word_variants(word):
                token_id = first_token(tokenizer, variant)
                if token_id is None:
                    continue
                previous = owner.get(token_id)
                if previous is not None and previous[0] != label:
                    raise PromptError(
                        f"label words {previous[1]!r} (class {previous[0]!r}) and {word!r} (class {label!r}) both "
                        f"start with the token {tokenizer.decode([token_id])!r}: the model's first answer token "
                        "cannot tell them apart; choose label words that start differently"
                    )
                owner[token_id] = (label, word)
                if token_id not in ids:
                    ids.append(token_id)
        if not ids:
            raise PromptError(f"labels: the words of class {label!r} give no token")
        per_class.append(ids)
    return per_class


# -- model loading ------------------------------------------------------------------------------------
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def load_lm(
    path: str,
    device: str = "auto",
    dtype: str = "auto",
    cache_dir: str | Path | None = None,
    check_tokenizer: Callable[[Any], object] | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) of a causal or encoder-decoder LM, loaded once per process, device and dtype.

    ``check_tokenizer`` runs on the tokenizer before the model's weights are loaded (to fail early).
    """
    import torch

    from fute_kit_hf.assets import local_gguf
    from fute_kit_hf.device import resolve_device
    from fute_kit_hf.models import ModelLoadError, local_or_hub

    # A named GGUF model (fute llm fetch) loads with gguf_file= (weights dequantised on load, once per process).
    gguf = local_gguf(path)
    resolved = str(gguf.parent) if gguf else local_or_hub(path, cache_dir)
    extra = {"gguf_file": gguf.name} if gguf else {}
    torch_device = resolve_device(device)
    if dtype == "auto":  # half precision only where it is fast and well supported
        dtype = "bfloat16" if torch_device.type == "cuda" else "float32"
    key = (str(gguf or resolved), str(torch_device), dtype)
    if key not in _LOADED:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(resolved, **extra)
            if check_tokenizer is not None:
                check_tokenizer(tokenizer)
            config = AutoConfig.from_pretrained(resolved, **extra)
            cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
            model = cls.from_pretrained(resolved, dtype=getattr(torch, dtype), **extra)
        except PromptError:
            raise
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load {path!r} as a language model: {exc}. Give a local folder, an alias (smollm2) or a hub id"
            ) from exc
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        _LOADED[key] = (model.to(torch_device).eval(), tokenizer)
    elif check_tokenizer is not None:
        check_tokenizer(_LOADED[key][1])
    return _LOADED[key]


# -- the source -----------------------------------------------------------------------------------------
@attrs.frozen
class HFPrompted:
    """An LLM with a prompt and label words: soft labels from the next-token logits of the label words."""

    name = "hf-prompted"

    prompt: str = option(help="template with {text}, or {text_a} and {text_b} for pairs", validator=_validate_prompt)
    labels: dict[str, list[str]] = option(
        help="label words of each class, e.g. {positive = ['positive', 'great'], negative = ['negative']}",
        validator=_validate_labels,
    )
    path: str = option(
        "smollm2",
        help="causal or encoder-decoder LM: alias (smollm2), a fetched local model (fute llm list), folder or hub id",
    )
    system: str | None = option(None, help="system message (chat models) or preamble (plain prompts)")
    few_shot: list[dict[str, str]] = option(
        attrs.Factory(list),
        help="examples shown first: [{text = '...', label = 'positive'}, ...]",
        validator=_validate_few_shot,
    )
    answer_prefix: str = option(
        "", help="start of the answer written for the model, e.g. 'The sentiment of this review is'"
    )
    batch_size: int = option(16, help="prompts per forward pass", validator=_positive)
    max_length: int = option(256, help="prompt length limit in tokens; input texts are cut to fit", validator=_positive)
    skip_whitespace: int = option(
        2, help="whitespace tokens the model may emit before its answer is read", validator=attrs.validators.ge(0)
    )
    chat_template: bool = option(True, help="use the tokenizer's chat template when it has one")
    device: str = option("auto", help="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda'...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option(
        "auto", help="weights' precision (auto: bfloat16 on CUDA, else float32)"
    )
    calibrate: Calibration = option("none", help=CALIBRATION_HELP)

    @property
    def is_pair_prompt(self) -> bool:
        return "text_a" in _placeholders(self.prompt)

    def _check_inputs(self, inputs: Examples) -> None:
        if self.is_pair_prompt != inputs.is_pairs:
            wanted = "pairs (text_a, text_b)" if self.is_pair_prompt else "single texts"
            raise DataError(
                f"hf-prompted {self.path!r}: the prompt expects {wanted} but the inputs are "
                f"{'pairs' if inputs.is_pairs else 'single texts'}; use {{text}} for single texts, "
                "{text_a}/{text_b} for pairs"
            )

    def prompt_log_likelihood(self, inputs: Examples, context: RunContext) -> np.ndarray:
        """Mean token log-probability of the prompt filled with each input, for SPELL (Gonen et al. 2022).

        The prompt is scored as written, in plain text (system message, few-shot examples, the filled template
        and the answer prefix, as without a chat template): the chat template's own markup is the same for every
        prompt of the LLM and nearly certain, so it would only dilute the mean. The first token is not scored.
        """
        self._check_inputs(inputs)
        model, tokenizer = load_lm(self.path, self.device, self.dtype, context.cache_dir)
        if getattr(model.config, "is_encoder_decoder", False):
            raise NotImplementedError(f"{self.path!r} is an encoder-decoder model: it gives no likelihood of its input")
        prompts, _ = self._render_all(tokenizer, inputs, use_chat=False)
        return mean_token_log_likelihood(
            model, tokenizer, prompts, batch_size=self.batch_size, context=context, desc=f"scoring {self.path} prompts"
        )

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        self._check_inputs(inputs)
        check = partial(label_token_ids, labels=self.labels)  # colliding label words fail before the weights load
        model, tokenizer = load_lm(self.path, self.device, self.dtype, context.cache_dir, check_tokenizer=check)
        class_tokens = label_token_ids(tokenizer, self.labels)
        use_chat = self.chat_template and bool(getattr(tokenizer, "chat_template", None))
        prompts, truncated = self._render_all(tokenizer, inputs, use_chat)
        if truncated:
            context.record(
                "truncated_inputs",
                {"model": self.path, "count": truncated, "of": len(inputs), "max_length": self.max_length},
            )
        scores, top_ids = next_token_scores(
            model,
            tokenizer,
            prompts,
            class_tokens,
            add_special_tokens=not use_chat,
            batch_size=self.batch_size,
            skip_whitespace=self.skip_whitespace,
            context=context,
            desc=f"prompting {self.path}",
        )
        all_label_ids = {t for ids in class_tokens for t in ids}
        off = int(sum(1 for t in top_ids if int(t) not in all_label_ids))
        context.record("off_label_top1", {"share": off / len(inputs), "count": off, "of": len(inputs)})
        if off / len(inputs) > 0.5:
            context.logger.warning(
                "hf-prompted %r: for %d of %d inputs the most likely next token is no label word; "
                "the soft labels may say little about the model's answers",
                self.path,
                off,
                len(inputs),
            )
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        probs = calibrate_and_record(probs, self.calibrate, context)
        return inputs.with_predictions(probs, "soft", tuple(self.labels))

    # -- rendering --------------------------------------------------------------------------------
    def _answer_word(self, label: str) -> str:
        words = self.labels[label]
        return words if isinstance(words, str) else words[0]

    def _fill(self, text: str, pair: str | None) -> str:
        return self.prompt.format(text_a=text, text_b=pair) if pair is not None else self.prompt.format(text=text)

    def render(self, tokenizer: Any, text: str, pair: str | None, use_chat: bool) -> str:
        """The full prompt string for one input (chat template applied, or plain text), ending where the
        label word is expected: after the generation prompt and the ``answer_prefix``."""
        prefix = self.answer_prefix

        def answer(label: str) -> str:
            word = self._answer_word(label)
            return f"{prefix} {word}" if prefix else word

        shots = [
            (self._fill(s.get("text", s.get("text_a", "")), s.get("text_b")), answer(s["label"])) for s in self.few_shot
        ]
        query = self._fill(text, pair)
        if use_chat:
            messages = [{"role": "system", "content": self.system}] if self.system else []
            for question, reply in shots:
                messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
            messages.append({"role": "user", "content": query})
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefix
        separator = "\n" if prefix else " "
        parts = [self.system] if self.system else []
        parts += [f"{question}{separator}{reply}" for question, reply in shots]
        parts.append(f"{query}{separator}{prefix}" if prefix else query)
        return "\n\n".join(parts)

    def _render_all(self, tokenizer: Any, inputs: Examples, use_chat: bool) -> tuple[list[str], int]:
        """Prompts for every input, the input texts cut so that each prompt fits ``max_length`` tokens."""
        pairs = inputs.text_pairs
        empty = self.render(tokenizer, "", "" if pairs is not None else None, use_chat)
        overhead = len(tokenizer(empty, add_special_tokens=not use_chat)["input_ids"])
        budget = self.max_length - overhead
        if budget < 4:
            raise PromptError(
                f"hf-prompted {self.path!r}: the prompt without the input already takes {overhead} tokens; "
                f"raise max_length (now {self.max_length}) or shorten the prompt, system message or few-shot examples"
            )
        first = tokenizer(list(inputs.texts), add_special_tokens=False)["input_ids"]
        second = tokenizer(list(pairs), add_special_tokens=False)["input_ids"] if pairs is not None else None
        prompts, truncated = [], 0
        for i, ids_a in enumerate(first):
            ids_b = second[i] if second is not None else []
            len_a, len_b = len(ids_a), len(ids_b)
            if len_a + len_b > budget:
                truncated += 1
                # Cut the longer text first (longest-first truncation) so both keep what they can.
                while len_a + len_b > budget:
                    if len_a >= len_b:
                        len_a -= 1
                    else:
                        len_b -= 1
            text = inputs.texts[i] if len_a == len(ids_a) else tokenizer.decode(ids_a[:len_a])
            pair = None
            if pairs is not None:
                pair = pairs[i] if len_b == len(ids_b) else tokenizer.decode(ids_b[:len_b])
            prompts.append(self.render(tokenizer, text, pair, use_chat))
        return prompts, truncated


def next_token_scores(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    class_tokens: Sequence[Sequence[int]],
    *,
    add_special_tokens: bool,
    batch_size: int,
    skip_whitespace: int,
    context: RunContext,
    desc: str = "prompting",
) -> tuple[np.ndarray, np.ndarray]:
    """Class scores (max logit over each class's tokens) at the answer position of every prompt, and the
    most likely token there. Prompts are sorted by length and left-padded per batch."""
    import torch

    encoded = tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
    device = next(model.parameters()).device
    flat = torch.tensor([t for ids in class_tokens for t in ids], device=device)
    owner = torch.tensor([c for c, ids in enumerate(class_tokens) for _ in ids], device=device)
    scores = np.zeros((len(prompts), len(class_tokens)), dtype=np.float64)
    top_ids = np.zeros(len(prompts), dtype=np.int64)
    with torch.inference_mode():
        for idx, batch in _padded_batches(tokenizer, encoded, batch_size, "left", device, context, desc):
            logits = _answer_logits(model, tokenizer, batch["input_ids"], batch["attention_mask"], skip_whitespace)
            label_logits = logits[:, flat]
            per_class = torch.full((len(idx), len(class_tokens)), float("-inf"), device=device, dtype=logits.dtype)
            per_class = per_class.scatter_reduce(1, owner.expand(len(idx), -1), label_logits, reduce="amax")
            scores[idx] = per_class.double().cpu().numpy()
            top_ids[idx] = logits.argmax(dim=-1).cpu().numpy()
    return scores, top_ids


def mean_token_log_likelihood(
    model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int, context: RunContext, desc: str = "scoring"
) -> np.ndarray:
    """Each text's mean log-probability of its tokens after the first (a causal LM; texts sorted by length and
    right-padded per batch)."""
    import torch

    encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    short = [i for i, ids in enumerate(encoded) if len(ids) < 2]
    if short:
        raise PromptError(f"text {short[0]} has {len(encoded[short[0]])} token: a likelihood needs at least two")
    device = next(model.parameters()).device
    result = np.zeros(len(texts), dtype=np.float64)
    with torch.inference_mode():
        for idx, batch in _padded_batches(tokenizer, encoded, batch_size, "right", device, context, desc):
            logits = model(**batch, use_cache=False).logits[:, :-1].float()
            targets, mask = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:].float()
            token_lp = -torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            result[idx] = ((token_lp * mask).sum(-1) / mask.sum(-1)).double().cpu().numpy()
    return result


def _padded_batches(
    tokenizer: Any,
    encoded: Sequence[Sequence[int]],
    batch_size: int,
    side: str,
    device: Any,
    context: RunContext,
    desc: str,
) -> Iterator[tuple[np.ndarray, Any]]:
    """(indices, padded tensors) of batches of similar length: the token lists sorted longest first."""
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in context.progress(chunks, total=len(chunks), desc=desc):
        padded = tokenizer.pad(
            {"input_ids": [encoded[i] for i in idx]}, padding=True, padding_side=side, return_tensors="pt"
        )
        yield idx, padded.to(device)


def _forward_last(model: Any, input_ids: Any, attention_mask: Any, decoder_ids: Any | None) -> Any:
    """Logits at the last position, with position ids that ignore the left padding."""
    if decoder_ids is not None:  # encoder-decoder: the answer is the decoder's next token
        out = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_ids)
        return out.logits[:, -1, :].float()
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    return out.logits[:, -1, :].float()


def _answer_logits(model: Any, tokenizer: Any, input_ids: Any, attention_mask: Any, skip_whitespace: int) -> Any:
    """Next-token logits; rows whose top token is whitespace take it and are read one step later."""
    import torch

    decoder_ids = None
    if getattr(model.config, "is_encoder_decoder", False):
        start = model.config.decoder_start_token_id
        decoder_ids = torch.full((input_ids.shape[0], 1), int(start), device=input_ids.device, dtype=torch.long)
    logits = _forward_last(model, input_ids, attention_mask, decoder_ids)
    for _ in range(skip_whitespace):
        top = logits.argmax(dim=-1)
        blank = torch.tensor(
            [not tokenizer.decode([int(t)]).strip() and int(t) not in tokenizer.all_special_ids for t in top.tolist()],
            device=logits.device,
        )
        if not bool(blank.any()):
            break
        rows = blank.nonzero().squeeze(-1)
        if decoder_ids is not None:
            decoder_ids = torch.cat(
                [decoder_ids, torch.where(blank.unsqueeze(-1), top.unsqueeze(-1), decoder_ids[:, -1:])], -1
            )
            logits[rows] = _forward_last(model, input_ids[rows], attention_mask[rows], decoder_ids[rows])
        else:
            input_ids = torch.cat(
                [input_ids, torch.where(blank.unsqueeze(-1), top.unsqueeze(-1), input_ids[:, -1:])], -1
            )
            attention_mask = torch.cat([attention_mask, blank.unsqueeze(-1).to(attention_mask.dtype)], -1)
            logits[rows] = _forward_last(model, input_ids[rows], attention_mask[rows], None)
    return logits


def prompt_accuracy(predictions: Examples, gold: Examples) -> float:
    """Share of inputs where the prompted model's most likely class is the gold label (same inputs, same order)."""
    if gold.label_kind != "hard" or predictions.label_kind != "soft":
        raise DataError("prompt_accuracy needs soft predictions and hard gold labels")
    if predictions.texts != gold.texts:
        raise DataError("prompt_accuracy: predictions and gold labels are not of the same inputs")
    index = {name: i for i, name in enumerate(predictions.label_names)}
    missing = [n for n in gold.label_names if n not in index]
    if missing:
        raise DataError(f"prompt_accuracy: gold classes {missing} have no label words in the prompt's labels")
    gold_ids = np.array([index[gold.label_names[g]] for g in gold.labels])
    return float(np.mean(predictions.labels.argmax(axis=1) == gold_ids))
