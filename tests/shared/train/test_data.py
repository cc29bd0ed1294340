"""Datasets: MNIST from the raw IDX files, ImageFolder trees, the decode cache, and clear errors."""

from __future__ import annotations

import shutil

import pytest
import torch
import torchvision.datasets.mnist as tv_mnist
from torchvision.io import write_png

from shared.train import data as data_mod
from shared.train.data import DataError, channel_stats, describe, load_split

# torchvision 0.29 deprecates its image codecs (shared/data.py and write_png here still use them).
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture
def count_decodes(monkeypatch):
    """Counts calls to the MNIST IDX image decoder that load_split uses on a cache miss."""
    calls = []
    real = tv_mnist.read_image_file

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(tv_mnist, "read_image_file", counting)
    return calls


def test_mnist_splits(data_dir):
    train = load_split("mnist", True, data_dir)
    test = load_split("mnist", False, data_dir)
    assert (len(train), len(test)) == (60000, 10000)
    for s in (train, test):
        assert s.shape == (1, 28, 28)
        assert s.images.shape == (len(s), 1, 28, 28)
        assert s.images.dtype == torch.uint8 and s.labels.dtype == torch.int64
        assert s.classes == [str(i) for i in range(10)]
        assert s.info["name"] == "mnist" and "IDX" in s.info["source"]
        assert s.info["fingerprint"].startswith("sha256:") and len(s.info["fingerprint"]) == 7 + 64
    assert torch.bincount(test.labels, minlength=10).tolist() == TEST_COUNTS
    assert torch.bincount(train.labels, minlength=10).tolist() == TRAIN_COUNTS
    assert (train.info["split"], test.info["split"]) == ("train", "test")
    assert train.info["fingerprint"] != test.info["fingerprint"]
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0


def test_mnist_train_statistics_are_the_usual_normalization(data_dir):
    mean, std = channel_stats(load_split("mnist", True, data_dir).images)
    assert mean == pytest.approx([0.1307], abs=1e-4)
    assert std == pytest.approx([0.3081], abs=1e-4)


def test_cache_is_written_then_used(data_dir, tmp_path, monkeypatch, count_decodes):
    cache = tmp_path / "fresh-cache"
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(cache))
    first = load_split("mnist", False, data_dir)
    assert len(count_decodes) == 1
    files = list(cache.glob("mnist-test-*.pt"))
    assert len(files) == 1 and files[0].stat().st_size > 10000 * 28 * 28
    second = load_split("mnist", False, data_dir)
    assert len(count_decodes) == 1  # served from the cache: the decoder was not called again
    assert second.info["fingerprint"] == first.info["fingerprint"]
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    assert second.info["source"] == first.info["source"]


def test_a_truncated_cache_file_is_rebuilt(data_dir, tmp_path, monkeypatch, count_decodes):
    cache = tmp_path / "fresh-cache"
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(cache))
    first = load_split("mnist", False, data_dir)
    (path,) = cache.glob("mnist-test-*.pt")
    path.write_bytes(path.read_bytes()[:1000])  # as after a crash mid-write
    again = load_split("mnist", False, data_dir)
    assert len(count_decodes) == 2
    assert torch.equal(again.images, first.images)
    assert path.stat().st_size > 10000 * 28 * 28


def test_fingerprint_depends_on_content_not_location(data_dir, tmp_path, monkeypatch):
    original = load_split("mnist", False, data_dir).info["fingerprint"]
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "other-cache"))
    again = load_split("mnist", False, data_dir).info["fingerprint"]  # decoded afresh
    assert again == original

    copy = tmp_path / "copy"
    (copy / "MNIST" / "raw").mkdir(parents=True)
    for name in data_mod.MNIST_FILES[False]:
        shutil.copy(data_dir / "MNIST" / "raw" / name, copy / "MNIST" / "raw" / name)
    assert load_split("mnist", False, copy).info["fingerprint"] == original

    labels = copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[-1] = (raw[-1] + 1) % 10  # relabel the last test image
    labels.write_bytes(bytes(raw))
    changed = load_split("mnist", False, copy)
    assert changed.info["fingerprint"] != original  # a changed file is not served from the stale cache
    assert int(changed.labels[-1]) == raw[-1]


def _write_folder(root, layout, size=(6, 5), channels=3):
    """layout: {split: {class: count}}; pixel values encode (split, class, index) so loads can be checked."""
    expected = {}
    for split, classes in layout.items():
        for ci, (cls, count) in enumerate(sorted(classes.items())):
            d = root / split / cls
            d.mkdir(parents=True)
            for k in range(count):
                img = torch.full((channels, *size), 10 * ci + k, dtype=torch.uint8)
                img[0, 0, 0] = 200 + (split == "test")
                write_png(img, str(d / f"{k:03d}.png"))
                expected[(split, cls, k)] = img
    return expected


def test_image_folder_dataset(tmp_path):
    pixels = _write_folder(tmp_path / "shapes", {"train": {"circle": 3, "square": 2}, "test": {"circle": 1, "square": 2}})
    train = load_split("shapes", True, tmp_path)
    test = load_split("shapes", False, tmp_path)
    assert train.classes == test.classes == ["circle", "square"]
    assert (len(train), len(test)) == (5, 3)
    assert train.images.shape == (5, 3, 6, 5) and train.images.dtype == torch.uint8
    # classes interleaved (1st of each class, then 2nd of each, ...) so that a train_limit head is balanced
    assert train.labels.tolist() == [0, 1, 0, 1, 0] and test.labels.tolist() == [0, 1, 1]
    assert torch.equal(train.images[0], pixels[("train", "circle", 0)])
    assert torch.equal(train.images[1], pixels[("train", "square", 0)])
    assert torch.equal(train.images[3], pixels[("train", "square", 1)])
    assert torch.equal(train.images[4], pixels[("train", "circle", 2)])
    assert torch.equal(test.images[2], pixels[("test", "square", 1)])
    assert torch.bincount(train.head(4).labels).tolist() == [2, 2]
    assert train.info["name"] == "shapes" and "ImageFolder" in train.info["source"]
    assert describe("shapes", tmp_path) == ((3, 6, 5), ["circle", "square"])


def test_image_folder_grayscale_and_missing_test_class(tmp_path):
    _write_folder(tmp_path / "gray", {"train": {"a": 2, "b": 2, "c": 1}, "test": {"a": 1, "c": 1}}, channels=1)
    test = load_split("gray", False, tmp_path)
    assert test.shape == (1, 6, 5)
    assert test.classes == ["a", "b", "c"]  # class indices come from train, even when test lacks one
    assert test.labels.tolist() == [0, 2]


def test_image_folder_errors(tmp_path):
    _write_folder(tmp_path / "odd", {"train": {"a": 1}, "test": {"a": 1, "zebra": 1}})
    with pytest.raises(DataError, match="zebra"):
        load_split("odd", False, tmp_path)

    _write_folder(tmp_path / "sizes", {"train": {"a": 1}, "test": {"a": 1}})
    write_png(torch.zeros(3, 7, 7, dtype=torch.uint8), str(tmp_path / "sizes" / "train" / "a" / "big.png"))
    with pytest.raises(DataError, match="one size"):
        load_split("sizes", True, tmp_path)

    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class folders"):
        load_split("empty", True, tmp_path)


def test_missing_dataset_names_the_expected_path(tmp_path):
    with pytest.raises(DataError) as exc:
        load_split("flowers", True, tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "flowers") in msg and "train" in msg
    assert "mnist" in msg and "cifar10" in msg  # the built-in names, in case of a typo


def test_missing_mnist_names_the_raw_files(tmp_path):
    for train in (True, False):
        with pytest.raises(DataError) as exc:
            load_split("mnist", train, tmp_path, download=False)
        msg = str(exc.value)
        for name in data_mod.MNIST_FILES[train]:
            assert name in msg
        assert str(tmp_path / "MNIST" / "raw") in msg
        assert "CNNLAB_DOWNLOAD" in msg


def test_missing_cifar10_hints_at_the_jpeg_copy(tmp_path):
    with pytest.raises(DataError) as exc:
        load_split("cifar10", True, tmp_path, download=False)
    assert "data_batch_1" in str(exc.value) and "cifar10-jpeg" not in str(exc.value)

    (tmp_path / "cifar10-jpeg" / "train").mkdir(parents=True)
    with pytest.raises(DataError) as exc:
        load_split("cifar10", False, tmp_path, download=False)
    assert "test_batch" in str(exc.value)
    assert "dataset=cifar10-jpeg" in str(exc.value)


def test_head_limits_samples(data_dir):
    test = load_split("mnist", False, data_dir)
    head = test.head(100)
    assert len(head) == 100 and torch.equal(head.images, test.images[:100])
    assert head.info["limit"] == 100 and head.info["fingerprint"] == test.info["fingerprint"]
    assert test.head(None) is test and test.head(10**6) is test


def test_provided_cifar10_jpeg_layout(data_dir):
    root = data_dir / "cifar10-jpeg"
    if not root.is_dir():
        pytest.skip("no cifar10-jpeg in the test data")
    shape, classes = describe("cifar10-jpeg", data_dir)
    assert shape == (3, 32, 32)
    assert classes == data_mod.CIFAR10_CLASSES


def test_a_loaded_split_stays_resident_in_the_process(data_dir, tmp_path, monkeypatch, count_decodes):
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "fresh-cache"))
    first = load_split("mnist", False, data_dir)
    again = load_split("mnist", False, data_dir)
    assert again.images.data_ptr() == first.images.data_ptr()  # the very same tensors: not loaded again
    assert again.info == first.info and again.info is not first.info  # callers may add to their own info

    monkeypatch.setenv("CNNLAB_RESIDENT_SPLITS", "1")
    load_split("mnist", True, data_dir)  # the least recently used split (test) makes room for it
    reloaded = load_split("mnist", False, data_dir)
    assert reloaded.images.data_ptr() != first.images.data_ptr()  # read again, from the cache file
    assert torch.equal(reloaded.images, first.images)
    assert len(count_decodes) == 2  # each split decoded once

    monkeypatch.setenv("CNNLAB_RESIDENT_SPLITS", "0")
    a, b = load_split("mnist", False, data_dir), load_split("mnist", False, data_dir)
    assert a.images.data_ptr() != b.images.data_ptr()  # nothing kept
