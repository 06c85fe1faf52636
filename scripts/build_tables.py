"""Convert the shared benchmark files into the compact tables shipped in ``lapt/data``.

Run once from the repository root: ``python scripts/build_tables.py ../shared/data``. Each table becomes
an ``.npz`` of float arrays in the canonical enumeration order of its space (mixed radix over op names,
see :meth:`lapt.spaces.cell.CellSpace.index`), so a lookup is one dict hit and one array read. The
sha256 of every written file goes into ``lapt/data/tables.json``, which the loader verifies.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from lapt.spaces import get_space

OUT = Path(__file__).resolve().parents[1] / "lapt" / "data"
NB201_FILES = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16-120"}


def _save(name: str, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    (OUT / name).write_bytes(data)
    manifest[name] = {"sha256": hashlib.sha256(data).hexdigest(), "arrays": sorted(arrays)}
    print(f"wrote {name}: {len(data) / 1e6:.2f} MB")


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"build_tables: {what}")


def _rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def main(src: Path) -> None:
    nb201 = get_space("nb201")
    tnb = get_space("tnb101")
    n = nb201.size()
    manifest: dict[str, dict] = {}

    arrays: dict[str, np.ndarray] = {}
    for task, stem in NB201_FILES.items():
        raw = json.loads((src / "nb201" / f"nasbench201_{stem}.json").read_text())
        val = np.full(n, np.nan)
        test = np.full(n, np.nan)
        for arch, rec in raw.items():
            i = nb201.index(nb201.from_str(arch))
            val[i], test[i] = rec["val_acc_200"], rec["test_acc_200"]
        _check(not np.isnan(val).any() and not np.isnan(test).any(), f"{task}: missing cells")
        arrays[f"{task}/val"], arrays[f"{task}/test"] = val, test
    _save("nb201_200epoch.npz", arrays, manifest)

    rows = _rows(src / "nb201" / "nasbench201_12epoch.csv.gz")
    cols = {
        "cifar10/val": "cifar10-valid_val",
        "cifar10/test": "cifar10_test",
        "cifar100/val": "cifar100_val",
        "cifar100/test": "cifar100_test",
        "ImageNet16-120/val": "ImageNet16-120_val",
        "ImageNet16-120/test": "ImageNet16-120_test",
    }
    arrays = {k: np.full(n, np.nan) for k in cols}
    official = np.full(n, -1, dtype=np.int32)
    for row in rows:
        i = nb201.index(nb201.from_str(row["arch"]))
        official[i] = int(row["index"])
        for key, col in cols.items():
            arrays[key][i] = float(row[col])
    _check(bool((official >= 0).all()), "12-epoch table: missing cells")
    arrays["official_index"] = official
    _save("nb201_12epoch.npz", arrays, manifest)

    rows = _rows(src / "nb201" / "nasbench201_latency_ms.csv.gz")
    devices = [c for c in rows[0] if c not in ("index", "arch")]
    lat = np.full((n, len(devices)), np.nan, dtype=np.float32)
    for row in rows:
        i = nb201.index(nb201.from_str(row["arch"]))
        lat[i] = [float(row[d]) for d in devices]
    _check(not np.isnan(lat).any(), "latency table: missing cells")
    _save("nb201_latency_ms.npz", {"latency_ms": lat, "devices": np.array(devices)}, manifest)

    rows = _rows(src / "tnb101" / "transnasbench101_micro.csv.gz")
    tasks = [c for c in rows[0] if c != "arch"]
    m = tnb.size()
    arrays = {f"{t}/val": np.full(m, np.nan) for t in tasks}
    for row in rows:
        i = tnb.index(tnb.from_str(row["arch"]))
        for t in tasks:
            arrays[f"{t}/val"][i] = float(row[t])
    _check(all(not np.isnan(a).any() for a in arrays.values()), "tnb101: missing cells")
    _save("tnb101_micro.npz", arrays, manifest)

    (OUT / "tables.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
