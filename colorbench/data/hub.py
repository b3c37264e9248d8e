"""Hosted evaluation sets, loaded through ``datasets.load_dataset`` with fixed item lists.

* ``imagenette_val``: ``frgfm/imagenette``, config ``320px``, split ``validation``
  (Apache-2.0 dataset card; 10 ImageNet classes); items: every 4th of the 3,925
  validation rows (982 items), ids ``imagenette-val-<row>``.
* ``imagenet_val10k``: ``ILSVRC/imagenet-1k`` (gated: accept the terms on the hub
  and log in), split ``validation``; items: the first 10,000 of the 50,000 rows,
  ids ``imagenet-val-<row>``.

Both carry ImageNet class indices, so the classifier top-1 metric has labels.

What is verified and what is not (this module was written on a machine without
hub access): the hub ids, configs, split names and row counts are those shown on
the datasets' hub pages. ``frgfm/imagenette``'s ``main`` branch holds a loading
script, which current ``datasets`` no longer runs, so the parquet conversion is
loaded instead, pinned to the commit ``7c9dc640...`` of ``refs/convert/parquet``
seen on the hub pages (pass ``revision=`` to override). ``ILSVRC/imagenet-1k`` is
loaded at its default revision (no commit could be confirmed from here). The
ECCV16/SIGGRAPH17 evaluation used the "ctest10k" list of Larsson et al. (10k
ImageNet validation images, grayscale ones removed); that list could not be
obtained here, so ``imagenet_val10k`` is the closest fixed substitute — the first
10,000 validation rows in the hub's order — and is *not* ctest10k.

Offline behaviour: unless ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set, the
hub endpoint (``HF_ENDPOINT``) is probed first with a 3 s budget (name resolution
and one TCP connection; ``COLORBENCH_HUB_TIMEOUT`` changes it). If it cannot be
reached, :class:`DatasetUnavailable` is raised at once, naming the dataset id;
with the offline variables set, only the local cache is tried and a cache miss
raises the same error.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence
from urllib.parse import urlparse

import numpy as np

from . import Dataset, Item, register_dataset

log = logging.getLogger(__name__)

PROBE_TIMEOUT = float(os.environ.get("COLORBENCH_HUB_TIMEOUT", 3.0))

#: ImageNet class index of each Imagenette class, in the order of frgfm/imagenette's labels
#: (n01440764 tench, n02102040 English springer, n02979186 cassette player, n03000684 chain saw,
#: n03028079 church, n03394916 French horn, n03417042 garbage truck, n03425413 gas pump,
#: n03445777 golf ball, n03888257 parachute)
IMAGENETTE_TO_IMAGENET = (0, 217, 482, 491, 497, 566, 569, 571, 574, 701)


class DatasetUnavailable(RuntimeError):
    """A hosted dataset cannot be loaded here (offline, gated, not cached); the message says which and why."""


@dataclass(frozen=True)
class HubDatasetSpec:
    """A hosted dataset with a fixed item list.

    Attributes:
        name: registry name.
        hub_id: ``owner/name`` on the hub.
        config: the dataset config (subset), or None.
        split: the split the items come from.
        revision: a pinned commit (or branch) of the hub repository, or None.
        n_rows: the number of rows the split must have (guards against silent changes).
        indices: the fixed row indices that form the items, in order.
        id_prefix: item ids are ``f"{id_prefix}{row:05d}"``.
        label_map: dataset label -> ImageNet class index (None: the label already is one).
        license: licence of the data.
    """

    name: str
    hub_id: str
    config: Optional[str]
    split: str
    revision: Optional[str]
    n_rows: int
    indices: Sequence[int]
    id_prefix: str
    label_map: Optional[Sequence[int]] = None
    license: str = ""
    image_key: str = "image"
    label_key: str = "label"
    notes: Dict[str, str] = field(default_factory=dict)


IMAGENETTE_VAL = HubDatasetSpec(
    name="imagenette_val",
    hub_id="frgfm/imagenette",
    config="320px",
    split="validation",
    revision="7c9dc640700ee12352e1c4a8fb6bde6f55798d94",  # refs/convert/parquet
    n_rows=3925,
    indices=range(0, 3925, 4),
    id_prefix="imagenette-val-",
    label_map=IMAGENETTE_TO_IMAGENET,
    license="Apache-2.0 (dataset card); images from ImageNet",
)

IMAGENET_VAL10K = HubDatasetSpec(
    name="imagenet_val10k",
    hub_id="ILSVRC/imagenet-1k",
    config=None,
    split="validation",
    revision=None,
    n_rows=50000,
    indices=range(10000),
    id_prefix="imagenet-val-",
    license="ImageNet terms of access (gated; non-commercial research)",
    notes={"not_ctest10k": "the first 10,000 validation rows, not Larsson et al.'s ctest10k list"},
)


# -- reachability -----------------------------------------------------------------
def offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` asks for the local cache only."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def probe_hub(endpoint: Optional[str] = None, timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """None if ``endpoint`` accepts a TCP connection within ``timeout`` s, else the reason.

    Name resolution has no timeout of its own, so it runs in a daemon thread that
    is not waited on for longer than the budget.
    """
    url = urlparse(endpoint or hub_endpoint())
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    result: Dict[str, Any] = {}

    def resolve() -> None:
        try:
            result["addr"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=resolve, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return f"resolving {host} took longer than {timeout:g} s"
    if "error" in result:
        return f"cannot resolve {host}: {result['error']}"
    family, stype, proto, _, addr = result["addr"][0]
    try:
        with socket.socket(family, stype, proto) as s:
            s.settimeout(timeout)
            s.connect(addr)
    except OSError as e:
        return f"cannot connect to {host}:{port}: {e}"
    return None


# -- loading -----------------------------------------------------------------------
def _describe(spec: HubDatasetSpec, revision: Optional[str]) -> str:
    cfg = f", config {spec.config}" if spec.config else ""
    rev = f" at revision {revision}" if revision else ""
    return f"dataset {spec.name!r} (hub id {spec.hub_id}{cfg}, split {spec.split}{rev})"


def _row_loader(hf: Any, row: int, key: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from ..io import load_image

        return load_image(hf[row][key])

    return load


def load_hub_dataset(spec: HubDatasetSpec, revision: Optional[str] = None, limit: Optional[int] = None) -> Dataset:
    """Load ``spec`` through ``datasets.load_dataset`` and return its fixed items (decoded lazily).

    Args:
        spec: the dataset description.
        revision: override the pinned revision.
        limit: keep only the first ``limit`` items of the fixed list (quick runs).

    Raises:
        DatasetUnavailable: offline, not cached, gated without access, or the split
            does not have the expected number of rows.
    """
    rev = revision or spec.revision
    what = _describe(spec, rev)
    offline = offline_requested()
    if not offline:
        reason = probe_hub()
        if reason:
            raise DatasetUnavailable(
                f"{what} cannot be loaded: the hub {hub_endpoint()} is unreachable ({reason}). "
                "Connect to the internet, or load it once elsewhere into the Hugging Face cache and "
                "set HF_HUB_OFFLINE=1 to use that cache.")
    try:
        import datasets
    except ImportError as e:
        raise DatasetUnavailable(f"{what} needs the `datasets` package: pip install datasets") from e
    try:
        hf = datasets.load_dataset(spec.hub_id, spec.config, split=spec.split, revision=rev)
    except Exception as e:  # the library raises many types (ConnectionError, FileNotFoundError, gated repo...)
        where = " from the local cache (HF_HUB_OFFLINE is set)" if offline else ""
        hint = " It is gated: accept its terms on the hub and log in (hf auth login)." if "imagenet-1k" in spec.hub_id else ""
        raise DatasetUnavailable(f"{what} could not be loaded{where}: {type(e).__name__}: {e}.{hint}") from e
    if len(hf) != spec.n_rows:
        raise DatasetUnavailable(f"{what} has {len(hf)} rows, expected {spec.n_rows}: the hosted data changed; "
                                 "pin a revision whose item list matches")
    rows: List[int] = list(spec.indices)[: limit if limit else None]
    labels_col = list(hf[spec.label_key]) if spec.label_key in hf.column_names else [None] * len(hf)
    items = []
    for r in rows:
        lab = labels_col[r]
        if lab is not None and spec.label_map is not None:
            lab = spec.label_map[int(lab)]
        items.append(Item(
            id=f"{spec.id_prefix}{r:05d}",
            loader=_row_loader(hf, r, spec.image_key),
            label=None if lab is None or int(lab) < 0 else int(lab),
            meta={"row": r, "sha256": f"{spec.hub_id}@{rev or 'default'}/{spec.config}/{spec.split}#{r}"},
        ))
    info = {"hub_id": spec.hub_id, "config": spec.config, "split": spec.split, "revision": rev,
            "license": spec.license, "n_rows": spec.n_rows, "items": f"{len(items)} fixed rows", **spec.notes}
    return Dataset(spec.name, items, info)


@register_dataset(hub_id=IMAGENETTE_VAL.hub_id, split="validation", n_items=len(IMAGENETTE_VAL.indices),
                  labels="imagenet", license=IMAGENETTE_VAL.license)
def imagenette_val(revision: Optional[str] = None, limit: Optional[int] = None) -> Dataset:
    """Imagenette (10 ImageNet classes), 320 px, every 4th validation image: 982 items with ImageNet labels."""
    return load_hub_dataset(IMAGENETTE_VAL, revision=revision, limit=limit)


@register_dataset(hub_id=IMAGENET_VAL10K.hub_id, split="validation", n_items=len(IMAGENET_VAL10K.indices),
                  labels="imagenet", license=IMAGENET_VAL10K.license, gated=True)
def imagenet_val10k(revision: Optional[str] = None, limit: Optional[int] = None) -> Dataset:
    """The first 10,000 ImageNet validation images (ILSVRC/imagenet-1k, gated), with labels.

    A fixed stand-in for the ctest10k list of Larsson et al. (see the module docstring).
    """
    return load_hub_dataset(IMAGENET_VAL10K, revision=revision, limit=limit)


__all__ = ["DatasetUnavailable", "HubDatasetSpec", "IMAGENETTE_VAL", "IMAGENET_VAL10K", "load_hub_dataset",
           "probe_hub", "offline_requested", "imagenette_val", "imagenet_val10k"]
