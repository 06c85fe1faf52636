"""Image datasets for real training, read without torchvision, with a fixed seeded split.

Names: ``mnist5k`` (5,000 MNIST digits shipped with the package; the offline default), ``cifar10`` and
``cifar100`` (the standard python-pickle folders, ``data_dir`` required) and ``npz:PATH`` (a NumPy file
with keys ``x`` and ``y``). Images are kept as NCHW arrays in their stored dtype (uint8 stays uint8, a
quarter of the memory of float32); the trainer scales and normalises each batch on the device.

The split depends only on the dataset and ``split_seed``, never on the training seed, so trials that
differ in seed are compared on the same images. :func:`split_indices` returns it for saving with a run.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lapt.tools.train.errors import TrainingInputError

MNIST5K_FILE = "mnist_5k.csv.gz"
MNIST5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
CIFAR_FILES = {
    "cifar10": (("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
                ("test_batch",), b"labels", 10),
    "cifar100": (("train",), ("test",), b"fine_labels", 100),
}
DATASET_NAMES = ("mnist5k", "cifar10", "cifar100", "npz:PATH")
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1  # only for sets without an official test split (mnist5k, npz)


@dataclass(frozen=True)
class DatasetSplits:
    """Train/validation/test arrays of one dataset and the indices that made them.

    ``indices`` maps ``"train"``, ``"val"`` and ``"test"`` to positions in the source: for CIFAR the
    train and val positions index the official training set and test positions the official test set;
    for mnist5k and npz all three index the single pool of images.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    augment: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    indices: dict[str, list[int]] = field(repr=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def pixel_scale(self) -> float:
        """Factor taking stored pixels to the scale of ``mean``/``std`` (1/255 for uint8)."""
        return 1.0 / 255.0 if self.x_train.dtype == np.uint8 else 1.0

    @property
    def in_channels(self) -> int:
        return self.image_shape[0]

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _packaged_mnist() -> Path:
    """The copy shipped in ``lapt/data`` (found without importing anything but the ``lapt`` root)."""
    spec = importlib.util.find_spec("lapt.data")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / MNIST5K_FILE
        if candidate.is_file():
            return candidate
    raise TrainingInputError(f"the packaged {MNIST5K_FILE} is missing from lapt/data")


@functools.lru_cache(maxsize=4)
def _read_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV once per process; the checksum guards against a truncated or swapped file."""
    if _sha256(path) != MNIST5K_SHA256:
        raise TrainingInputError(f"{path}: sha256 does not match the recorded MNIST-5k checksum")
    with gzip.open(path, "rt") as handle:
        rows = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    x = rows[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28)
    y = rows[:, 784].astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds plain NumPy arrays and nothing else.

    CIFAR's python format is pickle, which can run arbitrary code; allowing only the globals a NumPy
    array needs makes a hostile "batch file" fail to load instead of executing.
    """

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise TrainingInputError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise TrainingInputError(f"{path}: expected N x 3072 images and N labels, got {data.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar(name: str, data_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                  np.ndarray, int]:
    train_files, test_files, label_key, num_classes = CIFAR_FILES[name]
    if data_dir is None:
        raise TrainingInputError(f"{name} needs data_dir: the folder holding {', '.join(train_files)}")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise TrainingInputError(f"{name}: data directory {folder} does not exist")
    missing = [f for f in (*train_files, *test_files) if not (folder / f).is_file()]
    if missing:
        raise TrainingInputError(f"{name}: {folder} lacks batch file(s) {', '.join(missing)}")
    train = [_read_cifar_batch(folder / f, label_key) for f in train_files]
    test = [_read_cifar_batch(folder / f, label_key) for f in test_files]
    x_pool = np.concatenate([x for x, _ in train])
    y_pool = np.concatenate([y for _, y in train])
    x_test = np.concatenate([x for x, _ in test])
    y_test = np.concatenate([y for _, y in test])
    return x_pool, y_pool, x_test, y_test, num_classes


def _load_npz(path_text: str) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path_text)
    if not path.is_file():
        raise TrainingInputError(f"npz dataset file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x", "y") if key in archive.files}
            found = sorted(archive.files)
    except (OSError, ValueError) as exc:
        raise TrainingInputError(f"{path}: not a readable .npz file ({exc})") from exc
    if len(arrays) != 2:
        raise TrainingInputError(f"{path}: needs arrays 'x' and 'y', has {found}")
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise TrainingInputError(f"{path}: x has {len(x)} images but y has {len(y)} labels")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise TrainingInputError(f"{path}: y must be a 1-D array of non-negative integer labels")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] <= 4 < x.shape[1]:  # NHWC with few channels -> NCHW
        x = np.transpose(x, (0, 3, 1, 2))
    elif x.ndim != 4:
        raise TrainingInputError(f"{path}: x must be (N,H,W), (N,H,W,C) or (N,C,H,W), got {x.shape}")
    if len(y) < 3:
        raise TrainingInputError(f"{path}: needs at least 3 images for a train/val/test split")
    return np.ascontiguousarray(x), y.astype(np.int64)


def _permutation(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def _pool_split(n: int, seed: int) -> dict[str, np.ndarray]:
    """Split one pool into train/val/test; each part gets at least one image."""
    order = _permutation(n, seed)
    n_val = max(1, round(n * VAL_FRACTION))
    n_test = max(1, round(n * TEST_FRACTION))
    return {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}


def _train_val_split(n_pool: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """Carve a validation set out of an official training set; the official test set stays whole."""
    order = _permutation(n_pool, seed)
    n_val = max(1, round(n_pool * VAL_FRACTION))
    return {"val": order[:n_val], "train": order[n_val:], "test": np.arange(n_test)}


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the [0, 1] scale for uint8 images (training split only)."""
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    flat = x.reshape(x.shape[0], x.shape[1], -1).astype(np.float64) / scale
    mean = flat.mean(axis=(0, 2))
    std = flat.std(axis=(0, 2))
    std = np.where(std > 0, std, 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _parse_name(name: str) -> str:
    if name in ("mnist5k", "cifar10", "cifar100"):
        return name
    if name.startswith("npz:") and len(name) > 4:
        return "npz"
    raise TrainingInputError(f"unknown dataset {name!r} (known: {', '.join(DATASET_NAMES)})")


def load_dataset(name: str, data_dir: str | Path | None = None, split_seed: int = 0,
                 max_train_images: int | None = None) -> DatasetSplits:
    """Load ``name`` and split it into train/validation/test.

    Args:
        name: ``mnist5k``, ``cifar10``, ``cifar100`` or ``npz:PATH``.
        data_dir: folder with the CIFAR batch files, or with ``mnist_5k.csv.gz`` to override the
            packaged copy (its sha256 is checked either way). Ignored for ``npz:``.
        split_seed: seed of the split (not of training).
        max_train_images: keep only the first N training images of the seeded order (quick runs).

    Raises:
        TrainingInputError: unknown name, missing folder or file, malformed contents.
    """
    kind = _parse_name(name)
    if kind == "mnist5k":
        path = Path(data_dir) / MNIST5K_FILE if data_dir is not None else _packaged_mnist()
        if not path.is_file():
            raise TrainingInputError(f"mnist5k: {path} does not exist")
        x_pool, y_pool = _read_mnist5k(path)
        parts = _pool_split(len(y_pool), split_seed)
        x_test, y_test = x_pool[parts["test"]], y_pool[parts["test"]]
        num_classes, augment = 10, False
    elif kind == "npz":
        x_pool, y_pool = _load_npz(name[4:])
        parts = _pool_split(len(y_pool), split_seed)
        x_test, y_test = x_pool[parts["test"]], y_pool[parts["test"]]
        num_classes, augment = int(y_pool.max()) + 1, False
    else:
        x_pool, y_pool, x_all_test, y_all_test, num_classes = _load_cifar(kind, data_dir)
        parts = _train_val_split(len(y_pool), len(y_all_test), split_seed)
        x_test, y_test = x_all_test, y_all_test
        augment = True
    if max_train_images is not None:
        if max_train_images < 1:
            raise TrainingInputError(f"max_train_images must be >= 1, got {max_train_images}")
        parts["train"] = parts["train"][:max_train_images]
    x_train = x_pool[parts["train"]]
    mean, std = _channel_stats(x_train)
    return DatasetSplits(
        name=name,
        x_train=x_train,
        y_train=y_pool[parts["train"]],
        x_val=x_pool[parts["val"]],
        y_val=y_pool[parts["val"]],
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        augment=augment,
        mean=mean,
        std=std,
        indices={k: [int(i) for i in v] for k, v in parts.items()},
    )


def split_indices(name: str, data_dir: str | Path | None = None, split_seed: int = 0,
                  max_train_images: int | None = None) -> dict[str, list[int]]:
    """The train/val/test indices :func:`load_dataset` uses, as JSON-ready lists, for saving with a run."""
    return load_dataset(name, data_dir, split_seed, max_train_images).indices
