"""Dataset loaders on data the tests make: ImageFolder trees and tarballs, torchvision formats, Tiny-ImageNet."""
from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from varmixup_bench.training.data import load_dataset, stratified_subset
from varmixup_bench.core.errors import BenchError


def test_digits_is_unit_range_and_stratified(digits):
    assert digits.image_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.train) + len(digits.test) == 1797 and len(digits.test) == 360
    for s in (digits.train, digits.test):
        assert s.x.dtype == torch.float32 and s.x.min() >= 0 and s.x.max() == 1
    share = torch.bincount(digits.test.y) / len(digits.test)
    assert (share - 0.1).abs().max() < 0.01
    again = load_dataset("digits")
    assert torch.equal(again.test.x, digits.test.x)  # fixed split


def test_subsets_are_stratified_and_seeded(digits):
    a = stratified_subset(digits.train, 200, 0, "--train-subset")
    assert len(a) == 200 and torch.bincount(a.y).min() >= 19
    assert torch.equal(a.y, stratified_subset(digits.train, 200, 0, "--train-subset").y)
    assert not torch.equal(a.x, stratified_subset(digits.train, 200, 1, "--train-subset").x)
    with pytest.raises(BenchError, match="--train-subset 5 is smaller than the number of classes"):
        stratified_subset(digits.train, 5, 0, "--train-subset")


def _make_tree(root, size=(6, 5), per_class=4):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "ant", "dog"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(d / f"{i}.png")


def test_imagefolder_dir_and_tarball_agree(tmp_path):
    _make_tree(tmp_path / "tree")
    a = load_dataset(f"imagefolder:{tmp_path / 'tree'}")
    assert a.classes == ["ant", "cat", "dog"] and a.image_shape == (3, 6, 5)
    assert len(a.train) == 12 and sorted(torch.bincount(a.train.y).tolist()) == [4, 4, 4]
    tgz = tmp_path / "tree.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "tree", arcname="top")
    b = load_dataset(f"imagefolder:{tgz}", cache_dir=tmp_path / "cache")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    c = load_dataset(f"imagefolder:{tgz}", cache_dir=tmp_path / "cache")  # from the decoded cache
    assert torch.allclose(c.train.x, b.train.x, atol=1 / 510) and c.classes == b.classes
    assert any((tmp_path / "cache" / "imagefolder").iterdir())


def test_imagefolder_cache_follows_the_images_not_the_folder_mtime(tmp_path, monkeypatch):
    """A folder's mtime does not change when an image inside a class folder is rewritten: the decoded cache must
    still see the new image. A tarball's cache is keyed by its bytes, so a copy or a touch still hits it, and a
    changed tarball replaces its stale cache instead of leaving it beside the new one."""
    import os

    import varmixup_bench.training.data as data

    tree, cache = tmp_path / "tree", tmp_path / "cache"
    _make_tree(tree)
    a = load_dataset(f"imagefolder:{tree}", cache_dir=cache)
    target = tree / "train" / "ant" / "0.png"
    st_root = os.stat(tree)
    Image.fromarray(np.full((6, 5, 3), 7, dtype=np.uint8)).save(target)
    os.utime(tree, ns=(st_root.st_atime_ns, st_root.st_mtime_ns))  # the root folder looks untouched
    b = load_dataset(f"imagefolder:{tree}", cache_dir=cache)
    assert not torch.equal(a.train.x, b.train.x)
    assert torch.allclose(b.train.x[0], torch.full((3, 6, 5), 7 / 255))  # class "ant" sorts first, 0.png first
    assert len(list((cache / "imagefolder").iterdir())) == 1  # the stale cache of the old images is gone

    tgz = tmp_path / "tree.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tree, arcname="top")
    first = load_dataset(f"imagefolder:{tgz}", cache_dir=cache)
    os.utime(tgz, ns=(1, 1))  # touched (or copied anew): same bytes, so the cache is read, nothing is decoded
    monkeypatch.setattr(data, "_read_tree", lambda *a, **k: pytest.fail("decoded again despite a valid cache"))
    again = load_dataset(f"imagefolder:{tgz}", cache_dir=cache)
    assert torch.equal(first.train.x, again.train.x)
    assert len(list((cache / "imagefolder").iterdir())) == 2  # one per source



def test_a_cache_write_cut_short_leaves_no_marker_nor_partial_file_and_is_decoded_again(tmp_path, monkeypatch):
    """A crash while the decoded cache is written (here the third array's write fails) leaves no classes.json,
    the marker a load trusts, and no half-written file; the next load decodes the images again and caches them."""
    from varmixup_bench.training import data

    _make_tree(tmp_path / "tree")
    cache, real_save, calls = tmp_path / "cache", np.save, []

    def failing_save(fh, arr, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_save(fh, arr, *a, **k)

    monkeypatch.setattr(data.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        load_dataset(f"imagefolder:{tmp_path / 'tree'}", cache_dir=cache)
    (folder,) = (cache / "imagefolder").iterdir()
    assert not (folder / "classes.json").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["train_x.npy", "train_y.npy"]  # whole files only
    monkeypatch.setattr(data.np, "save", real_save)
    again = load_dataset(f"imagefolder:{tmp_path / 'tree'}", cache_dir=cache)
    assert (folder / "classes.json").exists() and again.classes == ["ant", "cat", "dog"]
    monkeypatch.setattr(data, "_read_tree", lambda *a, **k: pytest.fail("decoded again despite a complete cache"))
    assert torch.equal(load_dataset(f"imagefolder:{tmp_path / 'tree'}", cache_dir=cache).test.y, again.test.y)

def test_imagefolder_without_test_split_fails_clearly(tmp_path):
    (tmp_path / "t" / "train" / "a").mkdir(parents=True)
    with pytest.raises(BenchError, match="expected .*test"):
        load_dataset(f"imagefolder:{tmp_path / 't'}")


def test_cifar10_loader_reads_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    def batch(n):
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10)}
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        written[name] = batch(20)
        with open(base / name, "wb") as fh:
            pickle.dump(written[name], fh)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)  # md5s of the real files
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: True)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert ds.image_shape == (3, 32, 32) and len(ds.train) == 100 and len(ds.test) == 20
    assert ds.classes[0] == "c0" and ds.train.x.max() <= 1
    # the pixels where CIFAR's rows put them: 1,024 red, then green, then blue values, each row-major
    test = written["test_batch"]
    expect = torch.from_numpy(test["data"].reshape(20, 3, 32, 32)).float() / 255
    torch.testing.assert_close(ds.test.x, expect)
    assert ds.test.y.tolist() == test["labels"]


def test_svhn_loader_reads_mat_files(tmp_path, monkeypatch):
    import scipy.io
    import torchvision.datasets as tvd

    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("test", 10)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1)  # SVHN stores digit 0 as label 10
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
    monkeypatch.setattr(tvd.SVHN, "_check_integrity", lambda self: True)
    ds = load_dataset("svhn", data_dir=tmp_path)
    assert ds.image_shape == (3, 32, 32) and set(ds.train.y.tolist()) == set(range(10))
    # label 10 is the digit 0, and the .mat's H x W x C x N images come out as N x C x H x W
    assert ds.test.y.tolist() == [(k % 10 + 1) % 10 for k in range(10)]
    torch.testing.assert_close(ds.test.x, torch.from_numpy(X.transpose(3, 2, 0, 1)).float() / 255)


def test_tiny_imagenet_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids))
    lines = []
    for k, w in enumerate(wnids):
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (64, 64), (k * 100, i, 0)).save(d / f"{w}_{i}.JPEG")
        Image.new("RGB", (64, 64), (k * 100, 0, 0)).save(root / "val" / "images" / f"val_{k}.JPEG")
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t64\t64")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines))
    ds = load_dataset("tiny-imagenet", data_dir=tmp_path)
    assert ds.image_shape == (3, 64, 64) and len(ds.train) == 6 and ds.test.y.tolist() == [0, 1]


def test_missing_files_give_one_line_errors(tmp_path):
    for name, expect in (("cifar100", "cifar-100-python"), ("svhn", "train_32x32.mat"), ("tiny-imagenet", "wnids.txt")):
        with pytest.raises(BenchError, match=expect) as info:
            load_dataset(name, data_dir=tmp_path / "none")
        assert "\n" not in str(info.value)
