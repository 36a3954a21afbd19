"""Materialise the deterministic parity weight recipes (shared/parity/weights/README.md) with numpy,
and check them against the published SHA-256 of every tensor."""
from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np

from rts_ros.errors import CheckpointError


def materialise_entry(key: str, entry: dict) -> np.ndarray:
    """One state-dict tensor from its recipe entry (seeded by the CRC32 of the key)."""
    dtype = np.dtype(entry["dtype"])
    shape = tuple(entry["shape"])
    if "values" in entry:
        return np.asarray(entry["values"], dtype=dtype).reshape(shape)
    z = np.random.RandomState(zlib.crc32(key.encode("utf-8")) & 0xFFFFFFFF).standard_normal(shape)
    v = z * entry["std"] + entry["mean"]
    if "abs_plus" in entry:
        v = np.abs(v) + entry["abs_plus"]
    return v.astype(dtype)


def load_recipe(path: str | Path) -> dict:
    """The recipe JSON (format rts-parity-weight-recipe/1)."""
    with open(path, encoding="utf-8") as fh:
        recipe = json.load(fh)
    if recipe.get("format") != "rts-parity-weight-recipe/1":
        raise CheckpointError(f"{path}: not a weight recipe (format {recipe.get('format')!r})")
    return recipe


def materialise(recipe: dict) -> "OrderedDict[str, np.ndarray]":
    """All entries, in the recipe's (= the reference state_dict) order."""
    return OrderedDict((k, materialise_entry(k, e)) for k, e in recipe["entries"].items())


def tensor_sha256(arr: np.ndarray) -> str:
    """SHA-256 of the little-endian bytes of ``arr`` (C order)."""
    a = np.ascontiguousarray(arr)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def verify(arrays: dict[str, np.ndarray], sha_path: str | Path) -> list[str]:
    """Keys whose SHA-256 differs from (or is missing in) the published list; empty when all match."""
    with open(sha_path, encoding="utf-8") as fh:
        ref = json.load(fh)
    bad = [k for k, a in arrays.items() if ref.get(k) != tensor_sha256(a)]
    return bad + [k for k in ref if k not in arrays]


RECIPE_FILES = {"rts": "rts50", "sta": "sta"}


@lru_cache(maxsize=2)
def recipe_arrays(parity_dir: str, network: str) -> "OrderedDict[str, np.ndarray]":
    """Materialised and SHA-checked recipe of ``network`` ('rts'|'sta') from ``parity_dir``, cached per process."""
    stem = Path(parity_dir) / "weights" / RECIPE_FILES[network]
    arrays = materialise(load_recipe(f"{stem}.recipe.json"))
    bad = verify(arrays, f"{stem}.sha256.json")
    if bad:
        raise CheckpointError(f"materialised recipe {stem} differs from its SHA-256 list at {bad[0]} "
                              f"(and {len(bad) - 1} more); numpy's RandomState must be unchanged")
    return arrays


def recipe_constructor(parity_dir: str, network: str) -> dict:
    """The recipe's constructor record {fun_module, fun_name, args, kwds}."""
    return load_recipe(Path(parity_dir) / "weights" / f"{RECIPE_FILES[network]}.recipe.json")["constructor"]
