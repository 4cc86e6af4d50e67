"""Dataset sources: ``files`` on every format, ``hf-datasets`` through the csv builder, and ``builtin``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fute_kit.errors import DataError, OptionsError
from fute_kit.testing import check_dataset_source
from fute_kit_hf.datasets import (
    ZOO_GROUPS,
    BuiltinDataset,
    FilesDataset,
    HFDatasetsDataset,
    builtin_index,
    builtin_zoo,
)

FRAME = pd.DataFrame(
    {
        "sentence": ["good film", "bad film", "fine plot", "awful acting", "great cast", None],
        "other": ["a", "b", "c", "d", "e", "f"],
        "label": [1, 0, 1, 0, 1, 0],
        "score": [0.5, 1.25, 2.0, 3.5, 4.75, 1.0],
        "split": ["train", "train", "train", "test", "test", "train"],
    }
)
WRITERS = {
    "csv": lambda f, p: f.to_csv(p, index=False),
    "tsv": lambda f, p: f.to_csv(p, sep="\t", index=False),
    "json": lambda f, p: f.to_json(p, orient="records"),
    "jsonl": lambda f, p: f.to_json(p, orient="records", lines=True),
    "parquet": lambda f, p: f.to_parquet(p),
}
COMPRESSION_SUFFIXES = {"": None, ".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}


def _write(tmp_path: Path, fmt: str, suffix: str = "", frame: pd.DataFrame = FRAME) -> Path:
    path = tmp_path / f"data.{fmt}{suffix}"
    if fmt == "parquet" and suffix:
        import bz2
        import gzip
        import io
        import lzma
        import zipfile

        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        raw = buffer.getvalue()
        if suffix == ".zip":
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("data.parquet", raw)
        else:
            path.write_bytes({".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix](raw))
        return path
    WRITERS[fmt](frame, path)  # pandas compresses by the file name's ending
    return path


@pytest.mark.parametrize("suffix", list(COMPRESSION_SUFFIXES))
@pytest.mark.parametrize("fmt", list(WRITERS))
def test_files_every_format(fmt: str, suffix: str, tmp_path: Path, hf_context: Any) -> None:
    path = _write(tmp_path, fmt, suffix)
    examples = FilesDataset(path=str(path), text="sentence", label="label").load(hf_context)
    assert examples.texts == ("good film", "bad film", "fine plot", "awful acting", "great cast")
    assert examples.label_kind == "hard" and examples.label_names == ("0", "1")
    assert examples.labels.tolist() == [1, 0, 1, 0, 1]
    assert hf_context.details["dropped_rows"]["rows"] == 1  # the row without a text


def test_files_pairs_regression_split_and_names(tmp_path: Path, hf_context: Any) -> None:
    path = str(_write(tmp_path, "csv"))
    pairs = FilesDataset(path=path, text=["sentence", "other"], label="label", split="train").load(hf_context)
    assert pairs.is_pairs and pairs.text_pairs == ("a", "b", "c")
    regression = FilesDataset(path=path, text="other", label="score").load(hf_context)
    assert regression.label_kind == "regression" and regression.labels.dtype == np.float64
    assert regression.labels[1] == 1.25
    forced = FilesDataset(path=path, text="other", label="score", label_kind="hard").load(hf_context)
    assert forced.label_kind == "hard" and len(forced.label_names) == 6
    named = FilesDataset(path=path, text="sentence", label="label", label_names=["neg", "pos"]).load(hf_context)
    assert named.label_names == ("neg", "pos") and named.labels.tolist() == [1, 0, 1, 0, 1]
    unlabeled = FilesDataset(path=path, text="other").load(hf_context)
    assert unlabeled.label_kind == "none" and len(unlabeled) == 6


def test_files_string_labels_and_literal_na_texts(tmp_path: Path, hf_context: Any) -> None:
    frame = pd.DataFrame({"text": ["NA", "null", "ok", "fine"], "label": ["yes", "no", "no", "yes"]})
    path = _write(tmp_path, "csv", frame=frame)
    examples = FilesDataset(path=str(path), label="label").load(hf_context)
    assert examples.texts == ("NA", "null", "ok", "fine")  # texts that look like missing values stay texts
    assert examples.label_names == ("no", "yes")


def test_files_limit_is_a_reproducible_sample(tmp_path: Path, hf_context: Any) -> None:
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(50)], "label": [i % 3 for i in range(50)]})
    path = str(_write(tmp_path, "jsonl", frame=frame))
    first = FilesDataset(path=path, label="label", limit=10, seed=1).load(hf_context)
    assert len(first) == 10
    assert (
        first.fingerprint() == FilesDataset(path=path, label="label", limit=10, seed=1).load(hf_context).fingerprint()
    )
    assert (
        first.fingerprint() != FilesDataset(path=path, label="label", limit=10, seed=2).load(hf_context).fingerprint()
    )
    check_dataset_source(FilesDataset(path=path, label="label", limit=10), hf_context)


def test_files_errors_name_the_problem(tmp_path: Path, hf_context: Any) -> None:
    path = str(_write(tmp_path, "csv"))
    with pytest.raises(DataError, match=r"missing\.csv"):
        FilesDataset(path=str(tmp_path / "missing.csv")).load(hf_context)
    with pytest.raises(DataError, match=r"no column 'text'; columns present: 'sentence', 'other'"):
        FilesDataset(path=path).load(hf_context)
    with pytest.raises(DataError, match="no column 'labels'"):
        FilesDataset(path=path, text="sentence", label="labels").load(hf_context)
    with pytest.raises(DataError, match=r"no rows with split = 'dev'; values present: \['test', 'train'\]"):
        FilesDataset(path=path, text="sentence", split="dev").load(hf_context)
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(DataError, match="no rows"):
        FilesDataset(path=str(empty), label="label").load(hf_context)
    all_missing = _write(tmp_path, "jsonl", frame=pd.DataFrame({"text": ["a", "b"], "label": [None, None]}))
    with pytest.raises(DataError, match="every one of the 2 rows"):
        FilesDataset(path=str(all_missing), label="label").load(hf_context)
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    with pytest.raises(DataError, match="format"):
        FilesDataset(path=str(odd)).load(hf_context)
    with pytest.raises(DataError, match="label_names"):
        FilesDataset(path=path, text="sentence", label="label", label_names=["only-one"]).load(hf_context)


def test_files_options_are_checked_before_work(fute_registry: Any) -> None:
    import fute_kit_hf

    registry = fute_registry(fute_kit_hf)
    with pytest.raises(OptionsError) as info:
        registry.build("dataset_source", "files", {"pth": "x.csv", "label_kind": "soft", "limit": 0})
    message = str(info.value)
    assert "did you mean path" in message and "label_kind" in message and "limit" in message
    with pytest.raises(OptionsError, match="two column names"):
        registry.build("dataset_source", "files", {"path": "x.csv", "text": ["a", "b", "c"]})


def test_hf_datasets_through_the_csv_builder(tmp_path: Path, hf_context: Any) -> None:
    path = str(_write(tmp_path, "csv"))
    source = HFDatasetsDataset(path="csv", data_files=path, text="sentence", label="label")
    examples = check_dataset_source(source, hf_context)
    assert examples.texts[:2] == ("good film", "bad film") and examples.labels.tolist() == [1, 0, 1, 0, 1]
    pairs = HFDatasetsDataset(path="csv", data_files={"train": path}, text=["sentence", "other"]).load(hf_context)
    assert pairs.is_pairs and pairs.label_kind == "none"
    with pytest.raises(DataError, match="no column 'nope'"):
        HFDatasetsDataset(path="csv", data_files=path, text="nope").load(hf_context)
    with pytest.raises(DataError, match="validation"):
        HFDatasetsDataset(path="csv", data_files=path, split="validation", text="sentence").load(hf_context)


def test_hf_datasets_class_label_names(tmp_path: Path, hf_context: Any) -> None:
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    data = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 0, 1]}, features=features)
    folder = tmp_path / "saved"
    data.to_parquet(str(folder / "train.parquet"))
    folder_source = HFDatasetsDataset(path=str(folder), label="label")
    examples = folder_source.load(hf_context)
    # A parquet folder keeps the ClassLabel in its schema metadata.
    assert examples.label_names == ("neg", "pos") and examples.labels.tolist() == [1, 0, 1]


# -- builtin ------------------------------------------------------------------------------------------
LABELLED = {
    "bbc-topic": ("business", "entertainment", "politics", "sport", "tech"),
    "rt-sentiment": ("negative", "positive"),
    "rt-subjectivity": ("objective", "subjective"),
    "convention-party": ("democrat", "republican"),
}


def test_builtin_index_lists_the_shipped_sets() -> None:
    index = builtin_index()
    assert set(LABELLED) | {"unlabeled"} <= set(index)
    assert all(meta.get("description") for meta in index.values())


@pytest.mark.parametrize("name", list(LABELLED))
def test_builtin_labelled_sets(name: str, hf_context: Any) -> None:
    train = check_dataset_source(BuiltinDataset(dataset=name), hf_context)
    test = BuiltinDataset(dataset=name, split="test").load(hf_context)
    everything = BuiltinDataset(dataset=name, split=None).load(hf_context)
    assert train.label_names == LABELLED[name]
    assert (len(train), len(test), len(everything)) == (800, 200, 1000)
    assert np.all(np.bincount(train.labels) == 800 // len(LABELLED[name]))  # balanced
    assert not set(train.texts) & set(test.texts)


def test_builtin_unlabeled_is_the_default_and_disjoint(hf_context: Any) -> None:
    unlabeled = BuiltinDataset().load(hf_context)
    genres = BuiltinDataset(dataset="unlabeled-genres").load(hf_context)
    assert unlabeled.label_kind == genres.label_kind == "none"
    assert (len(unlabeled), len(genres)) == (2000, 2100)
    labelled_texts = set()
    for name in LABELLED:
        labelled_texts |= set(BuiltinDataset(dataset=name, split=None).load(hf_context).texts)
    assert not set(unlabeled.texts) & labelled_texts
    assert not set(genres.texts) & labelled_texts
    sample = BuiltinDataset(limit=100, seed=3).load(hf_context)
    assert len(sample) == 100 and set(sample.texts) <= set(unlabeled.texts)
    # The corpus of every genre holds the opinionated origins that `unlabeled` lacks, in equal shares.
    index = builtin_index()["unlabeled-genres"]
    assert set(index["origins"]) >= {"amazon_reviews", "nyt_editorials", "tweets", "debates_2016"}
    assert set(index["origins"].values()) == {300}


def test_builtin_unknown_name_lists_the_available(hf_context: Any) -> None:
    with pytest.raises(DataError, match=r"available: .*rt-sentiment \(Rotten Tomatoes"):
        BuiltinDataset(dataset="sst2").load(hf_context)
    with pytest.raises(DataError, match="values present"):
        BuiltinDataset(dataset="rt-sentiment", split="dev").load(hf_context)


# -- the task zoo -----------------------------------------------------------------------------------
ZOO_NAMES = list(builtin_zoo())


def test_builtin_zoo_lists_related_groups() -> None:
    zoo = builtin_zoo()
    assert len(zoo) >= 16  # the four original sets and at least 12 more
    assert all(task.name == name for name, task in zoo.items())
    groups = {group: [name for name, task in zoo.items() if task.group == group] for group in ZOO_GROUPS}
    # Related tasks come in groups of several, and unrelated ones exist, so that transfer has structure to find.
    assert all(len(groups[g]) >= 4 for g in ("sentiment", "topic", "authorship")) and groups["other"]
    assert {"rt-sentiment", "amazon-sentiment", "tweet-sentiment"} <= set(groups["sentiment"])
    assert {"bbc-topic", "brown-genre", "reuters-grain"} <= set(groups["topic"])
    assert {"convention-party", "news-outlet", "tweet-device"} <= set(groups["authorship"])
    assert list(builtin_zoo("topic")) == groups["topic"]
    assert list(zoo) == [name for group in ZOO_GROUPS for name in groups[group]]  # by group, then name
    assert "unlabeled" not in ZOO_NAMES and "unlabeled-genres" not in ZOO_NAMES
    assert all(meta.get("source") and meta.get("licence") for meta in builtin_index().values())
    with pytest.raises(DataError, match="unknown zoo group 'genre'"):
        builtin_zoo("genre")


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_builtin_zoo_set_loads_both_splits(name: str, hf_context: Any) -> None:
    task = builtin_zoo()[name]
    train = BuiltinDataset(dataset=name).load(hf_context)
    test = BuiltinDataset(dataset=name, split="test").load(hf_context)
    assert 2 <= len(train.label_names) <= 5 and train.label_names == test.label_names == task.labels
    assert (len(train), len(test)) == (task.n_train, task.n_test)
    assert 200 <= len(train) <= 1000 and len(test) >= 50
    assert np.all(np.bincount(train.labels, minlength=len(task.labels)) == len(train) // len(task.labels))
    assert np.all(np.bincount(test.labels, minlength=len(task.labels)) == len(test) // len(task.labels))
    assert not set(train.texts) & set(test.texts)
    assert max(len(t) for t in train.texts + test.texts) <= 500


def test_builtin_sets_share_no_text(hf_context: Any) -> None:
    owner: dict[str, str] = {}
    for name in [*ZOO_NAMES, "unlabeled", "unlabeled-genres"]:
        who = "U" if name.startswith("unlabeled") else name  # the two U corpora share texts by design
        for text in set(BuiltinDataset(dataset=name, split=None).load(hf_context).texts):
            key = " ".join(text.split()).casefold()
            assert owner.setdefault(key, who) == who, f"{name} and {owner[key]} share {text[:60]!r}"
