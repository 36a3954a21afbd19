"""rts-average: the mean of weights folders of one network (a "model soup"), on real weight files."""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rts_ros.cli.average import main as average_main
from rts_ros.errors import CheckpointError, ConfigError
from rts_ros.testing import REPO_ROOT
from rts_ros.weights.average import average_weight_folders

DEFAULT = REPO_ROOT / "weights" / "default"


def _copy_with(tmp_path, name, change):
    """A copy of the shipped weights folder whose tensors pass through ``change(key, tensor)``."""
    out = tmp_path / name
    out.mkdir()
    shutil.copy(DEFAULT / "rts.json", out / "rts.json")
    state = load_file(str(DEFAULT / "rts.safetensors"))
    save_file({k: change(k, v).contiguous() for k, v in state.items()}, str(out / "rts.safetensors"))
    return out


def test_average_is_the_elementwise_mean_and_tracks(tmp_path):
    g = torch.Generator().manual_seed(0)
    a = DEFAULT
    # another 'seed': every weight moved by 5% noise (step counters moved too, to see whose are kept)
    b = _copy_with(tmp_path, "b", lambda k, v: v * (1 + 0.05 * torch.randn(v.shape, generator=g)).to(v.dtype)
                   if v.is_floating_point() else v + 7)
    rc = average_main([str(a), str(b), "--output", str(tmp_path / "soup")])
    assert rc == 0
    sa, sb = load_file(str(a / "rts.safetensors")), load_file(str(b / "rts.safetensors"))
    out = load_file(str(tmp_path / "soup" / "rts.safetensors"))
    assert out.keys() == sa.keys()
    n_float = 0
    for k, v in out.items():
        assert v.dtype == sa[k].dtype and v.shape == sa[k].shape
        if v.is_floating_point():
            n_float += 1
            torch.testing.assert_close(v, (sa[k] + sb[k]) / 2, rtol=0, atol=1e-6)
        else:
            assert torch.equal(v, sa[k])      # step counters: the first folder's
    assert n_float > 100
    meta, first = (json.loads((p / "rts.json").read_text()) for p in (tmp_path / "soup", a))
    assert meta["tracker"] == first["tracker"] and meta["calibration"] == first["calibration"]
    assert meta["constructor"] == first["constructor"]
    assert [m["folder"] for m in meta["training"]["averaged_from"]] == [str(a), str(b)]
    assert meta["training"]["averaged_from"][0]["training"] == first["training"]
    assert meta["training"]["command"].startswith("rts-average ")

    from rts_ros.api import Tracker
    from rts_ros.data.synthetic import generate_sequence
    seq = generate_sequence(7, 240, 320, 4, difficulty=0.1)
    t = Tracker.from_weights(tmp_path / "soup", device="cpu")
    t.initialize(seq.frames[0], box=tuple(seq.boxes[0]))
    for frame in seq.frames[1:]:
        res = t.track(frame)
        assert res.mask.shape == frame.shape[:2] and np.isfinite(res.confidence) and res.mask_area > 0


def test_average_refuses_other_networks_single_inputs_and_sta(tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((DEFAULT / "rts.json").read_text())
    meta["constructor"]["kwds"]["decoder_mdim"] = 32
    (other / "rts.json").write_text(json.dumps(meta))
    shutil.copy(DEFAULT / "rts.safetensors", other / "rts.safetensors")
    # built from its JSON, the wider decoder does not take the shipped tensors: refused when loading
    with pytest.raises(CheckpointError):
        average_weight_folders([DEFAULT, other], tmp_path / "x")
    with pytest.raises(ConfigError, match="two or more"):
        average_weight_folders([DEFAULT], tmp_path / "x")
    sta = _copy_with(tmp_path, "with_sta", lambda k, v: v)
    (sta / "sta.json").write_text("{}")
    with pytest.raises(ConfigError, match="STA"):
        average_weight_folders([DEFAULT, sta], tmp_path / "x")
    assert average_main([str(DEFAULT), str(other), "--output", str(tmp_path / "y")]) == 2
    assert "rts-average: error:" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_average_refuses_folders_whose_constructors_differ(tmp_path):
    """Same tensors, but a constructor field that changes no shape: still two different networks."""
    other = _copy_with(tmp_path, "other", lambda k, v: v)
    meta = json.loads((other / "rts.json").read_text())
    kwds = meta["constructor"]["kwds"]
    kwds["clf_norm_per_location"] = not kwds["clf_norm_per_location"]
    (other / "rts.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="clf_norm_per_location"):
        average_weight_folders([DEFAULT, other], tmp_path / "x")
