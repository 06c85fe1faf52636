"""lapt: design principle transfer for neural architecture search.

Kept import-light on purpose: the training worker imports ``lapt.tools.train`` on bare GPU machines
that have only torch and numpy, so nothing heavy may be imported here. The Python API is loaded on
first use.
"""

from __future__ import annotations

from typing import Any

from lapt.version import __version__

__all__ = ["__version__", "build_graph", "run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from lapt.api import run

        return run
    if name == "build_graph":
        from lapt.graph.build import build_graph

        return build_graph
    raise AttributeError(name)
