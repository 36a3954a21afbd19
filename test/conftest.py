"""Shared pytest setup: loopback-only ROS discovery, 2 torch threads, the parity fixture folder."""
import os

import pytest

from rts_ros.testing import REPO_ROOT, parity_dir

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO_ROOT / "config" / "fastdds_localhost.xml"))

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def parity():
    """Path of the reference fixtures; skips when they are not present on this machine."""
    path = parity_dir()
    if not (path / "README.md").exists():
        pytest.skip(f"parity fixtures not found at {path} (set RTS_PARITY_DIR to the shared/parity folder)")
    return path
