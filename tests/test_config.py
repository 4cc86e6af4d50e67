"""Configuration validation: every section and key checked, with close matches; options' validators each reported."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from fute_kit.config import override, parse_config
from fute_kit.errors import ConfigError, OptionsError
from fute_kit.options import option, validate_options
from fute_kit.registry import Registry


def problems(data: dict[str, Any], registry: Registry) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, registry, "study.toml")
    return info.value.problems


def test_free_top_level_keys_are_allowed_but_unknown_tables_are_not(
    toy_registry: Registry, study_config: dict[str, Any]
) -> None:
    assert parse_config({"title": "free", "notes": ["a"], **study_config}, toy_registry).datasets
    found = problems({**study_config, "simlarity": {"metric": "dot"}, "model": [{"name": "x"}]}, toy_registry)
    sections = "sections: [space], [unlabeled], [[datasets]], [[models]], [similarity], [executor]"
    assert found == [
        f"[simlarity]: unknown section (did you mean [similarity]?); {sections}",
        f"[[model]]: unknown section (did you mean [[models]]?); {sections}",
    ]


def test_unknown_space_and_similarity_keys_name_the_key_meant(
    toy_registry: Registry, study_config: dict[str, Any]
) -> None:
    space = {**study_config["space"], "methdo": "x"}
    found = problems({**study_config, "space": space, "similarity": {"metric": "dot", "option": {}}}, toy_registry)
    assert found == [
        "[space]: key 'methdo': unknown key (did you mean method?); allowed keys: method, options, surrogate",
        "[similarity]: key 'option': unknown key (did you mean options?); allowed keys: metric, options",
    ]


def test_a_missing_required_key_points_at_its_misspelling(toy_registry: Registry, study_config: dict[str, Any]) -> None:
    space = {"surrogate": "none", "metod": "label-stats"}
    found = problems({**study_config, "space": space}, toy_registry)
    assert found[:2] == [
        "[space]: key 'metod': unknown key (did you mean method?); allowed keys: method, options, surrogate",
        "[space]: key 'method': missing (for example 'taskemb'); 'metod' looks like a misspelling of it",
    ]


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value}")


@attrs.frozen
class Settings:
    epochs: int = option(3, validator=_positive)
    batch_size: int = option(16, validator=_positive)
    mode: str = option("a", validator=attrs.validators.in_(("a", "b")))

    def __attrs_post_init__(self) -> None:
        if self.mode == "b" and self.epochs > 1:
            raise ValueError("mode 'b' trains one epoch: set epochs = 1")


def test_every_failing_validator_is_reported_under_its_own_option() -> None:
    with pytest.raises(OptionsError) as info:
        validate_options(Settings, {"epochs": 0, "batch_size": -1, "mode": "c"}, "method settings")
    assert [key for key, _ in info.value.problems] == ["epochs", "batch_size", "mode"]
    assert info.value.problems[0] == ("epochs", "epochs must be a positive integer, got 0")


def test_a_check_across_options_is_reported_under_the_option_it_names() -> None:
    with pytest.raises(OptionsError) as info:
        validate_options(Settings, {"mode": "b", "epochs": 2}, "method settings")
    assert info.value.problems == [("mode", "mode 'b' trains one epoch: set epochs = 1")]


def test_overrides_set_dotted_keys_entries_by_name_and_leave_the_file_alone(
    toy_registry: Registry, study_config: dict[str, Any]
) -> None:
    changed = override(
        study_config,
        {"space.options.buckets": 5, "models.prior.probabilities": {"negative": 0.9, "positive": 0.1}, "x.y": 1},
    )
    config = parse_config({k: v for k, v in changed.items() if k != "x"}, toy_registry)
    assert config.space.options["buckets"] == 5 and changed["x"] == {"y": 1}
    prior = next(m for m in config.models if m.name == "prior")
    assert prior.options["probabilities"] == {"negative": 0.9, "positive": 0.1}
    assert study_config["space"]["options"] == {"buckets": 3}  # a copy: the caller's table is unchanged
    assert study_config["models"][1]["probabilities"] == {"negative": 0.5, "positive": 0.5}


@pytest.mark.parametrize(
    ("dotted", "message"),
    [
        ("space", "expected SECTION.KEY (for example space.method or unlabeled.limit)"),
        ("models.nope.keyword", "name an entry of [[models]] as in models.NAME.KEY (entries: good-detector, prior)"),
        ("datasets.limit", "name an entry of [[datasets]] as in datasets.NAME.KEY (entries: reviews, flipped)"),
        ("space.method.x", "space.method is a value, not a table"),
    ],
)
def test_bad_overrides_say_what_to_write(study_config: dict[str, Any], dotted: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        override(study_config, {dotted: 1})
    assert info.value.problems == [f"override {dotted!r}: {message}"]
