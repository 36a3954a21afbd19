"""Weights folders: round trip, default location, and actionable errors on damaged folders."""
import json

import pytest
import torch

from rts_ros.errors import CheckpointError, ConfigError
from rts_ros.model import build_rts, build_sta, config_to_kwds
from rts_ros.weights import default_weights_dir, load_network, load_weights_folder, resolve_device, save_network

SMALL = dict(backbone_type="resnet", backbone_block="basic", backbone_layers=[1, 1, 1, 1], backbone_width=8,
             out_feature_dim=32, decoder_mdim=8, label_encoder_dims=[4, 8, 8], num_filters=4)


def _randomise(net):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, t in net.state_dict().items():
            if t.is_floating_point():
                v = torch.randn(t.shape, generator=g) * 0.1
                t.copy_(v.abs() + 0.5 if k.endswith("running_var") else v)
    return net


@pytest.fixture()
def folder(tmp_path):
    rts = _randomise(build_rts(SMALL))
    sta = _randomise(build_sta({**SMALL, "label_encoder_dims": [4, 8, 8, 8]}))
    for name, net in (("rts", rts), ("sta", sta)):
        save_network(tmp_path, name, net.state_dict(), config_to_kwds(net.config), fun_module="rts_ros.model",
                     fun_name=f"build_{name}", training={"epochs": 1})
    return tmp_path, rts, sta


def test_round_trip_gives_identical_networks(folder):
    path, rts, sta = folder
    wf = load_weights_folder(path, device="cpu")
    assert wf.rts_meta["training"] == {"epochs": 1} and wf.sta_meta["network"] == "sta"
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        a = rts.extract_backbone(rts.preprocess(x))["layer4"]
        b = wf.rts.extract_backbone(wf.rts.preprocess(x))["layer4"]
        box = torch.tensor([10.0, 12.0, 30.0, 20.0])
        assert torch.equal(a, b) and torch.equal(sta(x, box), wf.sta(x, box))
    assert not wf.rts.training


def test_sta_optional_unless_required(folder):
    path = folder[0]
    (path / "sta.json").unlink()
    assert load_weights_folder(path).sta is None
    with pytest.raises(CheckpointError, match="sta.json: missing.*rts-convert"):
        load_weights_folder(path, require_sta=True)


def test_damaged_folders(folder):
    path = folder[0]
    meta = json.loads((path / "rts.json").read_text())
    (path / "rts.json").write_text(json.dumps({**meta, "constructor": {**meta["constructor"],
                                                                        "kwds": {**meta["constructor"]["kwds"], "num_filters": -1}}}))
    with pytest.raises(ConfigError, match="rts.json: .*num_filters=-1"):
        load_network(path, "rts")
    (path / "rts.json").write_text(json.dumps({**meta, "format": "other/1"}))
    with pytest.raises(CheckpointError, match="not a rts_ros-weights/1"):
        load_network(path, "rts")
    (path / "rts.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="unreadable JSON"):
        load_network(path, "rts")
    (path / "rts.json").write_text(json.dumps(meta))
    (path / "rts.safetensors").write_bytes((path / "rts.safetensors").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt safetensors"):
        load_network(path, "rts")
    (path / "rts.safetensors").unlink()
    with pytest.raises(CheckpointError, match="rts.safetensors: missing"):
        load_network(path, "rts")
    with pytest.raises(CheckpointError, match="weights folder not found"):
        load_weights_folder(path / "nope")


def test_wrong_tensors_for_kwargs(folder):
    path, rts, _ = folder
    save_network(path, "rts", rts.state_dict(), {**config_to_kwds(rts.config), "out_feature_dim": 16},
                 fun_module="rts_ros.model", fun_name="build_rts")
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_network(path, "rts")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_with_the_tensor_named(folder, bad):
    """A diverged run's NaN/Inf weights would load and give NaN scores on every frame: refuse them at load."""
    path, rts, _ = folder
    state = {k: v.clone() for k, v in rts.state_dict().items()}
    key = next(k for k in state if k.endswith("running_var"))
    state[key].view(-1)[3] = bad
    save_network(path, "rts", state, config_to_kwds(rts.config), fun_module="rts_ros.model", fun_name="build_rts")
    with pytest.raises(CheckpointError, match=f"1 tensors hold NaN or Inf values \\(first: {key}\\)"):
        load_weights_folder(path)
    state[key].view(-1)[3] = 1.0          # mended: loads again
    save_network(path, "rts", state, config_to_kwds(rts.config), fun_module="rts_ros.model", fun_name="build_rts")
    assert load_weights_folder(path).rts is not None


def test_default_weights_dir_follows_env(folder, monkeypatch):
    monkeypatch.setenv("RTS_WEIGHTS", str(folder[0]))
    assert default_weights_dir() == folder[0]
    monkeypatch.setenv("RTS_WEIGHTS", str(folder[0] / "missing"))
    with pytest.raises(CheckpointError, match="RTS_WEIGHTS=.*not a folder"):
        default_weights_dir()


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="not valid"):
        resolve_device("tpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def _relabel_first_float_tensor(st_path, new_dtype: str) -> str:
    """Rewrite one F32 entry of a safetensors header as ``new_dtype`` (same byte size): what a damaged or
    hand-edited file looks like. Returns the tensor's name."""
    raw = st_path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    key = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    header[key]["dtype"] = new_dtype
    text = json.dumps(header, separators=(",", ":")).encode().ljust(n)   # same length: offsets stay right
    assert len(text) == n
    st_path.write_bytes(raw[:8] + text + raw[8 + n:])
    return key


def test_tensors_of_the_wrong_dtype_kind_are_refused(folder):
    """load_state_dict casts silently: float weights read as int32 would load as values near 1e9, and the tracker
    would then report LOST on every frame without any error."""
    path = folder[0]
    key = _relabel_first_float_tensor(path / "rts.safetensors", "I32")
    with pytest.raises(CheckpointError, match=f"wrong kind of dtype \\(first: {key} is torch.int32, expected float"):
        load_network(path, "rts")


def test_integer_and_bool_state_dicts_are_refused(folder):
    path, rts, _ = folder
    for cast in (torch.int32, torch.bool):
        state = {k: (v.to(cast) if v.is_floating_point() else v) for k, v in rts.state_dict().items()}
        save_network(path, "rts", state, config_to_kwds(rts.config), fun_module="rts_ros.model", fun_name="build_rts")
        with pytest.raises(CheckpointError, match="wrong kind of dtype"):
            load_network(path, "rts")


def test_kwargs_of_a_huge_network_fail_on_shapes_without_allocating_it(folder, monkeypatch):
    """A few bytes of JSON must not build the network they describe before its tensors are known to fit: with
    backbone_width 4096 that would be 80 GB. Here width 512 (1.26 GB of parameters, against the file's 1 MB)
    must fail on the shape check with the network only ever built on the meta device (no memory)."""
    from rts_ros.weights import checkpoint

    built_on: list[str] = []
    real_build = checkpoint.build_network

    def spy(network, kwds):
        built_on.append(torch.empty(0).device.type)   # the default device where the network is being built
        return real_build(network, kwds)
    monkeypatch.setattr(checkpoint, "build_network", spy)
    path = folder[0]
    meta = json.loads((path / "rts.json").read_text())
    meta["constructor"]["kwds"]["backbone_width"] = 512
    (path / "rts.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_network(path, "rts")
    assert built_on == ["meta"], built_on
    meta["constructor"]["kwds"]["backbone_width"] = 8     # the folder's own width: meta probe, then the real one
    (path / "rts.json").write_text(json.dumps(meta))
    built_on.clear()
    load_network(path, "rts")
    assert built_on == ["meta", "cpu"]
    meta["constructor"]["kwds"]["backbone_width"] = 10 ** 6
    (path / "rts.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="backbone_width=1000000 .*an integer from 4 to 4096"):
        load_network(path, "rts")
