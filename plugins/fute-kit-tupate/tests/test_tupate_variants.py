"""Every variant on every architecture family: what is trained changes, what is frozen does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from fute_kit.components import RunContext
from fute_kit.examples import Examples

FAMILIES = ("bert", "t5", "gpt2", "llama")
VARIANTS = ("prompt", "prefix", "lora", "bitfit")
NO_BIASES = {"t5", "llama"}  # BitFit has nothing to train there


def toy_examples(n: int = 24) -> Examples:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    texts = [f"the film was {words[i % 6]} and the cast was {words[(i * 5) % 6]} indeed" for i in range(n)]
    labels = ["positive" if i % 6 < 3 else "negative" for i in range(n)]
    return Examples.from_hard_labels(texts, labels, name="toy")


def _base_name(name: str) -> str:
    return name.replace(".base_layer", "")


@pytest.fixture(scope="session")
def trained(tiny_model_dir: Callable[..., str]) -> Callable[[str, str], dict[str, Any]]:
    """Factory: (family, variant) → the surrogate, the tuned copy before/after training and the head."""
    from fute_kit_hf.surrogate import load_surrogate, make_head
    from fute_kit_hf.targets import make_targets
    from fute_kit_hf.training import Settings, train
    from fute_kit_tupate.tuners import TunedWithHead, setup_variant

    cache: dict[tuple[str, str], dict[str, Any]] = {}

    def factory(family: str, variant: str) -> dict[str, Any]:
        if (family, variant) in cache:
            return cache[family, variant]
        surrogate = load_surrogate(tiny_model_dir(family), "cpu")
        examples = toy_examples()
        tuned = setup_variant(surrogate, variant, length=4, init="vocab", rank=2, alpha=4.0, seed=0)
        before = tuned.snapshot()
        head = make_head(surrogate.hidden_size, 2, 0)
        head_before = head.weight.detach().clone()
        settings = Settings(
            epochs=2,
            learning_rate=1e-2,
            batch_size=8,
            warmup_fraction=0.0,
            weight_decay=0.0,
            max_grad_norm=1.0,
            early_stopping_fraction=0.0,
            patience=1,
            seed=0,
        )
        tokenized = surrogate.tokenize(examples, 32)
        trainable = TunedWithHead(tuned, head, head_learning_rate=1e-2)
        details = train(surrogate, trainable, tokenized, make_targets(examples, "ce", "cpu"), settings)
        cache[family, variant] = {
            "surrogate": surrogate,
            "tuned": tuned,
            "before": before,
            "head": head,
            "head_before": head_before,
            "details": details,
        }
        return cache[family, variant]

    return factory


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_tuned_parameters_change_and_frozen_ones_do_not(
    trained: Callable[[str, str], dict[str, Any]], family: str, variant: str
) -> None:
    if variant == "bitfit" and family in NO_BIASES:
        pytest.skip("no bias terms: covered by test_bitfit_without_biases_is_refused")
    run = trained(family, variant)
    tuned, before = run["tuned"], run["before"]
    assert tuned.params, "no tuned parameters"
    for name, param in tuned.params.items():
        assert not torch.equal(param.detach(), before[name]), f"{family}/{variant}: {name} did not change"
    assert not torch.equal(run["head"].weight.detach(), run["head_before"]), "the head did not change"
    pristine = dict(run["surrogate"].backbone.named_parameters())
    tuned_ids = {id(p) for p in tuned.params.values()}
    frozen = 0
    for name, param in tuned.model.named_parameters():
        if id(param) in tuned_ids:
            continue
        assert not param.requires_grad, f"{name} should be frozen"
        assert torch.equal(param.detach(), pristine[_base_name(name)]), f"{family}/{variant}: frozen {name} changed"
        frozen += 1
    assert frozen == len(pristine) - (len(tuned.params) if variant == "bitfit" else 0)
    # The pristine backbone was never touched (the tuned copy is private).
    assert all(not p.requires_grad for p in pristine.values())


@pytest.mark.parametrize("family", sorted(NO_BIASES))
def test_bitfit_without_biases_is_refused(tiny_model_dir: Callable[..., str], family: str) -> None:
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_tupate.tuners import VariantError, setup_variant

    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    with pytest.raises(VariantError, match="no bias terms"):
        setup_variant(surrogate, "bitfit", length=4, init="vocab", rank=2, alpha=4.0, seed=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_prefix_slot_receives_gradient(tiny_model_dir: Callable[..., str], family: str) -> None:
    """One slot per attention module the features use (T5: the encoder's), and each one gets a gradient."""
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_tupate.tuners import setup_variant

    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    tuned = setup_variant(surrogate, "prefix", length=3, init="random", rank=2, alpha=4.0, seed=1)
    assert len(tuned.prefix.slots) == surrogate.num_layers  # one self-attention per layer in these families
    batch = next(surrogate.batches(toy_examples(6), batch_size=6))
    tuned.pooled(surrogate, batch).pow(2).sum().backward()
    for name, param in tuned.params.items():
        assert param.grad is not None and float(param.grad.abs().sum()) > 0, f"{family}: {name} got no gradient"


def test_peft_prefix_tuning_misses_t5_slots(tiny_model_dir: Callable[..., str]) -> None:
    """Why prefix is not peft's: on T5 half of peft's prefix parameters never receive a gradient."""
    import transformers
    from peft import PrefixTuningConfig, get_peft_model

    model = transformers.T5ForConditionalGeneration.from_pretrained(tiny_model_dir("t5", head="lm"))
    peft_model = get_peft_model(model, PrefixTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3))
    ids = torch.tensor([[5, 6, 7, 8]])
    peft_model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss.backward()
    weight = peft_model.prompt_encoder["default"].embedding.weight  # (3, layers * 2 * d_model)
    per_slot = weight.grad.view(3, -1, model.config.d_model).abs().sum(dim=(0, 2))
    assert (per_slot == 0).any(), "peft now reaches every T5 prefix slot: consider using it"


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prefix_keeps_decoders_causal(tiny_model_dir: Callable[..., str], family: str) -> None:
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_tupate.tuners import setup_variant

    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    tuned = setup_variant(surrogate, "prefix", length=3, init="random", rank=2, alpha=4.0, seed=0)
    tuned.model.eval()
    ids = torch.tensor([[11, 12, 13, 14, 15]])
    other = ids.clone()
    other[0, -1] = 16
    with torch.no_grad():
        a = tuned.model(input_ids=ids).last_hidden_state
        b = tuned.model(input_ids=other).last_hidden_state
    torch.testing.assert_close(a[0, :-1], b[0, :-1])  # earlier tokens never see a later one
    assert not torch.allclose(a[0, -1], b[0, -1])


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_ignores_padding(tiny_model_dir: Callable[..., str], family: str) -> None:
    """A text's pooled features do not depend on how much padding its batch needs."""
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_tupate.tuners import setup_variant

    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    tuned = setup_variant(surrogate, "prefix", length=3, init="random", rank=2, alpha=4.0, seed=0)
    tuned.model.eval()
    texts = Examples(texts=["short one", "a much longer text that needs many more tokens than the other"])
    with torch.no_grad():
        together = {}
        for batch in surrogate.batches(texts, batch_size=2, order="given"):
            pooled = tuned.pooled(surrogate, batch)
            together = {int(i): pooled[r] for r, i in enumerate(batch.indices)}
        alone = next(surrogate.batches(texts.select([0]), batch_size=1))
        torch.testing.assert_close(tuned.pooled(surrogate, alone)[0], together[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("variant", "output", "shape"),
    [
        ("prompt", "matrix", (4, 32)),
        ("prompt", "mean", (32,)),
        ("prefix", "matrix", (4, 64)),
        ("prefix", "mean", (64,)),
    ],
)
def test_embedding_shapes(
    tiny_model_dir: Callable[..., str], hf_context: RunContext, variant: str, output: str, shape: tuple[int, ...]
) -> None:
    from fute_kit_tupate.method import TuPaTE

    method = TuPaTE(variant=variant, output=output, length=4, epochs=1, batch_size=8, early_stopping_fraction=0.0)
    result = method.embed(toy_examples(16), tiny_model_dir("bert"), hf_context)
    assert result.array.shape == shape
    assert result.array.dtype == np.float32
    assert result.details["embedding_shape"] == list(shape)


def test_lora_and_bitfit_embeddings_are_the_flattened_parameters(trained: Callable[[str, str], dict[str, Any]]) -> None:
    for variant in ("lora", "bitfit"):
        tuned = trained("bert", variant)["tuned"]
        flat = tuned.embedding("matrix")
        expected = torch.cat([p.detach().reshape(-1) for p in tuned.params.values()]).numpy()
        np.testing.assert_array_equal(flat, expected)
        assert flat.ndim == 1 and flat.size == tuned.size
    lora_names = list(trained("bert", "lora")["tuned"].params)
    assert all("lora_A" in n or "lora_B" in n for n in lora_names)
    assert not any("pooler" in n for n in trained("bert", "bitfit")["tuned"].params)  # unused by the features


def test_prefix_embedding_averages_layers(trained: Callable[[str, str], dict[str, Any]]) -> None:
    tuned = trained("bert", "prefix")["tuned"]
    matrix = tuned.embedding("matrix")
    keys = torch.stack([k.detach().permute(1, 0, 2).reshape(4, -1) for k in tuned.prefix.keys]).mean(dim=0)
    values = torch.stack([v.detach().permute(1, 0, 2).reshape(4, -1) for v in tuned.prefix.values]).mean(dim=0)
    np.testing.assert_allclose(matrix, torch.cat([keys, values], dim=1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(tuned.embedding("mean"), matrix.mean(axis=0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dropout", [False, True])
def test_the_frozen_surrogate_runs_dropout_only_when_asked(tiny_model_dir: Callable[..., str], dropout: bool) -> None:
    from fute_kit_hf.surrogate import load_surrogate, make_head
    from fute_kit_hf.targets import make_targets
    from fute_kit_hf.training import Settings, train
    from fute_kit_tupate.tuners import TunedWithHead, setup_variant

    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    examples = toy_examples(8)
    tuned = setup_variant(surrogate, "prompt", length=2, init="vocab", rank=2, alpha=4.0, seed=0)
    seen: list[bool] = []
    dropouts = [m for m in tuned.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts
    hooks = [m.register_forward_hook(lambda module, _i, _o: seen.append(module.training)) for m in dropouts]
    settings = Settings(1, 1e-2, 4, 0.0, 0.0, 1.0, 0.0, 1, 0, dropout=dropout)
    train(
        surrogate,
        TunedWithHead(tuned, make_head(surrogate.hidden_size, 2, 0), head_learning_rate=1e-2),
        surrogate.tokenize(examples, 16),
        make_targets(examples, "ce", "cpu"),
        settings,
    )
    for hook in hooks:
        hook.remove()
    # Evaluation passes (before/after training) always run without dropout; training steps follow the option.
    assert any(seen) is dropout


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_the_prompt_step_computes_no_weight_gradient_and_fused_attention_matches_eager(
    tiny_model_dir: Callable[..., str], family: str
) -> None:
    """What keeps the prompt step cheap (issue 20): the backward reaches the prompt through every layer's
    activations but computes no gradient for a frozen weight, and the attention is the fused kernel (SDPA,
    transformers' default), whose prompt gradient is eager attention's."""
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_tupate.tuners import setup_variant

    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    assert surrogate.backbone.config._attn_implementation == "sdpa"
    toy = toy_examples(8)
    texts = [text + " and so on" * (i % 4) for i, text in enumerate(toy.texts)]  # unequal lengths: padding
    examples = Examples.from_hard_labels(texts, [toy.label_names[int(k)] for k in toy.labels], name="toy")
    batch = next(surrogate.batches(surrogate.tokenize(examples, 32), 8, order="given"))
    assert not batch.inputs["attention_mask"].all(), "the batch should have padding for the mask to matter"
    gradients = {}
    for attention in ("sdpa", "eager"):
        tuned = setup_variant(surrogate, "prompt", length=4, init="vocab", rank=2, alpha=4.0, seed=0)
        tuned.model.eval()  # tupate's default: the frozen surrogate without dropout
        tuned.model.set_attn_implementation(attention)
        tuned.pooled(surrogate, batch).square().sum().backward()
        assert [n for n, p in tuned.model.named_parameters() if p.grad is not None] == []
        gradients[attention] = tuned.params["prompt"].grad.clone()
    assert gradients["sdpa"].abs().sum() > 0
    torch.testing.assert_close(gradients["sdpa"], gradients["eager"], rtol=1e-4, atol=1e-6)
