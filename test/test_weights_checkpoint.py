"""Safe checkpoint reading: the official example files, legacy format, and every kind of bad input."""
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

from rts_ros.errors import CheckpointError
from rts_ros.weights import convert_checkpoint, network_from_checkpoint, read_checkpoint
from rts_ros.weights.official import write_official_checkpoint


@pytest.fixture(scope="module")
def truncated(parity):
    return {"rts": parity / "checkpoints" / "rts50_truncated.pth", "sta": parity / "checkpoints" / "sta_truncated.pth.tar"}


@pytest.mark.parametrize("network,n_cut", [("rts", 491), ("sta", 521)])
def test_parity_truncated_examples_load_and_strict_conversion_fails(parity, truncated, network, n_cut, tmp_path):
    import json

    fmt = json.loads((parity / "checkpoints" / "format.json").read_text())["rts50" if network == "rts" else "sta"]
    ck = read_checkpoint(truncated[network])
    assert ck.network == network
    assert list(ck.state_dict) == fmt["truncated_example"]["net_keys"]
    assert ck.constructor.fun_module == fmt["constructor"]["fun_module"]
    assert ck.constructor.fun_name == fmt["constructor"]["fun_name"]
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in ck.constructor.kwds.items()} == fmt["constructor"]["kwds"]
    assert ck.extras["epoch"] == fmt["values"]["epoch"]
    with pytest.raises(CheckpointError, match=rf"{n_cut} missing keys \(first: .*\), 0 unexpected"):
        convert_checkpoint(truncated[network], tmp_path / "out")
    assert not (tmp_path / "out" / f"{network}.safetensors").exists()


def test_parity_legacy_format_reads_the_same(truncated, tmp_path):
    ck = read_checkpoint(truncated["rts"])
    legacy = write_official_checkpoint(tmp_path / "rts50.pth", "rts", ck.state_dict, ck.constructor.kwds, legacy=True)
    with open(legacy, "rb") as fh:
        assert fh.read(2) != b"PK"  # really the legacy (non-zip) container
    ck2 = read_checkpoint(legacy)
    assert ck2.constructor == ck.constructor
    assert all(torch.equal(ck.state_dict[k], ck2.state_dict[k]) for k in ck.state_dict)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["zip", "legacy", "plain-pickle"])
def test_malicious_pickle_is_refused_without_side_effect(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "rts50.pth"
    payload = {"net": OrderedDict(), "constructor": _Evil(marker)}
    if container == "plain-pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=container == "zip")
    with pytest.raises(CheckpointError, match=r"refusing to load.*'(posix|os)\.system'"):
        read_checkpoint(path)
    assert not marker.exists()
    # control: an unsafe loader really would have run the payload
    loader = "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))" if container == "plain-pickle" else \
        "import torch,sys; torch.load(sys.argv[1], weights_only=False)"
    subprocess.run([sys.executable, "-c", loader, str(path)], capture_output=True, timeout=120)
    assert marker.exists()


def test_truncated_and_corrupt_files(truncated, tmp_path):
    data = truncated["rts"].read_bytes()
    half = tmp_path / "half.pth"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt.*download it again"):
        read_checkpoint(half)
    flipped = bytearray(data)
    start = data.find(b"data.pkl") + 60  # inside the pickle record
    flipped[start:start + 200] = bytes(200)
    bad = tmp_path / "flipped.pth"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="truncated or corrupt|refusing"):
        read_checkpoint(bad)
    tensor_bytes = bytearray(data)
    tensor_bytes[-2000:-1990] = b"xxxxxxxxxx"  # inside a tensor record near the end
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(bytes(tensor_bytes))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(damaged)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"hello, this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(junk)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(empty)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "rts50.pth")
    (tmp_path / "folder.pth").mkdir()
    with pytest.raises(CheckpointError, match="is a folder; pass the checkpoint file itself"):
        read_checkpoint(tmp_path / "folder.pth")


def test_a_damaged_legacy_pickle_names_what_is_wrong(tmp_path):
    """torch's weights-only error is a paragraph of advice around one useful line: the message keeps that line."""
    bad = tmp_path / "legacy.pth"
    bad.write_bytes(b"\x80\x02garbage")        # pickle protocol 2, then opcode 'g' with no memo
    with pytest.raises(CheckpointError, match=r"truncated or corrupt \(Unsupported operand 103\)") as err:
        read_checkpoint(bad)
    assert "weights_only" not in str(err.value)


def test_foreign_files(truncated, tmp_path):
    plain = tmp_path / "resnet.pth"
    torch.save(OrderedDict(weight=torch.zeros(2)), plain)
    with pytest.raises(CheckpointError, match="not a pytracking checkpoint"):
        read_checkpoint(plain)
    sta = read_checkpoint(truncated["sta"])
    mixed = write_official_checkpoint(tmp_path / "mixed.pth", "rts", sta.state_dict,
                                      read_checkpoint(truncated["rts"]).constructor.kwds)
    with pytest.raises(CheckpointError, match=r"1 unexpected keys \(first: target_model_segm"):
        network_from_checkpoint(read_checkpoint(mixed))


def test_wrong_constructor_argument(truncated, tmp_path):
    ck = read_checkpoint(truncated["rts"])
    path = write_official_checkpoint(tmp_path / "rts50.pth", "rts", ck.state_dict,
                                     {**ck.constructor.kwds, "backbone_type": "imagenet"})
    with pytest.raises(CheckpointError, match="backbone_type='imagenet' is not supported"):
        network_from_checkpoint(read_checkpoint(path))


def test_full_trainer_checkpoint_with_settings_and_stats(truncated, tmp_path, monkeypatch):
    # The trainer also pickles Settings/EnvironmentSettings/AverageMeter (numpy values): inert stand-ins.
    classes = {}
    for mod, name in (("ltr.admin.settings", "Settings"), ("ltr.admin.local", "EnvironmentSettings"),
                      ("ltr.admin.stats", "AverageMeter")):
        for part in ("ltr", "ltr.admin", mod):
            monkeypatch.setitem(sys.modules, part, sys.modules.get(part) or types.ModuleType(part))
        cls = type(name, (), {"__module__": mod, "__qualname__": name})
        setattr(sys.modules[mod], name, cls)
        classes[name] = cls
    env = classes["EnvironmentSettings"]()
    env.workspace_dir = "/home/someone/ws"
    settings = classes["Settings"]()
    settings.env, settings.batch_size = env, 20
    meter = classes["AverageMeter"]()
    meter.avg, meter.count = np.float64(0.25), 3
    ck = read_checkpoint(truncated["rts"])
    path = write_official_checkpoint(tmp_path / "full.pth", "rts", ck.state_dict, ck.constructor.kwds,
                                     extra={"settings": settings, "stats": OrderedDict(train=OrderedDict(Loss=meter)),
                                            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}})
    for part in ("ltr", "ltr.admin", "ltr.admin.settings", "ltr.admin.local", "ltr.admin.stats"):
        monkeypatch.delitem(sys.modules, part, raising=False)
    loaded = read_checkpoint(path)
    assert list(loaded.state_dict) == list(ck.state_dict)


def test_cli_reports_one_line_errors(truncated, tmp_path, capsys):
    from rts_ros.cli.convert import main

    cases = [(tmp_path / "missing.pth", tmp_path / "w", "does not exist"),
             (truncated["rts"], tmp_path / "w", "491 missing keys"),
             (_small_official(tmp_path), truncated["rts"], "cannot write")]  # OUT_DIR is a file
    for src, out, text in cases:
        assert main([str(src), str(out), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rts-convert: error: ") and text in err[0]


def _small_official(tmp_path):
    from rts_ros.model import build_rts

    kw = dict(backbone_type="resnet", backbone_block="basic", backbone_layers=[1, 1, 1, 1], backbone_width=8,
              out_feature_dim=32, decoder_mdim=8, label_encoder_dims=(4, 8, 8), num_filters=4)
    return write_official_checkpoint(tmp_path / "small.pth", "rts", build_rts(kw).state_dict(), kw)


def test_cli_converts_a_small_official_layout_file(tmp_path, capsys):
    import json

    from rts_ros.cli.convert import main
    from rts_ros.weights import load_weights_folder

    src = _small_official(tmp_path)
    assert main([str(src), str(tmp_path / "w")]) == 0
    out = capsys.readouterr()
    assert "rts:" in out.out and "reading checkpoint" in out.err
    meta = json.loads((tmp_path / "w" / "rts.json").read_text())
    assert meta["constructor"]["kwds"]["fusion_type"] == "add" and meta["constructor"]["kwds"]["clf_filter_size"] == 4
    assert meta["constructor"]["kwds"]["backbone_pretrained"] is False
    wf = load_weights_folder(tmp_path / "w")
    ref = read_checkpoint(src).state_dict
    assert wf.sta is None and all(torch.equal(v, ref[k]) for k, v in wf.rts.state_dict().items())
