"""The shipped default model (weights/default): a loadable weights folder with its training record."""
import json

import pytest

from rts_ros.testing import REPO_ROOT

DEFAULT = REPO_ROOT / "weights" / "default"


@pytest.fixture(scope="module")
def meta():
    if not (DEFAULT / "rts.json").is_file():
        pytest.skip("weights/default has no rts.json (not shipped in this checkout)")
    return json.loads((DEFAULT / "rts.json").read_text())


def test_default_model_records_how_it_was_trained(meta):
    training = meta["training"]
    assert training["command"].startswith("rts-train --config config/train_small")   # _gpu: the second stage
    assert training["previous_stage"]["command"].startswith("rts-train --config config/train_small.yaml")
    assert isinstance(training["seed"], int) and len(training["git_commit"]) == 40
    assert training["step"] > 0
    assert meta["constructor"]["kwds"]["backbone_type"] == "resnet"


def test_default_model_is_small_and_loads_with_its_tracker_config(meta):
    from rts_ros.api import TrackerConfig
    from rts_ros.weights import load_weights_folder

    size = sum(p.stat().st_size for p in DEFAULT.iterdir())
    assert size < 10 * 2 ** 20
    wf = load_weights_folder(DEFAULT, device="cpu")
    assert sum(p.numel() for p in wf.rts.parameters()) < 2_000_000
    cfg = TrackerConfig.from_dict(meta["tracker"])     # the model's recommended settings
    assert cfg.image_sample_size[0] % 32 == 0 and cfg.image_sample_size[1] % 32 == 0
    assert cfg.box_init in ("grabcut", "auto")
