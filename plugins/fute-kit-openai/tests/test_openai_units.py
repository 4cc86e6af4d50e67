"""Unit tests of the openai model source: options, prompts, label matching, answer parsing, retries' timing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import fute_kit_openai
from fute_kit.errors import ConfigError, OptionsError
from fute_kit.examples import Examples
from fute_kit_openai.cache import request_key
from fute_kit_openai.client import RetryPolicy, retry_after_seconds
from fute_kit_openai.prompts import LabelMatcher, label_problems, render, template_kind
from fute_kit_openai.responses import positions
from fute_kit_openai.source import OpenAIModel, expand_env

BASE: dict[str, Any] = {
    "model": "m",
    "prompt": "Review: {text}\nSentiment:",
    "labels": {"positive": ["positive", "good"], "negative": ["negative", "bad"]},
}


def build(**options: Any) -> OpenAIModel:
    from fute_kit.testing import make_registry

    return make_registry(fute_kit_openai).build("model_source", "openai", {**BASE, **options})


def test_registered_and_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fute_kit_openai; from fute_kit.testing import make_registry; "
        "make_registry(fute_kit_openai).get('model_source', 'openai'); "
        "print(any(m in sys.modules for m in ('torch', 'openai', 'httpx', 'httpx2', 'sqlite3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_options_report_every_problem_by_key() -> None:
    with pytest.raises(OptionsError) as info:
        build(
            prompt="Review: {txt}",
            labels={"positive": ["pos"], "negative": ["positive", " "]},
            concurrency=0,
            base_url="ftp://x",
            api_key_env="NOT A NAME",
        )
    keys = {key for key, _ in info.value.problems}
    assert {"prompt", "labels", "concurrency", "base_url", "api_key_env"} <= keys
    text = str(info.value)
    assert "{txt}" in text and "prefix" in text and "empty label word" in text


def test_options_in_a_study_config_name_entry_and_key() -> None:
    from fute_kit.config import parse_config
    from fute_kit.testing import make_registry

    data = {
        "space": {"surrogate": "s", "method": "nothing"},
        "unlabeled": {"source": "inline", "texts": ["a"]},
        "models": [{"name": "llm", "source": "openai", **BASE, "prompts": {"p1": "{text}?", "p2": {"prompt": "{x}"}}}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, make_registry(fute_kit_openai))
    problems = "\n".join(info.value.problems)
    assert "llm/p2" in problems and "'prompt'" in problems and "{x}" in problems
    assert "llm/p1" not in problems  # the good prompt of the same entry is fine


def test_few_shot_checked_against_classes_and_template() -> None:
    with pytest.raises(OptionsError, match="not one of the classes"):
        build(few_shot=[{"text": "great", "label": "neutral"}])
    with pytest.raises(OptionsError, match="missing text_a"):
        build(prompt="{text_a} / {text_b}", few_shot=[{"text": "x", "label": "positive"}])
    assert build(few_shot=[{"text": "great", "label": "positive"}]).few_shot


def test_templates() -> None:
    assert template_kind("Q: {text}") == "single"
    assert template_kind("{text_a} ? {text_b}") == "pairs"
    for bad in ("{text_a} only", "{text} and {text_a} {text_b}", "no placeholder", "{text} {"):
        with pytest.raises(ValueError):
            template_kind(bad)
    assert render('JSON {{"a": 1}}: {text}', "x") == 'JSON {"a": 1}: x'
    assert render("{text_a}|{text_b}", "a", "b") == "a|b"


def test_label_collisions() -> None:
    assert label_problems({"a": ["yes"], "b": ["no"]}) == []
    assert any("prefix" in p for p in label_problems({"a": ["Pos"], "b": ["positive"]}))
    assert any("prefix" in p for p in label_problems({"a": ["same"], "b": [" same"]}))
    assert any("two classes" in p for p in label_problems({"a": ["x"]}))


def test_token_matching_and_scores() -> None:
    matcher = LabelMatcher({"positive": ["positive"], "negative": ["negative"], "politics": ["politics"]})
    assert matcher.token_class(" Positive") == 0
    assert matcher.token_class("NEG") == 1
    assert matcher.token_class("\u0120positive") == 0  # GPT-2 style word start
    assert matcher.token_class("po") is None  # could start "positive" or "politics"
    assert matcher.token_class("p") is None and matcher.token_class("The") is None
    top = [("The", math.log(0.5)), ("Positive", math.log(0.2)), (" positive", math.log(0.1)), ("Neg", math.log(0.1))]
    scores = matcher.scores_from_top_logprobs(top)
    assert scores is not None
    np.testing.assert_allclose(scores, [0.2 / 0.3, 0.1 / 0.3, 0.0])  # max over variants, renormalised
    assert matcher.scores_from_top_logprobs([("The", -0.1), (" I", -2.0)]) is None


def test_answer_parsing() -> None:
    matcher = LabelMatcher({"pos": ["positive", "very good"], "neg": ["negative", "good grief"]})
    assert matcher.parse_answer("Positive.") == 0
    assert matcher.parse_answer("The review is NEGATIVE") == 1
    assert matcher.parse_answer("It is very good") == 0
    assert matcher.parse_answer("positively not") is None  # whole words only
    assert matcher.parse_answer("") is None


def test_both_logprob_shapes_are_read() -> None:
    chat_shape = {
        "choices": [
            {
                "text": " yes",
                "logprobs": {
                    "content": [
                        {"token": " yes", "logprob": -0.1, "top_logprobs": [{"token": " yes", "logprob": -0.1}]}
                    ]
                },
            }
        ]
    }
    legacy_shape = {
        "choices": [
            {
                "text": " yes",
                "logprobs": {
                    "tokens": [" yes"],
                    "token_logprobs": [-0.1],
                    "top_logprobs": [{" no": -3.0, " yes": -0.1}],
                },
            }
        ]
    }
    assert positions(chat_shape) == [(" yes", [(" yes", -0.1)])]
    assert positions(legacy_shape) == [(" yes", [(" yes", -0.1), (" no", -3.0)])]
    assert positions({"choices": [{"text": "x", "logprobs": None}]}) is None


def test_request_bodies() -> None:
    inputs = Examples(texts=["a", "b"])
    chat = build(system="Be brief.", few_shot=[{"text": "great", "label": "positive"}]).request_bodies(inputs)
    body = chat[0][0]
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][2]["content"] == "positive" and body["messages"][3]["content"].startswith("Review: a")
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0.0
    completions = build(endpoint="completions", few_shot=[{"text": "great", "label": "positive"}])
    prompt = completions.request_bodies(inputs)[1][0]
    assert (
        prompt["logprobs"] == 20 and prompt["prompt"] == "Review: great\nSentiment: positive\n\nReview: b\nSentiment:"
    )
    sampled = build(mode="sample", samples=3, extra_body={"top_p": 0.9}).request_bodies(inputs)
    assert [b["seed"] for b in sampled[0]] == [0, 1, 2] and sampled[0][0]["temperature"] == 1.0
    assert sampled[0][0]["top_p"] == 0.9 and "logprobs" not in sampled[0][0]


def test_cache_key_ignores_the_key_and_sees_every_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    body = build().request_bodies(Examples(texts=["a"]))[0][0]
    url = "https://api.example.com/v1/chat/completions"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-one")
    first = request_key(url, body)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-two")
    assert request_key(url, body) == first
    assert request_key(url, {**body, "top_logprobs": 5}) != first
    assert request_key(url.replace("example", "other"), body) != first


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUTE_TEST_URL", raising=False)
    assert expand_env("${FUTE_TEST_URL:-http://127.0.0.1:9/v1}") == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("FUTE_TEST_URL", "http://localhost:1234/v1")
    model = build(base_url="${FUTE_TEST_URL}")
    assert model.endpoint_url() == "http://localhost:1234/v1/chat/completions"
    monkeypatch.delenv("FUTE_TEST_URL")
    with pytest.raises(Exception, match="FUTE_TEST_URL"):
        model.endpoint_url()


def test_missing_key_is_a_clear_error_before_any_request(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from fute_kit.components import RunContext
    from fute_kit_openai.errors import MissingAPIKeyError

    monkeypatch.delenv("MY_LLM_KEY", raising=False)
    model = build(base_url="https://api.example.invalid/v1", api_key_env="MY_LLM_KEY")
    with pytest.raises(MissingAPIKeyError, match="MY_LLM_KEY") as info:
        model.predict(Examples(texts=["a"]), RunContext(cache_dir=tmp_path, show_progress=False))
    assert "api.example.invalid" in str(info.value)
    assert build(base_url="http://localhost:8080/v1", api_key_env="MY_LLM_KEY").api_key("http://localhost:8080") is None


def test_inputs_must_match_the_template(tmp_path: Any) -> None:
    from fute_kit.components import RunContext
    from fute_kit.errors import DataError

    context = RunContext(cache_dir=tmp_path, show_progress=False)
    with pytest.raises(DataError, match="text_a"):
        build().predict(Examples(texts=["a"], text_pairs=["b"]), context)
    with pytest.raises(DataError, match="single texts"):
        build(prompt="{text_a} {text_b}").predict(Examples(texts=["a"]), context)


def test_retry_delays() -> None:
    policy = RetryPolicy(backoff=1.0, backoff_max=8.0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 8.0)):
        delays = [policy.delay(attempt, None) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert policy.delay(1, 30.0) == 30.0  # the server's Retry-After wins over the back-off
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


def test_fute_cache_is_a_fute_subcommand() -> None:
    from click.testing import CliRunner

    from fute_kit.cli import cli

    result = CliRunner().invoke(cli, ["cache", "--help"])
    assert result.exit_code == 0 and "info" in result.output and "clear" in result.output


def test_example_study_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from fute_kit.config import load_config
    from fute_kit.registry import get_registry

    registry = get_registry()
    for kind, name in (("method", "taskemb"), ("dataset_source", "builtin")):
        if not registry.has(kind, name):
            pytest.skip(f"the example needs the {kind} {name!r} from another plugin")
    example = Path(__file__).parents[3] / "docs" / "examples" / "llm-prompts.toml"
    config = load_config(example, registry)
    names = [m.name for m in config.models if m.source == "openai"]
    assert len(names) == 6 and "smollm2-topic/few-shot" in names
    # calibrate and the few-shot examples are set once per entry and reach every prompt of it
    few_shot = next(m for m in config.models if m.name == "smollm2-plot-or-opinion/few-shot").options
    assert few_shot["calibrate"] == "batch" and few_shot["labels"]["subjective"] == ["opinion"]
    monkeypatch.setenv("FUTE_OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    model = registry.build("model_source", "openai", config.models[0].options)
    assert model.endpoint_url() == "http://127.0.0.1:9999/v1/chat/completions"
    # The Gemma variant: the same prompts for a base model, through the completions endpoint.
    gemma = load_config(example.with_name("llm-prompts-gemma.toml"), registry)
    prompts = [m for m in gemma.models if m.source == "openai"]
    assert [m.name.split("-", 1)[1] for m in prompts] == [n.split("-", 1)[1] for n in names]
    model = registry.build("model_source", "openai", prompts[0].options)
    assert model.endpoint_url() == "http://127.0.0.1:9999/v1/completions"


def test_local_server_models_by_name_or_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fute_kit_openai import local_server

    path, alias = local_server.resolve_model(None)
    assert (path.name, alias) == (local_server.SMOLLM2_FILE, "smollm2-135m-instruct") and path.is_file()
    own = tmp_path / "my-model.Q4.gguf"
    own.write_bytes(b"GGUF")
    assert local_server.resolve_model(own) == (own, "my-model.Q4")
    with pytest.raises(local_server.LocalServerError, match=r"neither a GGUF file nor a known model.*gemma-3-270m"):
        local_server.resolve_model("gemma-3-27b")
    # A named model not fetched yet says how to fetch it, and names its upstream model and licence.
    monkeypatch.setenv("FUTE_KIT_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(
        local_server.LocalServerError, match=r"Qwen2\.5-Coder-1\.5B.*fute llm fetch qwen2\.5-coder-1\.5b"
    ):
        local_server.resolve_model("qwen2.5-coder-1.5b-instruct")
    with pytest.raises(local_server.LocalServerError, match=r"Gemma Terms of Use.*fute llm fetch gemma-3-270m"):
        local_server.resolve_model("gemma-3-270m")
    # Once fetched (here: a file of the right size where the fetcher puts it), the name resolves to the file.
    from fute_kit.local_models import MODELS

    small = MODELS["gemma-3-270m"]
    fetched = tmp_path / "empty-cache" / "models" / small.file_name
    fetched.parent.mkdir(parents=True)
    with open(fetched, "wb") as handle:
        handle.truncate(small.size)
    assert local_server.resolve_model("gemma-3-270m") == (fetched, "gemma-3-270m")


def test_llm_cli_lists_names_upstream_and_licence_and_fetch_reuses_the_cache(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from fute_kit.local_models import MODELS
    from fute_kit_openai.cli import llm

    monkeypatch.setenv("FUTE_KIT_CACHE", str(tmp_path))
    runner = CliRunner()
    listed = runner.invoke(llm, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.output)}
    qwen = rows["qwen2.5-coder-1.5b-instruct"]
    assert qwen["path"] is None and qwen["parts"] == 22 and qwen["bytes"] == 1_117_320_768
    assert "Apache-2.0" in qwen["licence"] and qwen["upstream"].startswith("Qwen/Qwen2.5-Coder-1.5B-Instruct")
    assert "Gemma Terms of Use" in runner.invoke(llm, ["list"]).output
    unknown = runner.invoke(llm, ["fetch", "qwen-9b"])
    assert unknown.exit_code != 0 and "unknown local model 'qwen-9b'" in str(unknown.exception or unknown.output)
    # A model already in the cache is not fetched again: the command prints its path (no pip, no network).
    model = MODELS["gemma-3-270m"]
    fetched = tmp_path / "models" / model.file_name
    fetched.parent.mkdir(parents=True)
    with open(fetched, "wb") as handle:
        handle.truncate(model.size)
    result = runner.invoke(llm, ["fetch", "gemma-3-270m", "--find-links", str(tmp_path / "nowhere")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(fetched) and "Gemma Terms of Use" in result.output


def test_qwen_prompt_pools_example_loads_with_a_pool_per_dataset() -> None:
    """docs/examples/prompt-pools-qwen.toml: at least 8 prompts per dataset, each prompt's labels its dataset's."""
    from pathlib import Path

    from fute_kit.components import RunContext
    from fute_kit.config import load_config
    from fute_kit.registry import get_registry

    registry = get_registry()
    for kind, name in (("method", "taskemb"), ("dataset_source", "builtin")):
        if not registry.has(kind, name):
            pytest.skip(f"the example needs the {kind} {name!r} from another plugin")
    example = Path(__file__).parents[3] / "docs" / "examples" / "prompt-pools-qwen.toml"
    config = load_config(example, registry)
    pools = {"qwen-sentiment": "rt-sentiment", "qwen-topic": "bbc-topic", "qwen-subjectivity": "rt-subjectivity"}
    pools["qwen-hedge"] = "wiki-hedge"
    for llm, dataset in pools.items():
        prompts = [m for m in config.models if m.name.startswith(f"{llm}/")]
        assert len(prompts) >= 8 and any("/poor-" in m.name for m in prompts), llm
        data = registry.build("dataset_source", "builtin", {"dataset": dataset, "split": "test"})
        classes = set(data.load(RunContext(show_progress=False)).label_names)
        for prompt in prompts:
            model = registry.build("model_source", "openai", prompt.options)
            assert set(model.labels) == classes, prompt.name
            assert model.model == "qwen2.5-coder-1.5b-instruct" and model.calibrate == "none"


def test_llm_serve_serves_the_packaged_model_until_interrupted(tmp_path: Any) -> None:
    """`fute llm serve` passes its options to the server, which answers at the port (a second one there is told the
    port is taken); Ctrl-C stops it."""
    import json
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fute = Path(sys.executable).with_name("fute")
    args = ["llm", "serve", "--port", str(port), "--parallel", "1", "--threads", "1", "--ctx-per-slot", "256"]
    server = subprocess.Popen([str(fute), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        models = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as answer:
                    models = json.load(answer)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(1)
        assert models is not None and any("smollm2" in m["id"] for m in models["data"]), models
        second = subprocess.run([str(fute), *args], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"port {port} is in use" in second.stderr, second.stderr
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert "Traceback" not in output and "RuntimeWarning" not in output, output
    unknown = subprocess.run([str(fute), "llm", "serve", "--model", "qwen-9b"], capture_output=True, text=True)
    assert unknown.returncode != 0 and "neither a GGUF file nor a known model" in unknown.stderr + unknown.stdout
