"""Every data and surrogate problem is found before the first job starts: exit 2, all at once, nothing written.

The study runs through the real ``fute run`` command, the real ``files`` source of fute-kit-hf (real csv and
jsonl files) and a real method; the only addition is an executor that records the jobs it is given, so a test
can tell that no job started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner
from toy_plugins import LABELS, TEXTS, LabelStats, ToyPlugin

import fute_kit_hf
from fute_kit import hookimpl
from fute_kit.cli import cli
from fute_kit.registry import Registry

STARTED: list[list[str]] = []  # the jobs each call of the recording executor was given


@attrs.frozen
class RecordingExecutor:
    """Runs jobs in this process, like ``local``, and records that it was asked to."""

    name = "recording"

    def run(self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]) -> Iterator[tuple[int, Any, None]]:
        STARTED.append(list(names))
        for index, job in enumerate(jobs):
            yield index, job(), None


class RecordingPlugin:
    @hookimpl
    def register_executors(self, register: Any) -> None:
        register(RecordingExecutor)


@pytest.fixture
def registry(fute_registry: Callable[..., Registry]) -> Registry:
    STARTED.clear()
    return fute_registry(ToyPlugin(), fute_kit_hf, RecordingPlugin())


SPACE = """
[space]
surrogate = "none"
method = "label-stats"

[executor]
name = "recording"
"""

# A good dataset listed first: today its job would run before the bad one's error appears.
GOOD_FIRST = f"""
[[datasets]]
name = "inline-first"
source = "inline"
texts = {TEXTS!r}
labels = {LABELS!r}
"""


def run_study(tmp_path: Path, body: str) -> tuple[int, str, Path]:
    config = tmp_path / "study.toml"
    config.write_text(SPACE + GOOD_FIRST + body)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(out), "--no-progress"])
    return result.exit_code, result.output, out


def problems_of(output: str) -> list[str]:
    return [line.removeprefix("  - ") for line in output.splitlines() if line.startswith("  - ")]


def write_reviews(folder: Path) -> tuple[Path, Path]:
    """A csv without a 'text' column and a jsonl file whose third line is cut short."""
    csv = folder / "reviews.csv"
    csv.write_text("review,stars\ngreat,5\nawful,1\n")
    jsonl = folder / "tweets.jsonl"
    jsonl.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", "label": \n')
    return csv, jsonl


def files_entry(name: str, path: Path, **keys: str) -> str:
    extra = "".join(f'{key} = "{value}"\n' for key, value in keys.items())
    return f'\n[[datasets]]\nname = "{name}"\nsource = "files"\npath = "{path}"\nlabel = "label"\n{extra}'


def test_a_missing_file_stops_the_study_before_any_job(registry: Registry, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.csv"
    code, output, out = run_study(tmp_path, files_entry("reviews", missing))
    assert code == 2, output
    assert problems_of(output) == [
        f"[[datasets]] 'reviews': files dataset: {missing} does not exist as a file; "
        "check the path (relative to the working folder)"
    ]
    assert STARTED == [] and not out.exists()


def test_a_malformed_line_is_named_by_number_and_text(registry: Registry, tmp_path: Path) -> None:
    _, jsonl = write_reviews(tmp_path)
    code, output, out = run_study(tmp_path, files_entry("tweets", jsonl))
    assert code == 2, output
    assert problems_of(output) == [
        f"[[datasets]] 'tweets': cannot read {jsonl} as jsonl: line 3 is not valid JSON "
        '(Expecting value, column 24): {"text": "c", "label": '
    ]
    assert STARTED == [] and not out.exists()


def test_a_missing_column_names_the_columns_present(registry: Registry, tmp_path: Path) -> None:
    csv, _ = write_reviews(tmp_path)
    code, output, out = run_study(tmp_path, files_entry("reviews", csv))
    assert code == 2, output
    assert problems_of(output) == [
        f"[[datasets]] 'reviews': files dataset '{csv}': no column 'text'; columns present: 'review', 'stars'"
    ]
    assert STARTED == [] and not out.exists()


def test_every_data_problem_is_reported_at_once(registry: Registry, tmp_path: Path) -> None:
    csv, jsonl = write_reviews(tmp_path)
    one_label = '\n[[datasets]]\nname = "all-positive"\nsource = "inline"\ntexts = ["a", "b", "c"]\n'
    one_label += 'labels = ["pos", "pos", "pos"]\n'
    unlabeled = f'\n[unlabeled]\nsource = "files"\npath = "{tmp_path / "u.csv"}"\n'
    body = files_entry("reviews", csv) + files_entry("tweets", jsonl) + one_label + unlabeled
    code, output, out = run_study(tmp_path, body)
    assert code == 2, output
    assert f"4 problem(s) in {tmp_path / 'study.toml'}:" in output
    assert problems_of(output) == [
        f"[[datasets]] 'reviews': files dataset '{csv}': no column 'text'; columns present: 'review', 'stars'",
        f"[[datasets]] 'tweets': cannot read {jsonl} as jsonl: line 3 is not valid JSON "
        '(Expecting value, column 24): {"text": "c", "label": ',
        "[[datasets]] 'all-positive': every one of its 3 examples has the label 'pos'; a task needs at least "
        "two labels: check the label column, split or limit",
        f"[unlabeled]: files dataset: {tmp_path / 'u.csv'} does not exist as a file; "
        "check the path (relative to the working folder)",
    ]
    assert STARTED == [] and not out.exists()


def test_a_dataset_without_labels_or_with_one_example_is_refused(registry: Registry, tmp_path: Path) -> None:
    body = (
        '\n[[datasets]]\nname = "unlabelled"\nsource = "inline"\ntexts = ["a", "b"]\n'
        '\n[[datasets]]\nname = "tiny"\nsource = "inline"\ntexts = ["a"]\nlabels = ["x"]\n'
    )
    code, output, out = run_study(tmp_path, body)
    assert code == 2, output
    assert problems_of(output) == [
        "[[datasets]] 'unlabelled': no labels: set the source's label column",
        "[[datasets]] 'tiny': 1 example(s); the method needs at least 2: check the source's path, split, filter "
        "or limit",
        "[[datasets]] 'tiny': every one of its 1 examples has the label 'x'; a task needs at least two labels: "
        "check the label column, split or limit",
    ]
    assert STARTED == [] and not out.exists()


@pytest.mark.parametrize(
    ("surrogate", "problem"),
    [
        (
            "minlm",
            "unknown surrogate alias 'minlm': did you mean 'minilm'? Use an alias ({aliases}), a local folder "
            "(./path/to/model) or a hub id as owner/name",
        ),
        ("./no-such-model", "folder './no-such-model' does not exist: check the path (relative to the working folder)"),
    ],
)
def test_an_unknown_surrogate_is_a_config_error(
    registry: Registry, tmp_path: Path, surrogate: str, problem: str
) -> None:
    from fute_kit_hf.surrogate_check import surrogate_problem

    aliases = surrogate_problem("minlm").split("(")[1].split(")")[0]  # type: ignore[union-attr]
    config = tmp_path / "study.toml"
    space = f'[space]\nsurrogate = "{surrogate}"\nmethod = "textemb"\n\n[executor]\nname = "recording"\n'
    space += '\n[similarity]\nmetric = "dot"\n'
    config.write_text(space + GOOD_FIRST)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert problems_of(result.output) == [f"[space]: key 'surrogate': {problem.format(aliases=aliases)}"]
    assert STARTED == [] and not out.exists()


def test_a_sound_study_passes_the_checks_and_runs(registry: Registry, tmp_path: Path) -> None:
    # The recorder sees the jobs of a study without problems: the tests above would notice a started job.
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in zip(TEXTS, LABELS, strict=True)))
    code, output, out = run_study(tmp_path, files_entry("reviews", csv))
    assert code == 0, output
    assert STARTED == [["dataset:inline-first", "dataset:reviews"]]
    assert (out / "similarity.csv").exists()


def test_a_misspelled_section_stops_the_study_before_any_job(registry: Registry, tmp_path: Path) -> None:
    code, output, out = run_study(tmp_path, '\n[simlarity]\nmetric = "dot"\n')
    assert code == 2, output
    assert problems_of(output) == [
        "[simlarity]: unknown section (did you mean [similarity]?); sections: [space], [unlabeled], [[datasets]], "
        "[[models]], [similarity], [executor]"
    ]
    assert STARTED == [] and not out.exists()


def test_misspelled_space_keys_stop_the_study_before_any_job(registry: Registry, tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    space = '[space]\nsurogate = "none"\nmethod = "label-stats"\noptons = { buckets = 3 }\n'
    config.write_text(space + '\n[executor]\nname = "recording"\n' + GOOD_FIRST)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert problems_of(result.output) == [
        "[space]: key 'surogate': unknown key (did you mean surrogate?); allowed keys: method, options, surrogate",
        "[space]: key 'optons': unknown key (did you mean options?); allowed keys: method, options, surrogate",
        "[space]: key 'surrogate': missing or not a string (a model id, folder or alias); 'surogate' looks like a "
        "misspelling of it",
    ]
    assert STARTED == [] and not out.exists()


@attrs.frozen
class SizedLabelStats(LabelStats):
    """label-stats declaring, as taskemb and tupate do, that its embeddings change with the number of examples."""

    name = "label-stats-sized"
    size_dependent = True


class SizedPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(SizedLabelStats)


def sized_study(tmp_path: Path, method: str, u_limit: int) -> tuple[int, str, Path]:
    texts = [f"text number {i} is {'good' if i % 2 else 'bad'}" for i in range(40)]
    labels = ["pos" if i % 2 else "neg" for i in range(40)]
    body = f'\n[[datasets]]\nname = "forty"\nsource = "inline"\ntexts = {texts!r}\nlabels = {labels!r}\n'
    body += f'\n[unlabeled]\nsource = "inline"\ntexts = {texts[:u_limit]!r}\n'
    body += '\n[[models]]\nname = "kw"\nsource = "keyword"\nkeyword = "good"\n'
    tmp_path.mkdir()
    config = tmp_path / "study.toml"
    config.write_text(SPACE.replace('"label-stats"', f'"{method}"') + body)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(out), "--no-progress"])
    return result.exit_code, result.output, out


def test_a_size_dependent_method_warns_of_dtes_and_mtes_of_different_sizes(
    fute_registry: Callable[..., Registry], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fute_registry(ToyPlugin(), fute_kit_hf, RecordingPlugin(), SizedPlugin())
    code, output, out = sized_study(tmp_path / "apart", "label-stats-sized", u_limit=10)
    assert code == 0, output
    expected = "the DTEs of forty (40) and the MTEs (U: 10 texts) are made on different numbers of examples"
    assert (
        expected in (out / "run.log").read_text()
        and "give those datasets limit = 10, or U limit = 40 (docs" in caplog.text
    )
    caplog.clear()
    code, output, out = sized_study(tmp_path / "alike", "label-stats-sized", u_limit=20)  # twice: no warning
    assert code == 0 and "different numbers of examples" not in (out / "run.log").read_text() + caplog.text
    code, output, out = sized_study(tmp_path / "plain", "label-stats", u_limit=10)  # a method that does not declare it
    assert code == 0 and "different numbers of examples" not in (out / "run.log").read_text() + caplog.text
