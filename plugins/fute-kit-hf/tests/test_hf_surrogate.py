"""The surrogate layer: loading every family, batching, per-layer features, seeded heads."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from fute_kit.errors import DataError, FuteError
from fute_kit.examples import Examples
from fute_kit_hf.surrogate import SurrogateError, load_surrogate, make_head

FAMILIES = {"bert": "encoder", "t5": "encoder-decoder", "gpt2": "decoder", "llama": "decoder"}
TEXTS = [
    "a short one",
    "a somewhat longer sentence about films and actors",
    "mid length text here",
    "x",
    "the longest sentence of them all, with many words, commas, and a clause that goes on and on",
]


@pytest.mark.parametrize("family", FAMILIES)
def test_loads_every_family(family: str, tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    assert surrogate.family == FAMILIES[family]
    assert (surrogate.hidden_size, surrogate.num_layers) == (32, 2)
    assert surrogate.tokenizer.pad_token_id is not None
    assert not surrogate.backbone.training
    assert all(not p.requires_grad for p in surrogate.backbone.parameters())
    assert load_surrogate(tiny_model_dir(family), "cpu") is surrogate  # cached per process


def test_a_model_with_an_lm_head_loads_as_its_backbone(tiny_model_dir: Callable[..., str]) -> None:
    assert load_surrogate(tiny_model_dir("t5", head="lm"), "cpu").family == "encoder-decoder"
    assert load_surrogate(tiny_model_dir("gpt2", head="lm"), "cpu").family == "decoder"


def test_trainable_copy_leaves_the_backbone_pristine(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    copy = surrogate.trainable_copy()
    assert copy.training and all(p.requires_grad for p in copy.parameters())
    with torch.no_grad():
        next(copy.parameters()).add_(1.0)
    assert not torch.equal(next(copy.parameters()), next(surrogate.backbone.parameters()))


@pytest.mark.parametrize("family", FAMILIES)
def test_features_do_not_depend_on_padding(family: str, tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir(family), "cpu")
    batched = {}
    for batch in surrogate.batches(TEXTS, batch_size=5, max_length=64):
        features = surrogate.forward_features(surrogate.backbone, batch)
        assert len(features.layers) == 2
        assert all(layer.shape == (5, batch.inputs["input_ids"].shape[1], 32) for layer in features.layers)
        assert torch.equal(features.mask, batch.inputs["attention_mask"].bool())
        batched.update({int(i): (features.pooled[r], features.layers[0][r]) for r, i in enumerate(batch.indices)})
    for i, text in enumerate(TEXTS):
        alone = surrogate.forward_features(surrogate.backbone, next(surrogate.batches([text], 1, 64)))
        n = alone.layers[0].shape[1]
        torch.testing.assert_close(alone.pooled[0], batched[i][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(alone.layers[0][0], batched[i][1][:n], rtol=1e-4, atol=1e-5)


def test_pooling_is_mean_for_encoders_and_last_token_for_decoders(tiny_model_dir: Callable[..., str]) -> None:
    for family in ("bert", "gpt2"):
        surrogate = load_surrogate(tiny_model_dir(family), "cpu")
        batch = next(surrogate.batches(TEXTS[:2], 2, 64))
        f = surrogate.forward_features(surrogate.backbone, batch)
        lengths = batch.inputs["attention_mask"].sum(dim=1)
        for r in range(2):
            states = f.last[r, : lengths[r]]
            expected = states.mean(dim=0) if family == "bert" else states[-1]
            torch.testing.assert_close(f.pooled[r], expected)
        torch.testing.assert_close(f.layers[-1], f.last)


def test_batches_by_length_and_shuffled(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    tokenized = surrogate.tokenize(TEXTS, 64)
    sorted_rows = np.concatenate([b.indices for b in surrogate.batches(tokenized, 2, order="length")])
    assert np.all(np.diff(tokenized.lengths[sorted_rows]) >= 0)
    assert sorted(sorted_rows) == list(range(len(TEXTS)))

    def shuffled(seed: int, epoch: int = 0) -> list[int]:
        batches = surrogate.batches(tokenized, 2, order="shuffle", seed=seed, epoch=epoch)
        return np.concatenate([b.indices for b in batches]).tolist()

    assert shuffled(3) == shuffled(3)
    assert sorted(shuffled(3)) == list(range(len(TEXTS)))
    assert {tuple(shuffled(s)) for s in range(6)} != {tuple(shuffled(3))}
    assert shuffled(3, 0) != shuffled(3, 1) or shuffled(3, 1) != shuffled(3, 2)
    widths = [b.inputs["input_ids"].shape[1] for b in surrogate.batches(tokenized, 2, order="length")]
    assert widths == sorted(widths) and widths[0] < widths[-1]  # padded per batch, not to max_length


def test_grouped_batches_are_shuffled_batches_of_similar_lengths(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    texts = [" ".join(["word"] * (1 + (7 * i) % 23)) for i in range(64)]
    tokenized = surrogate.tokenize(texts, 64)

    def rows(order: str, seed: int = 0, epoch: int = 0) -> list[list[int]]:
        return [b.indices.tolist() for b in surrogate.batches(tokenized, 4, order=order, seed=seed, epoch=epoch)]

    def padded_tokens(batches: list[list[int]]) -> int:
        return sum(len(b) * int(tokenized.lengths[b].max()) for b in batches)

    grouped = rows("grouped")
    assert sorted(i for b in grouped for i in b) == list(range(64)) and grouped == rows("grouped")
    assert grouped != rows("grouped", epoch=1) and grouped != rows("grouped", seed=1)
    assert padded_tokens(grouped) < padded_tokens(rows("shuffle"))
    # each group of 8 batches holds the same examples as 32 consecutive examples of the shuffled order
    shuffled = [i for b in rows("shuffle") for i in b]
    assert sorted(i for b in grouped for i in b if i in shuffled[:32]) == sorted(shuffled[:32])
    assert all(len(set(b) & set(shuffled[:32])) in (0, 4) for b in grouped)


def test_truncation_is_counted_and_pairs_keep_segments(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    tokenized = surrogate.tokenize(TEXTS, 8)
    assert tokenized.truncated == int((surrogate.tokenize(TEXTS, 64).lengths > 8).sum()) > 0
    assert tokenized.lengths.max() == 8
    assert sum(b.truncated for b in surrogate.batches(tokenized, 2)) == tokenized.truncated
    pairs = Examples(texts=["premise one", "premise two"], text_pairs=["hypothesis", "another one"])
    batch = next(surrogate.batches(pairs, 2, 64))
    assert batch.inputs["token_type_ids"].max() == 1
    assert torch.isfinite(surrogate.forward_features(surrogate.backbone, batch).pooled).all()


def test_prompt_positions_are_attended_but_not_real(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("llama"), "cpu")
    batch = next(surrogate.batches(TEXTS[:2], 2, 64))
    plain = surrogate.forward_features(surrogate.backbone, batch)
    prompt = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    prompted = surrogate.forward_features(surrogate.backbone, batch, prompt=prompt)
    assert prompted.mask.shape[1] == plain.mask.shape[1] + 3
    assert not prompted.mask[:, :3].any() and torch.equal(prompted.mask[:, 3:], plain.mask)
    assert not torch.allclose(prompted.pooled, plain.pooled)


def test_heads_are_fixed_by_seed_and_outputs_only() -> None:
    state = torch.random.get_rng_state()
    a, b = make_head(16, 3, seed=0), make_head(16, 3, seed=0)
    assert torch.equal(state, torch.random.get_rng_state()), "head creation moved the global RNG"
    torch.manual_seed(123)
    c = make_head(16, 3, seed=0)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.weight, c.weight)
    assert torch.count_nonzero(a.bias) == 0
    assert not torch.allclose(make_head(16, 3, seed=1).weight, a.weight)
    assert not torch.allclose(make_head(16, 2, seed=0).weight, a.weight[:2])
    with pytest.raises(DataError):
        make_head(16, 0, seed=0)


def test_missing_or_broken_surrogate_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(FuteError, match="does not exist"):
        load_surrogate(str(tmp_path) + "/nowhere", "cpu")  # type: ignore[operator]
    (tmp_path / "config.json").write_text("{}")  # type: ignore[operator]
    with pytest.raises(SurrogateError, match="could not be loaded"):
        load_surrogate(str(tmp_path), "cpu")


def test_minilm_is_the_default_surrogate(minilm_dir: str) -> None:
    surrogate = load_surrogate("minilm", "cpu")
    assert (surrogate.family, surrogate.hidden_size, surrogate.num_layers) == ("encoder", 384, 6)
    assert surrogate.path == minilm_dir and surrogate.max_positions == 512
