"""Dataset loaders: MNIST-5k, CIFAR pickle folders, .npz files, the split and the error messages."""

from __future__ import annotations

import gzip
import json
import os
import pickle

import numpy as np
import pytest

from lapt.tools.train import TrainingInputError
from lapt.tools.train.datasets import load_dataset, split_indices

CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def _write_cifar(folder, files, label_key, per_file, num_classes, seed=0):
    """Tiny CIFAR-format batches: images whose first pixel encodes (file, row) so we can trace them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for f_idx, name in enumerate(files):
        data = rng.integers(0, 256, size=(per_file, 3072), dtype=np.uint8)
        data[:, 0] = f_idx * 16 + np.arange(per_file)
        labels = [int(v) for v in rng.integers(0, num_classes, size=per_file)]
        with (folder / name).open("wb") as handle:
            pickle.dump({b"batch_label": b"fake", label_key: labels, b"data": data}, handle)
        written[name] = (data, labels)
    return written


def test_mnist5k_loads_with_a_fixed_split():
    data = load_dataset("mnist5k")
    assert data.sizes == {"train": 4000, "val": 500, "test": 500}
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10
    assert data.x_train.dtype == np.uint8 and not data.augment
    assert set(np.unique(data.y_train)) == set(range(10))
    again = split_indices("mnist5k")
    assert again == data.indices
    parts = [set(v) for v in again.values()]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    json.dumps(again)  # saved with the run as JSON
    assert split_indices("mnist5k", split_seed=1) != again


def test_max_train_images_keeps_the_rest_of_the_split():
    data = load_dataset("mnist5k", max_train_images=100)
    assert data.sizes == {"train": 100, "val": 500, "test": 500}


def test_mnist5k_checksum_is_verified(tmp_path):
    with gzip.open(tmp_path / "mnist_5k.csv.gz", "wt") as handle:
        handle.write(",".join(["0"] * 784 + ["3"]) + "\n")
    with pytest.raises(TrainingInputError, match="sha256"):
        load_dataset("mnist5k", data_dir=tmp_path)


def test_fake_cifar10_folder_loads(tmp_path):
    written = _write_cifar(tmp_path, [*CIFAR10_TRAIN, "test_batch"], b"labels", 6, 10)
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.sizes == {"train": 27, "val": 3, "test": 6}
    assert data.image_shape == (3, 32, 32) and data.num_classes == 10 and data.augment
    pool = np.concatenate([written[f][0] for f in CIFAR10_TRAIN]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([written[f][1] for f in CIFAR10_TRAIN])
    train_idx = data.indices["train"]
    np.testing.assert_array_equal(data.x_train, pool[train_idx])
    np.testing.assert_array_equal(data.y_train, labels[train_idx])
    np.testing.assert_array_equal(data.x_test, written["test_batch"][0].reshape(-1, 3, 32, 32))


def test_fake_cifar100_folder_uses_fine_labels(tmp_path):
    _write_cifar(tmp_path, ["train", "test"], b"fine_labels", 20, 100)
    data = load_dataset("cifar100", data_dir=tmp_path)
    assert data.num_classes == 100 and data.sizes == {"train": 18, "val": 2, "test": 20}


def test_cifar_folder_with_a_missing_batch_is_an_error(tmp_path):
    _write_cifar(tmp_path, [*CIFAR10_TRAIN, "test_batch"], b"labels", 2, 10)
    os.remove(tmp_path / "data_batch_3")
    with pytest.raises(TrainingInputError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_needs_an_existing_data_dir(tmp_path):
    with pytest.raises(TrainingInputError, match="needs data_dir"):
        load_dataset("cifar10")
    with pytest.raises(TrainingInputError, match="does not exist"):
        load_dataset("cifar100", data_dir=tmp_path / "nowhere")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_batch_that_is_not_plain_arrays_is_refused(tmp_path):
    _write_cifar(tmp_path, [*CIFAR10_TRAIN, "test_batch"], b"labels", 2, 10)
    with (tmp_path / "data_batch_1").open("wb") as handle:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, handle)
    with pytest.raises(TrainingInputError, match="refusing"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_npz_loader_handles_layouts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "gray.npz"
    np.savez(path, x=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), y=np.arange(20) % 4)
    data = load_dataset(f"npz:{path}")
    assert data.image_shape == (1, 8, 8) and data.num_classes == 4
    assert data.sizes == {"train": 16, "val": 2, "test": 2}
    nhwc = tmp_path / "rgb.npz"
    np.savez(nhwc, x=rng.random((10, 8, 8, 3), dtype=np.float32), y=np.zeros(10, dtype=np.int64))
    data = load_dataset(f"npz:{nhwc}")
    assert data.image_shape == (3, 8, 8) and data.pixel_scale == 1.0


def test_npz_with_mismatched_lengths_is_an_error(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((20, 8, 8), dtype=np.uint8), y=np.zeros(19, dtype=np.int64))
    with pytest.raises(TrainingInputError, match="x has 20 images but y has 19 labels"):
        load_dataset(f"npz:{path}")


def test_npz_missing_file_or_keys_is_an_error(tmp_path):
    with pytest.raises(TrainingInputError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'none.npz'}")
    path = tmp_path / "keys.npz"
    np.savez(path, images=np.zeros((4, 8, 8)), labels=np.zeros(4))
    with pytest.raises(TrainingInputError, match="needs arrays 'x' and 'y'"):
        load_dataset(f"npz:{path}")


@pytest.mark.parametrize("name", ["imagenet", "npz:", "MNIST5K"])
def test_unknown_dataset_is_an_error(name):
    with pytest.raises(TrainingInputError, match="unknown dataset"):
        load_dataset(name)


def test_errors_are_one_line(tmp_path):
    with pytest.raises(TrainingInputError) as info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_cuda_requested_without_cuda_is_a_clear_error():
    torch = pytest.importorskip("torch")
    from lapt.tools.train.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TrainingInputError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(TrainingInputError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("auto").type == "cpu"
