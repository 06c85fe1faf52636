"""The benchmark tables shipped inside the package, verified against their sha256 on load.

Provenance and checksums: ``lapt/data/PROVENANCE.md`` and ``lapt/data/tables.json``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from lapt.errors import TableIntegrityError, UserError
from lapt.spaces import get_space
from lapt.spaces.cell import CellSpace
from lapt.tables.base import BenchmarkTable

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# table name -> (space, file, fidelity label)
TABLES: dict[str, tuple[str, str, str]] = {
    "nb201": ("nb201", "nb201_200epoch.npz", "200 epochs"),
    "nb201-12epoch": ("nb201", "nb201_12epoch.npz", "12 epochs"),
    "tnb101": ("tnb101", "tnb101_micro.npz", "final epoch"),
}

TABLELESS_BUILTINS = ("darts",)
"""Built-in spaces without a shipped table: evaluated by training their networks."""



def read_verified(name: str, data_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Read a shipped ``.npz`` after checking its sha256 against ``tables.json``.

    Raises:
        TableIntegrityError: the file is missing, truncated or altered.
    """
    base = data_dir or DATA_DIR
    path = base / name
    try:
        manifest = json.loads((base / "tables.json").read_text())
        expected = manifest[name]["sha256"]
        data = path.read_bytes()
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise TableIntegrityError(f"benchmark table {path} cannot be read: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise TableIntegrityError(
            f"benchmark table {path} is corrupted or truncated (sha256 {digest[:12]}..., "
            f"expected {expected[:12]}...); reinstall lapt"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise TableIntegrityError(f"benchmark table {path} cannot be decoded: {e}") from e


@functools.cache
def load_table(name: str) -> BenchmarkTable:
    """Load (once per process) the shipped table called ``name``: nb201, nb201-12epoch or tnb101."""
    if name not in TABLES:
        raise UserError(f"unknown benchmark table {name!r} (known: {', '.join(TABLES)})")
    space_name, file, fidelity = TABLES[name]
    space = get_space(space_name)
    if not isinstance(space, CellSpace):
        raise UserError(f"space {space_name} has no benchmark table")
    return BenchmarkTable(name, space, read_verified(file), fidelity)


@functools.cache
def load_latency() -> tuple[tuple[str, ...], np.ndarray]:
    """NB201 latency in ms: (device names, array[cell index, device])."""
    arrays = read_verified("nb201_latency_ms.npz")
    return tuple(str(d) for d in arrays["devices"]), arrays["latency_ms"]
