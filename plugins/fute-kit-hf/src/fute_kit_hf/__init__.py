"""fute_kit plugin: HuggingFace surrogates, dataset sources, model sources and ``textemb``.

Modules are imported inside the hooks so that ``import fute_kit`` never pulls in torch.
"""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl
from fute_kit_hf.finetune import finetune_classifier, read_finetune_info  # light: torch loads when one runs
from fute_kit_hf.models import local_or_hub, quiet_transformers  # light: torch loads when one runs

__all__ = [
    "finetune_classifier",
    "local_or_hub",
    "quiet_transformers",
    "read_finetune_info",
]  # what other plugins may use (fute demo)


@hookimpl
def register_dataset_sources(register: Any) -> None:
    from fute_kit_hf.datasets import BuiltinDataset, FilesDataset, HFDatasetsDataset

    register(FilesDataset)
    register(HFDatasetsDataset)
    register(BuiltinDataset)


@hookimpl
def register_model_sources(register: Any) -> None:
    from fute_kit_hf.models import HFClassifier
    from fute_kit_hf.prompted import HFPrompted

    register(HFClassifier)
    register(HFPrompted)


@hookimpl
def register_methods(register: Any) -> None:
    from fute_kit_hf.textemb import TextEmb

    register(TextEmb)


@hookimpl
def adapt_model(obj: Any) -> Any:
    from fute_kit_hf.models import adapt_loaded_model

    return adapt_loaded_model(obj)


@hookimpl
def register_commands(cli: Any) -> None:
    # click is light; the command imports torch only when it runs.
    from fute_kit_hf.cli import finetune_command, transfer_command

    cli.add_command(finetune_command)
    cli.add_command(transfer_command)


@hookimpl
def report_setup(report: Any) -> None:
    # `fute plugins`: where minilm and smollm2 resolve (their package's folder, or their hub id without it).
    from fute_kit_hf.assets import alias_resolutions

    for aliases, target in alias_resolutions().items():
        report(f"alias {aliases}", target)
