"""Measured intermediate-task transfer: the truth that source rankings are judged against.

For every ordered pair (source, target) of a list of datasets: fine-tune the base classifier on the source,
then on a small sample of the target from that checkpoint with a fresh head, and compare the target's test
accuracy with the same recipe run on the target alone. gain = accuracy after transfer - accuracy alone, per
seed; the truth row is the mean gain with its sd over the seeds.

- Every fine-tuning is content-addressed (base, data fingerprint, settings, seed, parent run) in a runs folder
  and reused, so a rerun after a crash, Ctrl-C or SIGKILL repeats nothing. Source checkpoints are kept (they
  are the parents of every target run, and the models of the source-ranking study); target runs keep only
  their scores (a JSON file each), not a 90 MB checkpoint.
- The output folder's runs.csv is a second record of finished runs: a rerun with the same recipe takes every
  run it holds from there, so the matrix resumes on a machine that has only the result files (no run cache),
  and no source checkpoint is trained for a source whose every needed run is recorded.
- Work goes target by target (baseline and every source, all seeds), and each finished (target, source) row
  is written to the truth CSV at once (an atomic rewrite), so a partial run already gives whole rows.
- Seeds vary the target's training sample, the head's initial weights and the batch order; the baseline and
  the transfer run of one seed share all three, so their difference measures the source. The source
  checkpoint is trained once (``source_seed``) and the test sample is the same for all seeds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from fute_kit.plugin import DataError, Examples, FuteError, RunContext, atomic_write_text, remove_orphans

TRUTH_FILE = "truth.csv"
MODELS_TRUTH_FILE = "truth-models.csv"  # the same rows, candidates named as the study's classifiers (ft-<source>)
MODEL_PREFIX = "ft-"
RUNS_FILE = "runs.csv"
MANIFEST_FILE = "transfer.json"
TRUTH_COLUMNS = (
    "target",
    "candidate",
    "score",
    "sd",
    "n",
    "accuracy_alone",
    "accuracy_after",
    "macro_f1_gain",
    "source_examples",  # the source's training examples: what `fute evaluate`'s size baseline ranks by
)
LEGACY_TRUTH_COLUMNS = TRUTH_COLUMNS[:-1]  # before source_examples: such a truth.csv is rebuilt from runs.csv
RUNS_COLUMNS = ("target", "source", "seed", "score_after", "score_alone", "macro_f1_after", "macro_f1_alone")
REUSED_ROW = "reused from runs.csv"  # a run whose scores runs.csv already holds (same recipe): not repeated


@attrs.frozen
class TransferDataset:
    """A labelled dataset of the matrix: how to load its training and its test split."""

    name: str
    source: str
    options: dict[str, Any] = attrs.field(factory=dict)
    test_options: dict[str, Any] = attrs.field(factory=dict)

    def load(self, split: str, context: RunContext) -> Examples:
        from fute_kit.plugin import get_registry

        options = self.options if split == "train" else {**self.options, **self.test_options}
        try:
            examples = get_registry().build("dataset_source", self.source, options).load(context)
        except FuteError as exc:
            raise DataError(f"dataset {self.name!r} ({split} split): {exc}") from exc
        return attrs.evolve(examples, name=self.name)


@attrs.frozen
class TransferRecipe:
    """How each fine-tuning of the matrix is run; every field is part of every run's address."""

    base: str = "minilm"
    source_size: int | None = 1000
    target_size: int = 200
    test_size: int = 400
    source_epochs: int = 2
    target_epochs: int = 5  # 3 (39 steps) left transfer runs collapsed to one class on some seeds
    lr: float = 2e-4
    batch_size: int = 16
    max_length: int = 128
    source_seed: int = 0

    def __attrs_post_init__(self) -> None:
        sizes = {"source_size": self.source_size or 2, "target_size": self.target_size, "test_size": self.test_size}
        bad = [f"{k}={v}" for k, v in sizes.items() if v < 2]
        if bad or self.source_epochs < 1 or self.target_epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise FuteError(f"transfer settings out of range: {', '.join(bad) or attrs.asdict(self)}")

    def finetune_settings(self, stage: str) -> dict[str, Any]:
        epochs = self.source_epochs if stage == "source" else self.target_epochs
        return {"epochs": epochs, "lr": self.lr, "batch_size": self.batch_size, "max_length": self.max_length}


@attrs.frozen
class PairRow:
    """One finished (target, source) cell: the mean gain over seeds and what it came from."""

    target: str
    source: str
    gains: tuple[float, ...]
    alone: tuple[float, ...]
    after: tuple[float, ...]
    f1_gains: tuple[float, ...]

    @property
    def score(self) -> float:
        return statistics.fmean(self.gains)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.gains) if len(self.gains) > 1 else 0.0


def run_key(**parts: Any) -> str:
    """The content address of one fine-tuning: base, data, settings, seed and parent run."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


# -- choosing datasets --------------------------------------------------------------------------------
def builtin_datasets(names: Sequence[str]) -> list[TransferDataset]:
    """Shipped labelled sets by name (train split to learn, test split to score)."""
    from fute_kit_hf.datasets import UNLABELED, builtin_index

    index = builtin_index()
    unknown = [n for n in names if n not in index or n.startswith(UNLABELED)]
    if unknown:
        labelled = ", ".join(n for n in index if not n.startswith(UNLABELED))
        raise DataError(f"no labelled builtin dataset named {', '.join(unknown)}; available: {labelled}")
    return [TransferDataset(n, "builtin", {"dataset": n, "split": "train"}, {"split": "test"}) for n in names]


def zoo_names() -> list[str]:
    """Every labelled builtin dataset of the zoo, the groups taken in turn (sentiment, topic, authorship...).

    Targets are measured in this order, so a partial matrix already has targets of every group.
    """
    from fute_kit_hf import datasets

    zoo = getattr(datasets, "builtin_zoo", None)
    if zoo is None:
        return [n for n in datasets.builtin_index() if not n.startswith(datasets.UNLABELED)]
    groups: dict[str, list[str]] = {}
    for name, task in zoo().items():
        groups.setdefault(task.group, []).append(name)
    queues = list(groups.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


def study_datasets(path: str | Path) -> list[TransferDataset]:
    """The ``[[datasets]]`` of a study TOML; each needs a ``split`` option (its test split is ``split = "test"``)."""
    from fute_kit.plugin import load_config

    config = load_config(path)
    found = []
    for ref in config.datasets:
        if "split" not in ref.options:
            raise DataError(
                f"{path}: dataset {ref.name!r} (source {ref.source!r}) has no 'split' option, so its test split "
                "cannot be found: use a source with train/test splits (builtin, files with a split column)"
            )
        options = {**ref.options, "split": ref.options.get("split") or "train"}
        found.append(TransferDataset(ref.name, ref.source, options, {"split": "test"}))
    return found


# -- the measurement ----------------------------------------------------------------------------------
@attrs.define
class _Loaded:
    source_train: Examples
    target_trains: dict[int, Examples]
    test: Examples
    notes: list[str]


def _load_all(
    datasets: Sequence[TransferDataset], recipe: TransferRecipe, seeds: Sequence[int], context: RunContext
) -> dict[str, _Loaded]:
    """Every split of every dataset, loaded and checked before the first fine-tuning."""
    loaded = {}
    for dataset in datasets:
        train, test = dataset.load("train", context), dataset.load("test", context)
        for split, examples in (("train", train), ("test", test)):
            if examples.label_kind != "hard" or len(examples.label_names) < 2:
                raise DataError(
                    f"dataset {dataset.name!r} ({split} split) needs class labels with at least two classes; "
                    f"it has {examples.label_kind!r} labels {list(examples.label_names)}"
                )
        if tuple(train.label_names) != tuple(test.label_names):
            raise DataError(
                f"dataset {dataset.name!r}: train classes {list(train.label_names)} differ from test classes "
                f"{list(test.label_names)}"
            )
        notes = [f"{dataset.name}: test {len(test)}"] if len(test) < recipe.test_size else []
        if len(train) < recipe.target_size:
            raise DataError(
                f"dataset {dataset.name!r} has {len(train)} training examples, fewer than the target size "
                f"{recipe.target_size}: lower --target-size or leave the dataset out"
            )
        loaded[dataset.name] = _Loaded(
            source_train=train.sample(recipe.source_size, recipe.source_seed),
            target_trains={seed: train.sample(recipe.target_size, seed) for seed in seeds},
            test=test.sample(recipe.test_size, 0),
            notes=notes,
        )
    return loaded


@attrs.define
class _Clock:
    """Progress lines with the time left, from the mean seconds of runs done so far in this process."""

    report: Callable[[str], None]
    total_sources: int
    total_targets: int
    done_sources: int = 0
    done_targets: int = 0
    seconds: dict[str, list[float]] = attrs.field(factory=lambda: {"source": [], "target": []})

    def finished(self, stage: str, seconds: float | None, what: str, reused: str = "reused") -> None:
        if stage == "source":
            self.done_sources += 1
        else:
            self.done_targets += 1
        if seconds is not None:
            self.seconds[stage].append(seconds)
        left = self._left()
        took = reused if seconds is None else f"{seconds:.0f} s"
        self.report(
            f"[{self.done_targets}/{self.total_targets} target runs, {self.done_sources}/{self.total_sources} "
            f"sources] {what}: {took}; {left}"
        )

    def _left(self) -> str:
        remaining, untimed = 0.0, []
        for stage, done, todo in (
            ("source", self.done_sources, self.total_sources - self.done_sources),
            ("target", self.done_targets, self.total_targets - self.done_targets),
        ):
            if todo and self.seconds[stage]:
                remaining += todo * statistics.fmean(self.seconds[stage])
            elif todo and not done:
                return "time left: unknown until a run of each kind is timed"
            elif todo:  # every one so far was on disk (source checkpoints of an earlier call): the rest may be too
                untimed.append(f"{todo} {stage} run{'s' if todo > 1 else ''}")
        left = f"about {_duration(remaining)} left" if remaining else "done"
        return left + (f" (plus {' and '.join(untimed)} not timed yet: none so far needed training)" if untimed else "")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min {int(seconds % 60)} s"


def measure_transfer(
    datasets: Sequence[TransferDataset],
    out_dir: str | Path,
    recipe: TransferRecipe | None = None,
    *,
    seeds: int | Sequence[int] = 3,
    targets: Sequence[str] | None = None,
    cache: str | Path | None = None,
    device: str = "auto",
    threads: int | None = None,
    context: RunContext | None = None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Measure source → target transfer for every ordered pair with a target in ``targets``; returns the truth CSV.

    ``out_dir`` receives ``truth.csv`` (target, candidate, score = mean gain in accuracy, sd, n and the mean
    accuracies), ``runs.csv`` (one row per target, source and seed) and ``transfer.json`` (the recipe). The
    fine-tunings live in ``cache`` (default ``out_dir/runs``) and are reused by any later call; a run that
    ``runs.csv`` already holds (same recipe) is taken from there, even with an empty cache. ``threads``: torch's
    CPU threads (on a busy shared machine 1 thread can be several times faster than 2 that wait for each other).
    """
    from fute_kit_hf.device import resolve_device
    from fute_kit_hf.models import local_or_hub

    recipe = recipe or TransferRecipe()
    context = context or RunContext(show_progress=False)
    report = report or context.logger.info
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    names = [d.name for d in datasets]
    targets = list(targets) if targets else names
    _check_plan(names, targets, seed_list)
    out = Path(out_dir).expanduser()
    runs = Path(cache).expanduser() if cache else out / "runs"
    _check_manifest(out, recipe, names)
    local_or_hub(recipe.base, context.cache_dir)  # a missing base fails now, not after the first dataset
    chosen_device = resolve_device(device)
    _set_threads(threads)
    loaded = _load_all(datasets, recipe, seed_list, context)
    small = [n for item in loaded.values() for n in item.notes]
    if small:
        report(f"test splits smaller than --test-size {recipe.test_size} are used whole: {', '.join(small)}")
    store = _RunStore(runs, recipe, device, context)
    sources_needed = sorted({s for t in targets for s in names if s != t})
    clock = _Clock(report, len(sources_needed), len(targets) * len(names) * len(seed_list))
    report(
        f"transfer: {len(targets)} target(s) x {len(names) - 1} source(s) x {len(seed_list)} seed(s) on "
        f"{chosen_device}; base {recipe.base}; runs in {runs}"
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MANIFEST_FILE, json.dumps(_manifest(recipe, names), indent=2))
    sizes = {name: len(item.source_train) for name, item in loaded.items()}
    _measure_rows(_ResultFiles(out, sizes), store, loaded, names, targets, seed_list, clock)
    report(f"transfer: truth written to {out / TRUTH_FILE}")
    return out / TRUTH_FILE


def _measure_rows(
    truth: _ResultFiles,
    store: _RunStore,
    loaded: dict[str, _Loaded],
    names: list[str],
    targets: list[str],
    seeds: list[int],
    clock: _Clock,
) -> None:
    """Target by target, every source's row: its runs taken from runs.csv when there, else from the run store.

    A source checkpoint is trained (or loaded) only for a source with a run that runs.csv lacks.
    """
    pending = {s for t in targets for s in names if s != t for n in seeds if truth.recorded(t, s, n) is None}
    counted: set[str] = set()  # sources whose every needed run is in runs.csv, counted done once
    for target in targets:
        alone = {seed: _alone_run(truth, store, loaded[target], seed, clock) for seed in seeds}
        for source in (s for s in names if s != target):
            if source not in pending and source not in counted:
                counted.add(source)
                clock.finished("source", None, f"source checkpoint {source}", REUSED_ROW)
            after = {seed: _transfer_run(truth, store, loaded, target, source, seed, clock) for seed in seeds}
            truth.add(target, source, seeds, alone, after)


def _alone_run(truth: _ResultFiles, store: _RunStore, data: _Loaded, seed: int, clock: _Clock) -> dict[str, Any]:
    """The target's baseline for ``seed``: from runs.csv when a row of the same recipe has it, else a run."""
    target = data.target_trains[seed].name
    recorded = truth.recorded_alone(target, seed)
    if recorded is None:
        return store.target_run(data, seed, None, clock)
    clock.finished("target", None, f"{target} seed {seed} alone", REUSED_ROW)
    return recorded


def _transfer_run(
    truth: _ResultFiles,
    store: _RunStore,
    loaded: dict[str, _Loaded],
    target: str,
    source: str,
    seed: int,
    clock: _Clock,
) -> dict[str, Any]:
    """The target's run from the source's checkpoint: from runs.csv, else trained (the checkpoint only then)."""
    recorded = truth.recorded(target, source, seed)
    if recorded is None:
        return store.target_run(loaded[target], seed, store.source_checkpoint(loaded[source], clock), clock)
    clock.finished("target", None, f"{target} seed {seed} after {source}", REUSED_ROW)
    return recorded


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise FuteError(f"threads must be at least 1; got {threads}")
    import torch

    torch.set_num_threads(threads)


def _check_plan(names: list[str], targets: list[str], seeds: list[int]) -> None:
    if len(names) < 2:
        raise FuteError(f"transfer needs at least two datasets (a source and a target); got {names}")
    if len(set(names)) != len(names):
        raise FuteError(f"dataset names must be unique; got {names}")
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise FuteError(f"--targets {', '.join(unknown)} not among the datasets: {', '.join(names)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise FuteError(f"seeds must be distinct and at least one; got {seeds}")


def _manifest(recipe: TransferRecipe, names: list[str]) -> dict[str, Any]:
    return {"recipe": attrs.asdict(recipe), "datasets": names}


def _check_manifest(out: Path, recipe: TransferRecipe, names: list[str]) -> None:
    """Rows of another recipe must not be mixed into this folder's truth."""
    path = out / MANIFEST_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))["recipe"]
    except (OSError, ValueError, KeyError) as exc:
        raise FuteError(f"{path} is not readable ({exc}): remove it or choose another --out") from exc
    if previous != attrs.asdict(recipe):
        changed = {k: (previous.get(k), v) for k, v in attrs.asdict(recipe).items() if previous.get(k) != v}
        raise FuteError(
            f"{out} holds transfer results of another recipe (changed: {changed}); choose another --out "
            "(the runs folder can be shared: --cache)"
        )


# -- runs: content-addressed fine-tunings ------------------------------------------------------------
@attrs.define
class _RunStore:
    root: Path
    recipe: TransferRecipe
    device: str
    context: RunContext
    sources: dict[str, tuple[str, str]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for folder in (self.root / "sources", self.root / "scores"):
            folder.mkdir(parents=True, exist_ok=True)
            remove_orphans(folder)  # checkpoints and scores of fine-tunings killed mid-save would only fill the disk

    def source_checkpoint(self, data: _Loaded, clock: _Clock) -> tuple[str, str]:
        """(run key, folder) of the base fine-tuned on the source; trained once, kept on disk."""
        from fute_kit_hf.finetune import finetune_classifier, read_finetune_info

        name = data.source_train.name
        if name in self.sources:
            return self.sources[name]
        settings = self.recipe.finetune_settings("source")
        key = run_key(
            base=self.recipe.base,
            data=data.source_train.fingerprint(),
            settings=settings,
            seed=self.recipe.source_seed,
            parent=None,
        )
        folder = self.root / "sources" / f"{_safe(name)}-{key}"
        done = read_finetune_info(folder) is not None
        started = time.time()
        finetune_classifier(
            data.source_train,
            folder,
            self.recipe.base,
            seed=self.recipe.source_seed,
            device=self.device,
            context=self.context,
            **settings,
        )
        clock.finished("source", None if done else time.time() - started, f"source checkpoint {name}")
        self.sources[name] = (key, str(folder))
        return self.sources[name]

    def target_run(self, data: _Loaded, seed: int, parent: tuple[str, str] | None, clock: _Clock) -> dict[str, Any]:
        """Scores of the target's fine-tuning for ``seed``, from ``parent`` (a source checkpoint) or the base."""
        from fute_kit_hf.finetune import finetune_and_score

        train = data.target_trains[seed]
        settings = self.recipe.finetune_settings("target")
        key = run_key(
            base=self.recipe.base,
            data=train.fingerprint(),
            test=data.test.fingerprint(),
            settings=settings,
            seed=seed,
            parent=parent[0] if parent else None,
        )
        path = self.root / "scores" / f"{key}.json"
        what = f"{train.name} seed {seed} " + (f"after {Path(parent[1]).name.rsplit('-', 1)[0]}" if parent else "alone")
        if path.is_file():
            clock.finished("target", None, what)
            return json.loads(path.read_text(encoding="utf-8"))
        started = time.time()
        metrics = finetune_and_score(
            train,
            data.test,
            parent[1] if parent else self.recipe.base,
            seed=seed,
            fresh_head=True,
            device=self.device,
            context=self.context,
            **settings,
        )
        record = {"key": key, "target": train.name, "seed": seed, "parent": parent[1] if parent else None, **metrics}
        atomic_write_text(path, json.dumps(record, indent=2))
        clock.finished("target", time.time() - started, what)
        return record


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# -- result files ---------------------------------------------------------------------------------------
@attrs.define
class _ResultFiles:
    """truth.csv and runs.csv, rewritten atomically as each row finishes; rows of earlier calls are kept.

    runs.csv is also what a rerun resumes from: its rows were measured with this folder's recipe (transfer.json,
    checked before), so a run they hold is not repeated even when the run cache is gone (a fresh machine with
    the committed result files). A pair that runs.csv holds and truth.csv lacks gets its truth row back.
    """

    out: Path
    source_examples: dict[str, int]
    truth: dict[tuple[str, str], list[str]] = attrs.field(factory=dict)
    runs: dict[tuple[str, str, str], list[str]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.truth = _read_rows(self.out / TRUTH_FILE, TRUTH_COLUMNS, 2, legacy=LEGACY_TRUTH_COLUMNS)
        self.runs = _read_rows(self.out / RUNS_FILE, RUNS_COLUMNS, 3)
        seeds: dict[tuple[str, str], list[int]] = {}
        for target, source, seed in self.runs:
            seeds.setdefault((target, source), []).append(int(seed))
        for (target, source), found in seeds.items():
            if (target, source) not in self.truth:
                alone = {s: self._scores(target, source, s, after=False) for s in found}
                after = {s: self._scores(target, source, s, after=True) for s in found}
                self.truth[(target, source)] = _truth_row(target, source, found, alone, after, self.source_examples)

    def recorded(self, target: str, source: str, seed: int) -> dict[str, Any] | None:
        """The scores of the transfer run (target, source, seed) that runs.csv holds, or None."""
        if (target, source, str(seed)) not in self.runs:
            return None
        return self._scores(target, source, seed, after=True)

    def recorded_alone(self, target: str, seed: int) -> dict[str, Any] | None:
        """The scores of the target's baseline for ``seed`` (in every row of that target and seed), or None."""
        source = next((s for t, s, n in self.runs if t == target and n == str(seed)), None)
        return None if source is None else self._scores(target, source, seed, after=False)

    def _scores(self, target: str, source: str, seed: int, *, after: bool) -> dict[str, Any]:
        row = dict(zip(RUNS_COLUMNS, self.runs[(target, source, str(seed))], strict=True))
        kind = "after" if after else "alone"
        return {"eval_accuracy": float(row[f"score_{kind}"]), "eval_macro_f1": float(row[f"macro_f1_{kind}"])}

    def add(
        self,
        target: str,
        source: str,
        seeds: list[int],
        alone: dict[int, dict[str, Any]],
        after: dict[int, dict[str, Any]],
    ) -> None:
        acc, f1 = "eval_accuracy", "eval_macro_f1"
        for seed in seeds:
            scores = [after[seed][acc], alone[seed][acc], after[seed].get(f1, 0.0), alone[seed].get(f1, 0.0)]
            self.runs[(target, source, str(seed))] = [target, source, str(seed), *map(_number, scores)]
        self.truth[(target, source)] = _truth_row(target, source, seeds, alone, after, self.source_examples)
        _write_rows(self.out / RUNS_FILE, RUNS_COLUMNS, self.runs.values())
        _write_rows(self.out / TRUTH_FILE, TRUTH_COLUMNS, self.truth.values())
        models = ([t, MODEL_PREFIX + c, *rest] for t, c, *rest in self.truth.values())
        _write_rows(self.out / MODELS_TRUTH_FILE, TRUTH_COLUMNS, models)


def _truth_row(
    target: str,
    source: str,
    seeds: list[int],
    alone: dict[int, dict[str, Any]],
    after: dict[int, dict[str, Any]],
    source_examples: dict[str, int],
) -> list[str]:
    """The truth.csv row of a (target, source) pair: mean gain, its sd over the seeds, the mean accuracies, the
    source's training examples."""
    acc, f1 = "eval_accuracy", "eval_macro_f1"
    row = PairRow(
        target,
        source,
        gains=tuple(after[s][acc] - alone[s][acc] for s in seeds),
        alone=tuple(alone[s][acc] for s in seeds),
        after=tuple(after[s][acc] for s in seeds),
        f1_gains=tuple(after[s].get(f1, 0.0) - alone[s].get(f1, 0.0) for s in seeds),
    )
    return [
        target,
        source,
        _number(row.score),
        _number(row.sd),
        str(len(seeds)),
        _number(statistics.fmean(row.alone)),
        _number(statistics.fmean(row.after)),
        _number(statistics.fmean(row.f1_gains)),
        str(source_examples[source]),
    ]


def _number(value: float) -> str:
    return f"{value:.6g}"


def _read_rows(path: Path, columns: Sequence[str], key_width: int, legacy: Sequence[str] = ()) -> dict[Any, list[str]]:
    """The rows of a result file by key; none from a file in the ``legacy`` layout (rebuilt by the caller)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or (legacy and tuple(header) == tuple(legacy)):
            return {}
        if tuple(header) != tuple(columns):
            raise DataError(f"{path}: columns {header} are not {list(columns)}: move the file away or choose --out")
        return {tuple(r[:key_width]): r for r in reader if r}


def _write_rows(path: Path, columns: Sequence[str], rows: Any) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


# -- the source-ranking study ---------------------------------------------------------------------------


def write_source_study(
    datasets: Sequence[TransferDataset],
    path: str | Path,
    recipe: TransferRecipe | None = None,
    *,
    cache: str | Path,
    method: str = "taskemb",
    unlabeled_limit: int = 500,
    device: str = "auto",
    threads: int | None = None,
    context: RunContext | None = None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """A study TOML to rank sources: every dataset as a DTE and, per source, its fine-tuned checkpoint as an MTE.

    The checkpoints are the ones ``measure_transfer`` starts its transfer runs from (trained here when missing,
    in ``cache``); each model is named ``ft-<dataset>``, so the truth's candidates for the MTE route are
    ``ft-<source>`` (``measure_transfer`` writes them in ``truth-models.csv``).
    """
    recipe = recipe or TransferRecipe()
    context = context or RunContext(show_progress=False)
    report = report or context.logger.info
    _set_threads(threads)
    loaded = _load_all(datasets, recipe, [0], context)
    store = _RunStore(Path(cache).expanduser(), recipe, device, context)
    clock = _Clock(report, len(datasets), 0)
    folders = {d.name: store.source_checkpoint(loaded[d.name], clock)[1] for d in datasets}
    lines = [
        f'title = "source ranking: {len(datasets)} datasets, classifiers fine-tuned from {recipe.base}"',
        "",
        "[space]",
        f"surrogate = {_toml(recipe.base)}",
        f"method = {_toml(method)}",
        "",
        "[unlabeled]",
        'source = "builtin"',
        'name = "unlabeled"',
        f"limit = {unlabeled_limit}",
    ]
    for dataset in datasets:
        options = {k: v for k, v in dataset.options.items() if not (k == "dataset" and v == dataset.name)}
        lines += ["", "[[datasets]]", f"name = {_toml(dataset.name)}", f"source = {_toml(dataset.source)}"]
        lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
    for name, folder in folders.items():
        lines += ["", "[[models]]", f"name = {_toml(MODEL_PREFIX + name)}", 'source = "hf"', f"path = {_toml(folder)}"]
    out = Path(path).expanduser()
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _toml(value: Any) -> str:
    """A TOML value for the simple option values a dataset source takes (JSON's quoting is valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))
