"""Helpers shared by the tests and benchmarks (no test framework import here)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def parity_dir() -> Path:
    """Folder of the reference parity fixtures: $RTS_PARITY_DIR or ../shared/parity beside the repo."""
    env = os.environ.get("RTS_PARITY_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "parity")
