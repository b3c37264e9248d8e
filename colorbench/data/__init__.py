"""Datasets: a fixed, ordered list of items (RGB uint8 + optional ImageNet label).

``load_dataset("builtin")``, ``load_dataset("folder:/path")`` or any registered
hosted dataset. Add one as a module in this folder with ``@register_dataset``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..registry import Registry

_MODULES = ["colorbench.data.hub"]

DATASETS = Registry("dataset", _MODULES)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


@dataclass
class Item:
    id: str
    loader: Callable[[], np.ndarray] = field(repr=False)
    label: Optional[int] = None
    meta: Dict = field(default_factory=dict)

    @property
    def rgb(self) -> np.ndarray:
        """uint8 ``HxWx3``."""
        return self.loader()


class Dataset(Sequence[Item]):
    """An ordered, fixed list of items with a name and a content fingerprint."""

    def __init__(self, name: str, items: List[Item], info: Optional[Dict] = None) -> None:
        self.name = name
        self.items = items
        self.info = info or {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):  # type: ignore[override]
        return self.items[i]

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(self.name.encode())
        for it in self.items:
            h.update(it.id.encode())
            h.update(str(it.meta.get("sha256", "")).encode())
        return h.hexdigest()[:16]

    def shard(self, rank: int, world: int) -> "Dataset":
        """Items ``rank, rank + world, ...``: the data-parallel split."""
        return Dataset(self.name, self.items[rank::world], self.info)


def register_dataset(fn=None, **meta):
    return DATASETS.register(fn, **meta)


def _file_loader(path: Path) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from ..io import load_image

        return load_image(path)

    return load


def builtin() -> Dataset:
    """The embedded evaluation set shipped in the repository (never used for training)."""
    meta = json.loads((BUILTIN_DIR / "items.json").read_text())
    items = [Item(m["id"], _file_loader(BUILTIN_DIR / m["file"]), m.get("imagenet_label"), m) for m in meta]
    return Dataset("builtin", items, {"source": "colorbench/data/builtin", "license": "see items.json"})


def folder(path: str, labels_csv: Optional[str] = None) -> Dataset:
    """Every image in ``path`` (recursively, sorted). Labels from a CSV ``file,label`` if given
    (or ``labels.csv`` in the folder)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    labels: Dict[str, int] = {}
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    if csv_path.is_file():
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("label") not in (None, ""):
                    labels[row["file"]] = int(row["label"])
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images in {root}")
    items = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        items.append(Item(rel, _file_loader(p), labels.get(rel), {"path": str(p), "sha256": p.stat().st_size}))
    return Dataset(f"folder:{root}", items, {"source": str(root)})


def load_dataset(name: str, **kwargs) -> Dataset:
    """``builtin``, ``folder:PATH`` or a registered hosted dataset name."""
    if name == "builtin":
        return builtin()
    if name.startswith("folder:"):
        return folder(name[len("folder:"):], **kwargs)
    return DATASETS(name, **kwargs)


def list_datasets() -> List[str]:
    return ["builtin", "folder:PATH", *DATASETS.names()]


__all__ = ["Item", "Dataset", "DATASETS", "register_dataset", "load_dataset", "list_datasets", "builtin", "folder"]
