"""Full-size official-layout checkpoints made from the weight recipes convert with rts-convert, and the
converted weights folder reproduces the reference module fixtures."""
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rts_ros.model import build_rts, build_sta
from rts_ros.model.module_fixtures import compared_names, rel_error, run_rts, run_sta, tolerance
from rts_ros.weights import load_weights_folder
from rts_ros.weights.official import write_official_checkpoint
from rts_ros.weights.recipe import recipe_arrays, recipe_constructor

pytestmark = [pytest.mark.parity, pytest.mark.slow]
FILES = {"rts": ("rts50", "rts50.pth"), "sta": ("sta", "sta.pth.tar")}


def _convert_cmd():
    exe = Path(sys.executable).parent / "rts-convert"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rts_ros.cli.convert"]


@pytest.fixture(scope="module")
def converted(parity, tmp_path_factory):
    """Both official-layout files written from the recipes, then converted into one weights folder."""
    base = tmp_path_factory.mktemp("official")
    fmt = json.loads((parity / "checkpoints" / "format.json").read_text())
    files, logs = {}, {}
    for net, (key, name) in FILES.items():
        kwds = _as_pickled(fmt[key]["constructor"])
        model = (build_rts if net == "rts" else build_sta)(kwds)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in recipe_arrays(str(parity), net).items()})
        # a real Module.state_dict() (with its _metadata), as the reference trainer saves it
        path = write_official_checkpoint(base / name, net, model.state_dict(), kwds, epoch=fmt[key]["values"]["epoch"])
        del model
        proc = subprocess.run(_convert_cmd() + [str(path), str(base / "weights")], capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        files[net], logs[net] = path, proc
    yield base / "weights", files, logs, fmt
    shutil.rmtree(base, ignore_errors=True)


def _as_pickled(constructor):
    """kwds with the value types the official file stores (label_encoder_dims is a tuple)."""
    types = constructor["kwds_value_types"]
    return {k: tuple(v) if types[k] == "tuple" else v for k, v in constructor["kwds"].items()}


@pytest.mark.parametrize("net", ["rts", "sta"])
def test_parity_written_files_have_the_official_layout(converted, net):
    _, files, _, fmt = converted
    spec = fmt[FILES[net][0]]
    with zipfile.ZipFile(files[net]) as zf:
        names = zf.namelist()
    assert spec["zip_archive"]["pickle_record"] in names
    assert sorted(torch.serialization.get_unsafe_globals_in_checkpoint(files[net])) == [
        "ltr.admin.model_constructor.NetConstructor"]
    assert abs(files[net].stat().st_size - spec["full_file_bytes"]) < 0.001 * spec["full_file_bytes"]


@pytest.mark.parametrize("net", ["rts", "sta"])
def test_parity_convert_writes_effective_kwargs_and_sha(converted, net, parity):
    folder, files, logs, _ = converted
    meta = json.loads((folder / f"{net}.json").read_text())
    kwds = dict(recipe_constructor(str(parity), net)["kwds"], backbone_pretrained=False)
    if net == "rts":
        kwds.update(clf_filter_size=4, fusion_type="add")
    assert meta["constructor"]["kwds"] == kwds
    assert meta["format"] == "rts_ros-weights/1" and meta["network"] == net
    assert meta["source"] == files[net].name
    assert meta["source_sha256"] == hashlib.sha256(files[net].read_bytes()).hexdigest()
    assert "building the" in logs[net].stderr  # progress was shown


def _check(fx, ours):
    names = compared_names(fx)
    errors = {n: rel_error(ours[n], fx[n]) for n in names}
    assert not {n: e for n, e in errors.items() if not e <= tolerance(n)}
    return errors


def test_parity_converted_folder_reproduces_module_fixtures(converted, parity):
    folder = converted[0]
    wf = load_weights_folder(folder, device="cpu")
    assert wf.sta is not None
    ref = recipe_arrays(str(parity), "rts")
    assert all(np.array_equal(v.numpy(), ref[k]) for k, v in wf.rts.state_dict().items())
    fx = dict(np.load(parity / "modules" / "rts_modules.npz"))
    assert len(_check(fx, run_rts(wf.rts, fx))) == 27
    fx = dict(np.load(parity / "modules" / "sta_modules.npz"))
    assert len(_check(fx, run_sta(wf.sta, fx))) == 11
