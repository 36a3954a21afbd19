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


def _chains(record: dict) -> list[list[dict]]:
    """Every path of training stages from this record back to the first: a weight average (rts-average)
    branches into the folders it was made of, a fine-tune continues with its `previous_stage`."""
    if "averaged_from" in record:
        assert record["command"].startswith("rts-average ") and len(record["averaged_from"]) >= 2
        return [chain for a in record["averaged_from"] for chain in _chains(a["training"])]
    previous = record.get("previous_stage")
    return [[record] + chain for chain in (_chains(previous) if previous is not None else [[]])]


def _last_stages(meta) -> list[dict]:
    """The rts-train runs the shipped weights came from last (one, or one per averaged folder)."""
    return [chain[0] for chain in _chains(meta["training"])]


def test_default_model_records_how_it_was_trained(meta):
    """Every training stage is recorded (command, seed, commit, step), back to the CPU stage from scratch."""
    chains = _chains(meta["training"])
    for chain in chains:
        for stage in chain:
            assert stage["command"].startswith("rts-train --config config/train_small")
            assert isinstance(stage["seed"], int) and len(stage["git_commit"]) == 40 and stage["step"] > 0
        assert chain[-1]["command"].startswith("rts-train --config config/train_small.yaml")   # stage 1: from scratch
    # The README's history: the CPU stage from scratch, two on GPU, real video as an average of two seeds, then
    # stage 6 (the DAVIS mask path, blurred) continuing stage 4: five runs on every path.
    assert sorted(len(chain) for chain in chains) == [5, 5]
    assert all(chain[0]["command"].startswith("rts-train --config config/train_small_davis16_maskpath_lowres.yaml")
               for chain in chains)
    assert meta["constructor"]["kwds"]["backbone_type"] == "resnet"


def test_default_model_record_names_no_local_paths(meta):
    """The shipped record speaks of repository paths and placeholders (STAGE4_MODEL), never of the machine it
    was assembled on."""
    def strings(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node
    local = [s for s in strings(meta) if s.startswith(("/", "~")) or "/work/" in s or "/tmp/" in s]
    assert not local, local


def test_default_model_network_is_the_one_its_training_config_builds(meta):
    """The last stage's YAML (with its base chain) builds exactly the shipped network."""
    from rts_ros.model import build_rts, config_to_kwds
    from rts_ros.train.config import TrainConfig

    for stage in _last_stages(meta):
        config = stage["command"].split("--config ")[1].split()[0]
        built = config_to_kwds(build_rts(dict(TrainConfig.from_yaml(REPO_ROOT / config).model)).config)
        assert built == meta["constructor"]["kwds"]
    assert built["clf_norm_per_location"] is True


@pytest.mark.parametrize("config", ["train_small_gpu_real.yaml", "train_small_real.yaml",
                                    "train_small_gpu_stage5.yaml", "train_small_davis16.yaml",
                                    "train_small_davis16_maskpath.yaml", "train_small_davis16_maskpath_lowres.yaml",
                                    "train_small_davis16_lowres.yaml", "train_small_gpu_stage7.yaml"])
def test_configs_that_continue_the_shipped_model_build_its_network(meta, config):
    """YAMLs documented as `--init-weights weights/default` runs must build the shipped network, or loading fails."""
    from rts_ros.model import build_rts, config_to_kwds
    from rts_ros.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(REPO_ROOT / "config" / config)
    assert config_to_kwds(build_rts(dict(cfg.model)).config) == meta["constructor"]["kwds"]
    assert cfg.datasets and all(d.weight > 0 for d in cfg.datasets)


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
