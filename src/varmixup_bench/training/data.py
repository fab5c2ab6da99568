"""Dataset registry: every dataset yields [0,1] float images (N,C,H,W) and int64 labels; no normalisation here."""
from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry


@dataclass
class Split:
    """One split of a dataset: images in [0,1] as float32 (N,C,H,W) and int64 labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor | None = None  # positions in the dataset's full split (subsets keep them, for pairing)

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"bad split shapes {tuple(self.x.shape)} / {tuple(self.y.shape)}")
        if self.index is None:
            self.index = torch.arange(len(self.y))
        elif len(self.index) != len(self.y):
            raise ValueError(f"split index has {len(self.index)} entries for {len(self.y)} examples")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray | torch.Tensor) -> "Split":
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return Split(self.x[idx_t], self.y[idx_t], self.index[idx_t])


@dataclass
class Dataset:
    """A named dataset with train and test splits and its class names."""

    name: str
    train: Split
    test: Split
    classes: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images (used by the model's own normalisation layer)."""
        x = self.train.x
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return mean.tolist(), std.tolist()


@dataclass(frozen=True)
class DataRequest:
    """Where and how to find a dataset's files."""

    data_dir: Path | None = None
    download: bool = False
    cache_dir: Path | None = None


Loader = Callable[[str | None, DataRequest], Dataset]
DATASETS: Registry[Loader] = Registry("dataset", group="varmixup_bench.datasets")


def _from_uint8_nhwc(arr: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.ndim == 3:
        t = t.unsqueeze(-1)
    return t.permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def _labels(y) -> torch.Tensor:
    return torch.as_tensor(np.asarray(y), dtype=torch.long)


@DATASETS.register("digits", help="scikit-learn's 8x8 handwritten digits (embedded, no download); default")
def load_digits(arg: str | None, req: DataRequest) -> Dataset:
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = _labels(d.target)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=d.target, random_state=0
    )
    return Dataset(
        "digits",
        Split(x[np.sort(idx_train)], y[np.sort(idx_train)]),
        Split(x[np.sort(idx_test)], y[np.sort(idx_test)]),
        [str(i) for i in range(10)],
    )


def _data_root(req: DataRequest, name: str) -> Path:
    if req.data_dir is not None:
        return Path(req.data_dir).expanduser()
    if req.cache_dir is not None:
        return Path(req.cache_dir) / name
    raise BenchError(f"{name}: pass --data-dir DIR (where the files are or should be downloaded to)")


def _torchvision(name: str, expected: str, build: Callable[[str, bool, bool], tuple]) -> Loader:
    def load(arg: str | None, req: DataRequest) -> Dataset:
        root = _data_root(req, name)
        try:
            train_x, train_y, classes = build(str(root), True, req.download)
            test_x, test_y, _ = build(str(root), False, req.download)
        except RuntimeError as exc:
            if "not found" in str(exc).lower() or "download" in str(exc).lower():
                raise BenchError(
                    f"{name}: files not found; expected {root / expected} (pass --data-dir DIR, or --download with network)"
                ) from None
            raise
        except OSError as exc:
            raise BenchError(f"{name}: could not read or download files under {root}: {exc}") from None
        return Dataset(name, Split(train_x, train_y), Split(test_x, test_y), classes)

    return load


def _cifar(cls_name: str):
    def build(root: str, train: bool, download: bool):
        import torchvision.datasets as tvd

        ds = getattr(tvd, cls_name)(root, train=train, download=download)
        return _from_uint8_nhwc(ds.data), _labels(ds.targets), list(ds.classes)

    return build


def _svhn(root: str, train: bool, download: bool):
    import torchvision.datasets as tvd

    ds = tvd.SVHN(root, split="train" if train else "test", download=download)
    x = torch.from_numpy(ds.data).float().div_(255.0)  # already N,C,H,W
    return x, _labels(ds.labels), [str(i) for i in range(10)]


DATASETS.register("cifar10", help="CIFAR-10 via torchvision (--data-dir, --download)")(
    _torchvision("cifar10", "cifar-10-batches-py/", _cifar("CIFAR10"))
)
DATASETS.register("cifar100", help="CIFAR-100 via torchvision (--data-dir, --download)")(
    _torchvision("cifar100", "cifar-100-python/", _cifar("CIFAR100"))
)
DATASETS.register("svhn", help="SVHN via torchvision (--data-dir, --download)")(
    _torchvision("svhn", "train_32x32.mat and test_32x32.mat", _svhn)
)


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _stack(images: list[np.ndarray], labels: list[int], where: str) -> Split:
    if not images:
        raise BenchError(f"no images found in {where}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise BenchError(f"images in {where} differ in size {sorted(shapes)[:3]}; resize them to one size first")
    return Split(_from_uint8_nhwc(np.stack(images)), _labels(labels))


def _read_tree(files: dict[str, list[tuple[str, Callable[[], bytes]]]], where: str) -> Dataset:
    """files maps split -> [(relative path 'class/name', reader)]; classes are sorted folder names, as ImageFolder."""
    classes = sorted({p.split("/")[0] for p, _ in files["train"]})
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split, items in files.items():
        ims, labels = [], []
        for rel, read in sorted(items, key=lambda t: t[0]):
            cls = rel.split("/")[0]
            if cls not in index:
                raise BenchError(f"{where}: class {cls!r} is in {split}/ but not in train/")
            ims.append(_decode(read()))
            labels.append(index[cls])
        splits[split] = _stack(ims, labels, f"{where}/{split}")
    return Dataset("imagefolder", splits["train"], splits["test"], classes)


_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


def _scan_dir(root: Path) -> dict[str, list[tuple[str, Callable[[], bytes]]]]:
    out: dict[str, list] = {}
    for split in ("train", "test"):
        d = root / split
        if not d.is_dir():
            raise BenchError(f"imagefolder: expected {d} (an ImageFolder tree with train/<class>/ and test/<class>/)")
        out[split] = [
            (str(p.relative_to(d)).replace("\\", "/"), p.read_bytes)
            for p in d.glob("*/*")
            if p.suffix.lower() in _IMAGE_EXT
        ]
    return out


def _scan_tar(path: Path) -> dict[str, list[tuple[str, Callable[[], bytes]]]]:
    out: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, "r:*") as tar:
        for m in tar:
            if not m.isfile() or not m.name.lower().endswith(_IMAGE_EXT):
                continue
            parts = m.name.strip("./").split("/")
            # accept an optional top-level folder: [top/]split/class/file
            for i in range(len(parts) - 2):
                if parts[i] in out and len(parts) - i == 3:
                    data = tar.extractfile(m).read()  # type: ignore[union-attr]
                    out[parts[i]].append((f"{parts[i + 1]}/{parts[i + 2]}", (lambda b=data: b)))
                    break
    for split in out:
        if not out[split]:
            raise BenchError(f"imagefolder: {path} holds no {split}/<class>/<image> files")
    return out


def _cache_key(path: Path) -> str:
    """What the decoded cache is keyed by: a tarball's bytes (a copy or a touched file still hits the cache), or a
    folder's image files with their sizes and mtimes (a folder's own mtime does not change when an image inside
    a class folder is added or rewritten, so it cannot be the key)."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.glob("*/*/*")):
            if p.suffix.lower() in _IMAGE_EXT:
                st = p.stat()
                h.update(f"{p.relative_to(path).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


@DATASETS.register("imagefolder", help="imagefolder:PATH - a train/ + test/ ImageFolder tree or a .tar.gz of one")
def load_imagefolder(arg: str | None, req: DataRequest) -> Dataset:
    if not arg:
        raise BenchError("imagefolder needs a path: imagefolder:PATH (a folder with train/ and test/, or a .tar.gz)")
    path = Path(arg).expanduser()
    if not path.exists():
        raise BenchError(f"imagefolder: {path} does not exist")
    cache = None
    if req.cache_dir is not None:
        cache = Path(req.cache_dir) / "imagefolder" / _cache_key(path)
        if (cache / "classes.json").exists():  # written last: a cache cut short by a crash is decoded again
            return _load_cached(cache, path)
    files = _scan_dir(path) if path.is_dir() else _scan_tar(path)
    ds = _read_tree(files, str(path))
    ds.name = f"imagefolder:{arg}"
    if cache is not None:
        _save_cached(cache, ds, path)
    return ds


def _save_cached(cache: Path, ds: Dataset, source: Path) -> None:
    """Write the decoded arrays, and remove older caches of the same source: their key no longer matches its
    contents, so they would never be read again."""
    import json
    import shutil

    from varmixup_bench.core.atomic import atomic_write, atomic_write_text

    def npy(arr: np.ndarray):
        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.save would add .npy to a path
                np.save(fh, arr)
        return write

    where = str(source.resolve())
    for old in cache.parent.glob("*/source.txt"):
        if old.parent != cache and old.read_text() == where:
            shutil.rmtree(old.parent, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):  # each file written whole and synced (core.atomic); classes.json, the
        s: Split = getattr(ds, split)  # marker that the cache is complete, after the arrays it vouches for
        for key, arr in (("x", (s.x * 255).round().to(torch.uint8).numpy()), ("y", s.y.numpy())):
            atomic_write(cache / f"{split}_{key}.npy", npy(arr))
    atomic_write_text(cache / "source.txt", where)
    atomic_write_text(cache / "classes.json", json.dumps(ds.classes))


def _load_cached(cache: Path, path: Path) -> Dataset:
    import json

    def split(name: str) -> Split:
        x = torch.from_numpy(np.load(cache / f"{name}_x.npy")).float().div_(255.0)
        return Split(x, torch.from_numpy(np.load(cache / f"{name}_y.npy")).long())

    classes = json.loads((cache / "classes.json").read_text())
    return Dataset(f"imagefolder:{path}", split("train"), split("test"), classes)


@DATASETS.register("tiny-imagenet", help="Tiny-ImageNet from a tiny-imagenet-200/ folder (--data-dir); val/ is the test split")
def load_tiny_imagenet(arg: str | None, req: DataRequest) -> Dataset:
    root = _data_root(req, "tiny-imagenet")
    if (root / "tiny-imagenet-200").is_dir():
        root = root / "tiny-imagenet-200"
    wnids_file, ann = root / "wnids.txt", root / "val" / "val_annotations.txt"
    if not wnids_file.exists() or not ann.exists():
        raise BenchError(
            f"tiny-imagenet: files not found; expected {root}/wnids.txt, train/<wnid>/images/ and val/val_annotations.txt"
        )
    wnids = sorted(wnids_file.read_text().split())
    train = [
        (f"{w}/{p.name}", p.read_bytes) for w in wnids for p in sorted((root / "train" / w / "images").glob("*"))
    ]
    test = []
    for line in ann.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            test.append((f"{fields[1]}/{fields[0]}", (root / "val" / "images" / fields[0]).read_bytes))
    ds = _read_tree({"train": train, "test": test}, str(root))
    ds.name, ds.classes = "tiny-imagenet", wnids
    return ds


def split_fingerprint(split: Split) -> str:
    """Cheap content hash of a split (labels plus a strided sample of pixels) for the training key."""
    h = hashlib.sha256()
    h.update(split.y.numpy().tobytes())
    flat = split.x.reshape(-1)
    h.update(flat[:: max(1, flat.numel() // 100_000)].numpy().tobytes())
    h.update(str(tuple(split.x.shape)).encode())
    return h.hexdigest()[:16]


def stratified_indices(y: torch.Tensor, n: int, seed: int, what: str) -> np.ndarray:
    """Sorted indices of a stratified, seeded choice of n of the labels y (all of them when n >= len(y));
    `what` names the setting that asked for n, for the error message.

    Never "the first n": image folders and class-sorted files list the test set class by class, so the first
    n images can be a few classes only."""
    if n >= len(y):
        return np.arange(len(y))
    n_classes = int(y.unique().numel())
    if n < n_classes:
        raise BenchError(f"{what} {n} is smaller than the number of classes ({n_classes})")
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y.numpy(), random_state=seed)
    return np.sort(idx)


def stratified_subset(split: Split, n: int | None, seed: int, what: str) -> Split:
    """A stratified, seeded subset of n examples (the whole split when n is None or >= its size)."""
    if n is None or n >= len(split):
        return split
    return split.subset(stratified_indices(split.y, n, seed, what))


def parse_dataset_name(name: str) -> tuple[str, str | None]:
    """`imagefolder:PATH` -> ('imagefolder', 'PATH'); `cifar10` -> ('cifar10', None)."""
    if not name or not name.strip():
        raise BenchError("empty dataset name")
    base, sep, arg = name.partition(":")
    return base, (arg if sep else None)


def canonical_dataset_name(name: str) -> str:
    """The dataset id recorded and keyed on: `imagefolder:../x/cifar10-jpeg.tar.gz` -> `imagefolder:cifar10-jpeg`
    (never the path as typed, which differs between a relative and an absolute spelling of the same file).
    Models and VAEs are keyed on the data's fingerprint, not on this name."""
    base, arg = parse_dataset_name(name)
    if base != "imagefolder" or not arg:
        return name
    stem = Path(arg.rstrip("/\\")).name
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return f"imagefolder:{stem}"


def dataset_fingerprint(ds: "Dataset") -> str:
    """Content hash of both splits (what a record's `data_fingerprint` holds)."""
    return hashlib.sha256(f"{split_fingerprint(ds.train)}|{split_fingerprint(ds.test)}".encode()).hexdigest()[:16]


def check_dataset_name(name: str) -> None:
    """Fail early (before any work) on an unknown dataset name."""
    base, _ = parse_dataset_name(name)
    DATASETS.get(base)


def load_dataset(
    name: str = "digits",
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    cache_dir: str | Path | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load a registered dataset by name and apply stratified, seeded subsets."""
    base, arg = parse_dataset_name(name)
    loader = DATASETS.get(base)
    req = DataRequest(Path(data_dir) if data_dir else None, download, Path(cache_dir) if cache_dir else None)
    ds = loader(arg, req)
    ds.name = canonical_dataset_name(name)
    ds.meta["source"] = name
    ds.train = stratified_subset(ds.train, train_subset, seed, "--train-subset")
    ds.test = stratified_subset(ds.test, test_subset, seed, "--test-subset")
    for split in (ds.train, ds.test):
        if split.x.min() < 0 or split.x.max() > 1:
            raise BenchError(f"dataset {name} produced pixels outside [0,1]")
    return ds
