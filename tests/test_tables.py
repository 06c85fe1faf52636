"""Shipped benchmark tables: values, checksums, lookups."""

from __future__ import annotations

import shutil

import pytest

from lapt.errors import TableIntegrityError, UserError
from lapt.tables.builtin import load_latency, load_table, read_verified


@pytest.mark.parametrize(
    "task,test", [("cifar10", 94.373), ("cifar100", 73.513), ("ImageNet16-120", 46.200)]
)
def test_nb201_best_by_validation(task, test):
    table = load_table("nb201")
    best, _ = table.top(task, 1)[0]
    assert table.lookup(best, task).test == pytest.approx(test, abs=5e-4)


def test_nb201_max_test_is_only_reachable_by_peeking():
    table = load_table("nb201")
    assert table.values("ImageNet16-120", "test").max() == pytest.approx(47.311, abs=5e-4)


@pytest.mark.parametrize(
    "task,best,arch",
    [
        ("class_scene", 54.936, "64-41414-3_32_132"),
        ("class_object", 45.586, "64-41414-3_13_113"),
        ("room_layout", -0.6010, "64-41414-3_11_133"),
        ("jigsaw", 95.372, "64-41414-3_30_132"),
        ("segmentsemantic", 94.613, "64-41414-3_13_022"),
        ("normal", 0.5873, "64-41414-1_30_123"),
        ("autoencoder", 0.5772, "64-41414-1_20_310"),
    ],
)
def test_tnb101_best_values(task, best, arch):
    table = load_table("tnb101")
    g, val = table.top(task, 1)[0]
    assert val == pytest.approx(best, abs=5e-4)
    assert table.space.to_str(g) == arch
    assert table.lookup(g, task).test is None


def test_twelve_epoch_and_latency():
    low = load_table("nb201-12epoch")
    assert set(low.tasks) == {"cifar10", "cifar100", "ImageNet16-120"}
    devices, lat = load_latency()
    assert len(devices) == 27 and lat.shape == (15_625, 27)


def test_unknown_task():
    with pytest.raises(UserError, match="unknown task"):
        load_table("nb201").check_task("mnist")


def test_corrupted_and_truncated_tables_are_refused(tmp_path):
    from lapt.tables.builtin import DATA_DIR

    shutil.copy(DATA_DIR / "tables.json", tmp_path / "tables.json")
    data = (DATA_DIR / "tnb101_micro.npz").read_bytes()
    (tmp_path / "tnb101_micro.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(TableIntegrityError, match="corrupted or truncated"):
        read_verified("tnb101_micro.npz", tmp_path)
    flipped = bytearray(data)
    flipped[100] ^= 0xFF
    (tmp_path / "tnb101_micro.npz").write_bytes(bytes(flipped))
    with pytest.raises(TableIntegrityError):
        read_verified("tnb101_micro.npz", tmp_path)
    (tmp_path / "tnb101_micro.npz").unlink()
    with pytest.raises(TableIntegrityError, match="cannot be read"):
        read_verified("tnb101_micro.npz", tmp_path)
