"""Dataset sources: local files (``files``), the HuggingFace hub (``hf-datasets``), the shipped data (``builtin``).

All three turn a table into :class:`fute_kit.Examples` the same way (:func:`frame_to_examples`): one or two text
columns, an optional label column read as class labels or regression targets, rows with a missing text or label
dropped (and counted in the provenance), then an optional reproducible sample.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples, RunContext, option

if TYPE_CHECKING:
    import pandas as pd

LabelKindOption = Literal["auto", "hard", "regression"]

COMPRESSIONS: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _check_text_option(text: str | Sequence[str], where: str) -> list[str]:
    columns = [text] if isinstance(text, str) else list(text)
    if len(columns) not in (1, 2) or not all(isinstance(c, str) and c for c in columns):
        raise DataError(f"{where}: 'text' must be a column name or a list of two column names (pairs), got {text!r}")
    return columns


def _validate_text(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    _check_text_option(value, f"option {attribute.name!r}")


def _positive_or_none(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer or absent, got {value}")


# -- tables to examples ---------------------------------------------------------------------------
def frame_to_examples(
    frame: pd.DataFrame,
    *,
    text: str | Sequence[str],
    label: str | None,
    label_kind: LabelKindOption = "auto",
    label_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    where: str,
    context: RunContext | None = None,
    name: str = "",
) -> Examples:
    """Examples from a data frame: ``text`` (one column, or two for pairs) and an optional ``label`` column.

    ``class_names`` are names the data itself declares for integer labels (a ``datasets`` ClassLabel);
    ``label_names`` are the user's: names for integer labels 0..k-1, or the order of string labels.
    """
    columns = _check_text_option(text, where)
    wanted = columns + ([label] if label else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        present = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise DataError(f"{where}: no column {missing[0]!r}; columns present: {present}")
    if frame.empty:
        raise DataError(f"{where}: no rows: check the file, its split or filter")
    incomplete = frame[wanted].isna().any(axis=1).to_numpy()
    dropped = int(incomplete.sum())
    if dropped == len(frame):
        raise DataError(f"{where}: every one of the {len(frame)} rows lacks a text or a label (columns {wanted})")
    if dropped:
        frame = frame.loc[~incomplete]
        if context is not None:
            context.record("dropped_rows", {"source": where, "rows": dropped, "reason": "missing text or label"})
    texts = frame[columns[0]].astype(str).tolist()
    pairs = frame[columns[1]].astype(str).tolist() if len(columns) == 2 else None
    if not label:
        return Examples(texts=texts, text_pairs=pairs, name=name)
    values = frame[label]
    kind = _label_kind(values, label_kind, where, label)
    if kind == "regression":
        numbers = _as_numbers(values, where, label)
        return Examples(
            texts=texts, labels=numbers, label_kind="regression", label_names=(label,), text_pairs=pairs, name=name
        )
    labels, names = _hard_labels(values, label_names, class_names, where, label)
    return Examples(texts=texts, labels=labels, label_kind="hard", label_names=names, text_pairs=pairs, name=name)


def _as_numbers(values: pd.Series, where: str, label: str) -> np.ndarray:
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(
            f"{where}: label column {label!r} has non-numeric values such as {example!r}; "
            "use label_kind = 'hard' for class labels"
        )
    return numbers.to_numpy(dtype=np.float64)


def _label_kind(values: pd.Series, requested: LabelKindOption, where: str, label: str) -> str:
    import pandas as pd

    if requested != "auto":
        return requested
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "hard"
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        # Floats that are all whole numbers (1.0, 0.0) are class ids that went through a float column.
        if not np.all(np.mod(numbers, 1.0) == 0):
            return "regression"
    return "hard"


def _label_strings(values: pd.Series) -> tuple[list[str], list[str]]:
    """Each value as a string, and the distinct values in a natural order (numeric when numbers)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if np.all(np.mod(numbers, 1.0) == 0):
            ints = numbers.astype(np.int64)
            return [str(v) for v in ints], [str(v) for v in sorted(set(ints.tolist()))]
        return [repr(float(v)) for v in numbers], [repr(float(v)) for v in sorted(set(numbers.tolist()))]
    strings = [str(v) for v in values]
    return strings, sorted(set(strings))


def _hard_labels(
    values: pd.Series,
    label_names: Sequence[str] | None,
    class_names: Sequence[str] | None,
    where: str,
    label: str,
) -> tuple[np.ndarray, tuple[str, ...]]:
    strings, distinct = _label_strings(values)
    names = list(label_names) if label_names else list(class_names) if class_names else None
    if names is not None and distinct and all(s.lstrip("-").isdigit() for s in distinct):
        # Integer labels with declared names: 0..k-1 index the names.
        ids = np.array([int(s) for s in strings], dtype=np.int64)
        if ids.min() < 0 or ids.max() >= len(names):
            raise DataError(
                f"{where}: label column {label!r} has values {distinct[:8]} but only {len(names)} label names "
                f"{names}: give label_names one name per class id 0..{int(ids.max())}"
            )
        return ids, tuple(names)
    if names is not None:
        unknown = sorted(set(distinct) - set(names))
        if unknown:
            raise DataError(
                f"{where}: label values {unknown[:5]} of column {label!r} are not among label_names {names}"
            )
    else:
        names = distinct
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[s] for s in strings], dtype=np.int64), tuple(names)


# -- reading files --------------------------------------------------------------------------------
def detect_format(path: Path) -> tuple[str | None, str | None]:
    """(format, compression) from the file name, e.g. ``data.jsonl.gz`` → ("jsonl", "gzip")."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    return fmt, compression


def read_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    """A csv, tsv, json, jsonl or parquet file (optionally compressed) as a data frame of raw values."""
    import pandas as pd

    detected, compression = detect_format(path)
    fmt = detected if fmt == "auto" else fmt
    if fmt is None:
        known = ", ".join(sorted(set(FORMATS) | set(COMPRESSIONS)))
        raise DataError(f"cannot tell the format of {path} from its name (known endings: {known}); set format = ...")
    # Empty cells are missing values, but texts such as "NA" or "null" stay texts.
    csv_options: dict[str, Any] = {"keep_default_na": False, "na_values": [""], "compression": compression}
    try:
        if fmt == "csv":
            return pd.read_csv(path, **csv_options)
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t", **csv_options)
        if fmt in ("json", "jsonl"):
            json_options: dict[str, Any] = {"dtype": False, "compression": compression}
            if fmt == "jsonl":
                return pd.read_json(path, lines=True, **json_options)
            try:
                return pd.read_json(path, **json_options)
            except ValueError:  # a .json file holding one object per line
                return pd.read_json(path, lines=True, **json_options)
        if fmt == "parquet":
            if compression:  # parquet compresses inside; an outer layer must be removed first
                return pd.read_parquet(io.BytesIO(_decompress(path, compression)))
            return pd.read_parquet(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        bad_line = _bad_json_line(path, compression) if fmt in ("json", "jsonl") else None
        if bad_line:  # pandas names a byte offset: say the line and show it
            raise DataError(f"cannot read {path} as {fmt}: {bad_line}") from exc
        raise DataError(f"cannot read {path} as {fmt}{f' ({compression})' if compression else ''}: {exc}") from exc
    raise DataError(f"unknown format {fmt!r} for {path}: use csv, tsv, json, jsonl or parquet")


def _bad_json_line(path: Path, compression: str | None) -> str | None:
    """'line N is not valid JSON (why): <text>' for the first bad line of a JSON or JSON-lines file."""
    try:
        raw = _decompress(path, compression) if compression else path.read_bytes()
    except (OSError, DataError, ValueError):
        return None
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if text.lstrip().startswith("["):  # one JSON document: its error says where
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return f"line {exc.lineno} is not valid JSON ({exc.msg}, column {exc.colno}): {lines[exc.lineno - 1][:200]}"
        return None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {number} is not valid JSON ({exc.msg}, column {exc.colno}): {line[:200]}"
        if not isinstance(value, dict):
            return f"line {number} is not a JSON object ({{...}}): {line[:200]}"
    return None


def _decompress(path: Path, compression: str) -> bytes:
    import bz2
    import gzip
    import lzma
    import zipfile

    if compression == "gzip":
        return gzip.decompress(path.read_bytes())
    if compression == "bz2":
        return bz2.decompress(path.read_bytes())
    if compression == "xz":
        return lzma.decompress(path.read_bytes())
    if compression == "zip":
        with zipfile.ZipFile(path) as archive:
            return archive.read(archive.namelist()[0])
    raise DataError(f"{path}: {compression} compression is not supported for parquet files")


def _filter_split(frame: pd.DataFrame, split: str | None, column: str, where: str) -> pd.DataFrame:
    if split is None:
        return frame
    if column not in frame.columns:
        present = ", ".join(repr(str(c)) for c in frame.columns)
        raise DataError(
            f"{where}: split = {split!r} needs a {column!r} column, which is absent (columns: {present}); "
            "remove 'split' or set split_column"
        )
    kept = frame[frame[column].astype(str) == split]
    if kept.empty:
        values = sorted(frame[column].dropna().astype(str).unique().tolist())
        raise DataError(f"{where}: no rows with {column} = {split!r}; values present: {values[:20]}")
    return kept


# -- sources ----------------------------------------------------------------------------------------
def _own_options_first(cls: type, fields: list[attrs.Attribute]) -> list[attrs.Attribute]:
    """A source's own options (where to read) first, then the shared column and sample options."""
    return [f for f in fields if not f.inherited] + [f for f in fields if f.inherited]


@attrs.frozen
class _ColumnOptions:
    """Options every table-like dataset source has: which columns hold text and labels, and a sample."""

    text: str | list[str] = option(
        "text", help="text column, or a list of two columns for pair tasks", validator=_validate_text
    )
    label: str | None = option(None, help="label column; absent = unlabelled text (such as U)")
    label_kind: LabelKindOption = option(
        "auto",
        help="auto: non-integer numbers are regression targets, anything else (a ClassLabel too) class labels",
    )
    label_names: list[str] | None = option(
        None, help="names of integer class ids 0..k-1, or the order of classes (hf-datasets: the ClassLabel names)"
    )
    limit: int | None = option(
        None, help="at most this many examples, a reproducible sample", validator=_positive_or_none
    )
    seed: int = option(0, help="seed of the sample taken when 'limit' is set")

    def _examples_from(
        self,
        frame: pd.DataFrame,
        *,
        where: str,
        context: RunContext,
        name: str,
        class_names: Sequence[str] | None = None,
    ) -> Examples:
        """The frame's examples under these column options, sampled down to ``limit``; never empty."""
        examples = frame_to_examples(
            frame,
            text=self.text,
            label=self.label,
            label_kind=self.label_kind,
            label_names=self.label_names,
            class_names=class_names,
            where=where,
            context=context,
            name=name,
        )
        return examples.sample(self.limit, self.seed).require_nonempty()


@attrs.frozen(field_transformer=_own_options_first)
class FilesDataset(_ColumnOptions):
    """Texts and labels from a local csv, tsv, json, jsonl or parquet file (optionally gz/bz2/xz/zip compressed)."""

    name = "files"

    path: str = option(help="the file: .csv, .tsv, .json, .jsonl or .parquet, optionally .gz/.bz2/.xz/.zip")
    split: str | None = option(None, help="keep only rows whose split column has this value")
    split_column: str = option("split", help="the column that 'split' filters on")
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet"] = option(
        "auto", help="file format (auto: from the file name)"
    )

    def load(self, context: RunContext) -> Examples:
        path = Path(self.path).expanduser()
        if not path.is_file():
            hint = (
                "it is a folder: name a file in it"
                if path.is_dir()
                else "check the path (relative to the working folder)"
            )
            raise DataError(f"files dataset: {path} does not exist as a file; {hint}")
        where = f"files dataset {str(path)!r}"
        frame = _filter_split(read_table(path, self.format), self.split, self.split_column, where)
        return self._examples_from(frame, where=where, context=context, name=path.name.split(".")[0])


@attrs.frozen(field_transformer=_own_options_first)
class HFDatasetsDataset(_ColumnOptions):
    """A dataset loaded with ``datasets.load_dataset`` (hub id, local folder, or a builder such as csv)."""

    name = "hf-datasets"

    path: str = option(help="hub id (e.g. 'glue'), local folder, or a builder name ('csv', 'json', 'parquet')")
    config_name: str | None = option(None, help="the dataset's configuration (e.g. 'sst2')")
    split: str = option("train", help="split to load, e.g. 'train', 'validation', 'train[:1000]'")
    data_files: str | list[str] | dict[str, str | list[str]] | None = option(
        None, help="files for builder datasets (csv, json, parquet)"
    )
    revision: str | None = option(None, help="git revision of a hub dataset")

    def load(self, context: RunContext) -> Examples:
        import datasets

        where = f"hf-datasets {self.path!r}" + (f" ({self.config_name})" if self.config_name else "")
        try:
            dataset = datasets.load_dataset(
                self.path, self.config_name, split=self.split, data_files=self.data_files, revision=self.revision
            )
        except FileNotFoundError as exc:
            raise DataError(f"{where}: not found ({exc}); check the hub id, folder or data_files") from exc
        except ValueError as exc:  # unknown split or configuration: the message lists the valid ones
            raise DataError(f"{where}: {exc}") from exc
        columns = _check_text_option(self.text, where) + ([self.label] if self.label else [])
        missing = [c for c in columns if c not in dataset.column_names]
        if missing:
            raise DataError(f"{where}: no column {missing[0]!r}; columns present: {dataset.column_names}")
        class_names = None
        if self.label:
            feature = dataset.features[self.label]
            if isinstance(feature, datasets.ClassLabel):
                class_names = list(feature.names)
        frame = dataset.select_columns(columns).to_pandas()
        name = (self.config_name or self.path).split("/")[-1]
        return self._examples_from(frame, where=where, context=context, name=name, class_names=class_names)


# -- builtin data -----------------------------------------------------------------------------------
BUILTIN_PACKAGE = "fute_kit_hf"
BUILTIN_FOLDER = "builtin_data"
UNLABELED = "unlabeled"


def builtin_index() -> dict[str, dict[str, Any]]:
    """Name → metadata (description, labels, counts, source, licence) of every shipped dataset.

    The jsonl files are the truth; ``index.json`` beside them adds the metadata.
    """
    from importlib.resources import files

    folder = files(BUILTIN_PACKAGE) / BUILTIN_FOLDER
    if not folder.is_dir():
        return {}
    index: dict[str, dict[str, Any]] = {
        entry.name.removesuffix(".jsonl"): {} for entry in folder.iterdir() if entry.name.endswith(".jsonl")
    }
    index_file = folder / "index.json"
    if index_file.is_file():
        for key, value in json.loads(index_file.read_text(encoding="utf-8")).items():
            if key in index and isinstance(value, dict):
                index[key] = value
    return dict(sorted(index.items()))


ZOO_GROUPS = ("sentiment", "topic", "authorship", "other")


@attrs.frozen
class ZooTask:
    """A labelled builtin set and its group of related tasks (for measuring transfer between tasks)."""

    name: str
    group: str
    labels: tuple[str, ...]
    n_train: int
    n_test: int


def builtin_zoo(group: str | None = None) -> dict[str, ZooTask]:
    """Name → task of the labelled builtin sets with a group in ``index.json`` (the task zoo).

    Ordered by group (ZOO_GROUPS order), then name. ``group`` keeps one group only: "sentiment", "topic",
    "authorship" (who wrote or said a text) or "other".
    """
    if group is not None and group not in ZOO_GROUPS:
        raise DataError(f"unknown zoo group {group!r}: use one of {', '.join(ZOO_GROUPS)}")
    tasks = [
        ZooTask(
            name=name,
            group=meta["group"],
            labels=tuple(meta.get("labels", ())),
            n_train=int(meta.get("n", {}).get("train", 0)),
            n_test=int(meta.get("n", {}).get("test", 0)),
        )
        for name, meta in builtin_index().items()
        if meta.get("group") in ZOO_GROUPS and (group is None or meta["group"] == group)
    ]
    tasks.sort(key=lambda task: (ZOO_GROUPS.index(task.group), task.name))
    return {task.name: task for task in tasks}


def _builtin_list() -> str:
    rows = [
        f"{name} ({meta['description']})" if meta.get("description") else name for name, meta in builtin_index().items()
    ]
    return "; ".join(rows) or "none (the package's builtin_data folder is missing: reinstall fute-kit-hf)"


@attrs.frozen
class BuiltinDataset:
    """Small labelled datasets and the unlabelled corpus U shipped with the plugin (no download)."""

    name = "builtin"

    # ``name`` is the entry's own name in a study configuration, so the dataset is chosen with ``dataset``.
    dataset: str = option(UNLABELED, help="which shipped dataset: 'unlabeled' (the corpus U) or a labelled set")
    split: str | None = option("train", help="split of a labelled set ('train', 'test'...; absent = all rows)")
    limit: int | None = option(
        None, help="at most this many examples, a reproducible sample", validator=_positive_or_none
    )
    seed: int = option(0, help="seed of the sample taken when 'limit' is set")

    def load(self, context: RunContext) -> Examples:
        from importlib.resources import as_file, files

        index = builtin_index()
        if self.dataset not in index:
            raise DataError(f"builtin dataset {self.dataset!r} does not exist; available: {_builtin_list()}")
        where = f"builtin dataset {self.dataset!r}"
        resource = files(BUILTIN_PACKAGE) / BUILTIN_FOLDER / f"{self.dataset}.jsonl"
        with as_file(resource) as path:
            frame = read_table(Path(path), "jsonl")
        if self.dataset == UNLABELED or "label" not in frame.columns:
            examples = frame_to_examples(
                frame, text="text", label=None, where=where, context=context, name=self.dataset
            )
        else:
            frame = _filter_split(frame, self.split, "split", where)
            examples = frame_to_examples(
                frame,
                text="text",
                label="label",
                label_kind="hard",
                label_names=index[self.dataset].get("labels") or None,
                where=where,
                context=context,
                name=self.dataset,
            )
        return examples.sample(self.limit, self.seed).require_nonempty()
