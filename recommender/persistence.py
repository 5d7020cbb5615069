"""Model directories: ``save_model(model, dir)`` and ``load_model(dir, dataset)``.

A model directory is versioned JSON plus arrays, no pickle: ``model.json`` records the
format version, the class and its hyperparameters, the dataset's checksum and the training
cut-off; ``arrays.npz`` holds the *learned* parameters (ALS factors, …); the hybrid's
ranker is stored with ``skops`` (a secure, inspectable format for scikit-learn models); a
composite model stores each source in ``sources/<name>/``. Indexes that are derived
deterministically from the dataset (TF-IDF matrices, tie strengths, popularity counts) are
rebuilt from the dataset on load, which is why loading takes the dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.atomic import atomic_directory
from recommender.base import Recommender
from recommender.data import TrainingData, compact
from recommender.dataset import Dataset

MODEL_FORMAT = 2
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
RANKER_FILE = "ranker.skops"


class ModelFormatError(ValueError):
    """A model directory is missing, truncated, of another format version, or belongs to
    another dataset."""


def _registry() -> dict[str, type[Recommender]]:
    from recommender.category import CategorySource
    from recommender.collaborative import ALSSource
    from recommender.content import ContentSource
    from recommender.hybrid import HybridRecommender
    from recommender.itemknn import ItemKNNSource
    from recommender.popularity import PopularitySource
    from recommender.social import SocialSource

    classes = [
        ALSSource,
        CategorySource,
        ContentSource,
        HybridRecommender,
        ItemKNNSource,
        PopularitySource,
        SocialSource,
    ]
    return {c.__name__: c for c in classes}


def save_model(model: Recommender, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a fitted model atomically (temporary directory, then rename)."""
    if not hasattr(model, "data_"):
        raise ValueError("cannot save an unfitted model; call fit first")
    target = Path(path)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        _write(model, tmp, top=True)
    return target


def _write(model: Recommender, directory: Path, *, top: bool) -> None:
    params = {
        k: v for k, v in model.get_params(deep=False).items() if k not in ("sources", "ranker")
    }
    meta: dict[str, Any] = {
        "format_version": MODEL_FORMAT,
        "class": type(model).__name__,
        "params": _json_safe(params),
    }
    if top:
        data: TrainingData = model.data_
        meta["dataset_checksum"] = data.dataset.checksum
        meta["dataset_name"] = data.dataset.manifest.get("name")
        meta["until"] = None if data.until is None else data.until.isoformat()
        meta["n_users"] = data.n_users
        meta["n_items"] = data.n_items
    arrays = {}
    for name in getattr(model, "_persist", ()):
        _put(arrays, name, getattr(model, name))
    if arrays:
        np.savez(directory / ARRAYS_FILE, **arrays)
    if hasattr(model, "sources_"):
        meta["sources"] = list(model.source_names_)
        for name, source in zip(model.source_names_, model.sources_, strict=True):
            sub = directory / "sources" / name
            sub.mkdir(parents=True)
            _write(source, sub, top=False)
        meta["ranker"] = model.ranker_ is not None
        if model.ranker_ is not None:
            import skops.io as sio

            sio.dump(model.ranker_, directory / RANKER_FILE)
    (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_model(path: str | os.PathLike, dataset: Dataset) -> Recommender:
    """Load a model directory against the dataset it was trained on.

    Raises
    ------
    ModelFormatError
        Missing or unreadable files, another format version, or another dataset.
    """
    root = Path(path)
    meta = _read_meta(root)
    if meta.get("dataset_checksum") != dataset.checksum:
        raise ModelFormatError(
            f"{root} was trained on dataset {meta.get('dataset_name')!r} "
            f"(checksum {str(meta.get('dataset_checksum'))[:12]}…), not on this one "
            f"({dataset.checksum[:12]}…)"
        )
    until = meta.get("until")
    data = TrainingData.from_dataset(dataset, until=until)
    return _restore(root, meta, data)


def _read_meta(root: Path) -> dict[str, Any]:
    file = root / MODEL_FILE
    if not file.is_file():
        raise ModelFormatError(f"{root} is not a model directory (no {MODEL_FILE})")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{file} is not valid JSON (truncated?): {exc}") from exc
    version = meta.get("format_version")
    if version != MODEL_FORMAT:
        raise ModelFormatError(
            f"{root} has model format version {version!r}; this socialcart reads version "
            f"{MODEL_FORMAT}: retrain with `socialcart train`"
        )
    return meta


def _restore(root: Path, meta: dict[str, Any], data: TrainingData) -> Recommender:
    registry = _registry()
    cls = registry.get(meta.get("class"))
    if cls is None:
        raise ModelFormatError(f"{root}: unknown model class {meta.get('class')!r}")
    sources = None
    if "sources" in meta:
        sources = [
            (name, _restore(root / "sources" / name, _read_meta(root / "sources" / name), data))
            for name in meta["sources"]
        ]
    params = dict(meta.get("params", {}))
    model = cls(**params, **({"sources": sources} if sources is not None else {}))
    model.data_, model.users_, model.items_ = data, data.users, data.items
    arrays_file = root / ARRAYS_FILE
    if arrays_file.exists():
        try:
            with np.load(arrays_file, allow_pickle=False) as npz:
                for name in getattr(model, "_persist", ()):
                    setattr(model, name, _get(npz, name))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFormatError(f"{arrays_file} is unreadable (truncated?): {exc}") from exc
    if sources is not None:
        model.source_names_ = [n for n, _ in sources]
        model.sources_ = [s for _, s in sources]
        model.ranker_ = _load_ranker(root) if meta.get("ranker") else None
    model._rebuild(data)
    return model


def _load_ranker(root: Path):
    import skops.io as sio

    file = root / RANKER_FILE
    try:
        untrusted = sio.get_untrusted_types(file=file)
        allowed = [t for t in untrusted if t.split(".")[0] in ("sklearn", "numpy", "scipy")]
        if len(allowed) != len(untrusted):
            raise ModelFormatError(f"{file} holds types outside scikit-learn: {untrusted}")
        return sio.load(file, trusted=allowed)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"{file} is unreadable (truncated?): {exc}") from exc


def _put(arrays: dict[str, np.ndarray], name: str, value: Any) -> None:
    if sp.issparse(value):
        value = sp.csr_array(value)
        arrays[f"{name}.data"] = value.data
        arrays[f"{name}.indices"] = value.indices
        arrays[f"{name}.indptr"] = value.indptr
        arrays[f"{name}.shape"] = np.asarray(value.shape)
    else:
        arrays[name] = np.asarray(value)


def _get(npz, name: str):
    if f"{name}.data" in npz.files:
        shape = tuple(int(x) for x in npz[f"{name}.shape"])
        return compact(
            sp.csr_array(
                (npz[f"{name}.data"], npz[f"{name}.indices"], npz[f"{name}.indptr"]), shape=shape
            )
        )
    return npz[name]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"hyperparameter value {value!r} is not JSON-serialisable")
