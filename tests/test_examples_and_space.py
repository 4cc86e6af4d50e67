"""Value types: examples, spaces and task embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from fute_kit import Examples, Provenance, Space, TaskEmbedding
from fute_kit.embedding import check_same_space
from fute_kit.errors import DataError, SpaceMismatchError


def test_hard_labels_from_strings() -> None:
    ex = Examples.from_hard_labels(["a", "b", "c"], ["y", "x", "y"])
    assert ex.label_names == ("x", "y") and ex.labels.tolist() == [1, 0, 1]
    assert ex.label_distribution().tolist() == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": [0, 1], "label_kind": "hard", "label_names": ("a", "b")}, "3 texts but 2 labels"),
        ({"labels": [[0.5, 0.4]] * 3, "label_kind": "soft"}, "sum to 1"),
        ({"labels": [0, 1, 5], "label_kind": "hard", "label_names": ("a", "b")}, "out of range"),
        ({"labels": [0.1, 0.2, 0.3], "label_kind": "none"}, "label_kind is 'none'"),
        ({"text_pairs": ["x"]}, "second texts"),
    ],
)
def test_bad_examples_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        Examples(texts=["a", "b", "c"], **kwargs)


def test_fingerprint_depends_on_content() -> None:
    a = Examples.from_hard_labels(["a", "b"], ["x", "y"])
    assert a.fingerprint() == Examples.from_hard_labels(["a", "b"], ["x", "y"]).fingerprint()
    assert a.fingerprint() != Examples.from_hard_labels(["a", "b"], ["y", "x"]).fingerprint()
    assert a.fingerprint() != a.unlabeled().fingerprint()


def test_sample_is_reproducible() -> None:
    ex = Examples(texts=[str(i) for i in range(100)])
    assert ex.sample(10, seed=3).texts == ex.sample(10, seed=3).texts
    assert ex.sample(10, seed=3).texts != ex.sample(10, seed=4).texts
    assert ex.sample(1000) is ex


def test_empty_examples_name_the_dataset() -> None:
    with pytest.raises(DataError, match="'news' are empty"):
        Examples(texts=[], name="news").require_nonempty()


def test_space_id_is_stable_and_option_order_free() -> None:
    a = Space("minilm", "taskemb", {"lr": 1e-4, "seed": 0})
    b = Space("minilm", "taskemb", {"seed": 0, "lr": 0.0001})
    assert a.id == b.id and a == b and hash(a) == hash(b)
    assert a.id != Space("minilm", "taskemb", {"lr": 1e-4, "seed": 1}).id


def test_an_added_option_at_its_old_behaviour_keeps_stored_spaces_valid() -> None:
    before = Space("minilm", "taskemb", {"seed": 0})
    same = Space("minilm", "taskemb", {"seed": 0, "batch_order": "shuffle"})  # computes what `before` computed
    other = Space("minilm", "taskemb", {"seed": 0, "batch_order": "grouped"})
    assert same.id == before.id and not same.differences(before)
    assert other.id != before.id and other.differences(before) == ["option batch_order: 'grouped' vs 'shuffle'"]


def _emb(space: Space, name: str = "x") -> TaskEmbedding:
    return TaskEmbedding(np.ones((2, 3)), "dataset", name, space, Provenance("fp", 1))


def test_comparing_across_spaces_is_an_error() -> None:
    a = _emb(Space("minilm", "taskemb", {"seed": 0}), "a")
    b = _emb(Space("minilm", "taskemb", {"seed": 1}), "b")
    with pytest.raises(SpaceMismatchError, match="option seed: 0 vs 1"):
        check_same_space([a, b])
    assert check_same_space([a, b], ignore=("seed",)) == a.space


def test_embedding_rejects_nan_and_is_read_only() -> None:
    with pytest.raises(ValueError, match="finite"):
        TaskEmbedding(np.array([np.nan]), "model", "m", Space("s", "m"), Provenance("fp", 1))
    emb = _emb(Space("s", "m"))
    with pytest.raises(ValueError):
        emb.array[0, 0] = 2.0
    assert emb.label == "dataset:x"


def test_device_is_not_part_of_the_space() -> None:
    cpu = Space("minilm", "taskemb", {"seed": 0, "device": "cpu"})
    gpu = Space("minilm", "taskemb", {"seed": 0, "device": "cuda"})
    assert cpu.id == gpu.id and cpu == gpu and not cpu.differences(gpu)
