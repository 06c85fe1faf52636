"""Shared test settings: no tracing to the network, one torch thread, small fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Tests never trace to LangSmith unless a test sets a local endpoint itself.
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGCHAIN_TRACING_V2"] = "false"
os.environ.pop("LANGSMITH_API_KEY", None)
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)
# Runs add their principle sets to a library; tests use a throw-away one, never the user's.
os.environ["LAPT_PRINCIPLE_STORE"] = str(Path(tempfile.mkdtemp(prefix="lapt-test-")) / "principles.sqlite")
# Keep processes x torch threads within the 2 cores of CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def nb201():
    from lapt.spaces import get_space

    return get_space("nb201")


@pytest.fixture
def tnb101():
    from lapt.spaces import get_space

    return get_space("tnb101")


@pytest.fixture
def darts():
    from lapt.spaces import get_space

    return get_space("darts")
