"""Module parity against the reference fixtures (shared/parity/modules), with the recipe weights."""
import numpy as np
import pytest
import torch

from rts_ros.model import build_rts, build_sta
from rts_ros.model.module_fixtures import compared_names, rel_error, run_rts, run_sta, tolerance
from rts_ros.weights.recipe import recipe_arrays, recipe_constructor


_NETS = {}


def _network(parity, name):
    """Recipe-weight network, built once per test session (building ResNet-50 twice is slow on 2 cores)."""
    if (str(parity), name) in _NETS:
        return _NETS[(str(parity), name)]
    build = build_rts if name == "rts" else build_sta
    net = build(recipe_constructor(str(parity), name)["kwds"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in recipe_arrays(str(parity), name).items()}, strict=True)
    _NETS[(str(parity), name)] = net
    return net


@pytest.fixture(scope="module")
def rts_results(parity):
    fx = dict(np.load(parity / "modules" / "rts_modules.npz"))
    return fx, run_rts(_network(parity, "rts"), fx)


@pytest.fixture(scope="module")
def sta_results(parity):
    fx = dict(np.load(parity / "modules" / "sta_modules.npz"))
    return fx, run_sta(_network(parity, "sta"), fx)


def test_parity_recipe_weights_match_sha256(parity):
    # recipe_arrays raises if any tensor's SHA-256 differs; check the entry counts of the README too.
    assert len(recipe_arrays(str(parity), "rts")) == 497
    assert len(recipe_arrays(str(parity), "sta")) == 527


def _check_all(fx, ours, manifest_names):
    names = compared_names(manifest_names)
    missing = [n for n in names if n not in ours]
    assert not missing, f"not computed: {missing}"
    errors = {n: rel_error(ours[n], fx[n]) for n in names}
    bad = {n: e for n, e in errors.items() if not e <= tolerance(n)}
    assert not bad, f"over tolerance: {bad}"
    return errors


def test_parity_rts_modules(parity, rts_results):
    import json

    manifest = json.loads((parity / "modules" / "manifest.json").read_text())["arrays"]["rts"]
    fx, ours = rts_results
    errors = _check_all(fx, ours, manifest)
    assert set(errors) == set(ours) and len(errors) == 27  # all 27 listed non-input, non-loss arrays


def test_parity_sta_modules(parity, sta_results):
    import json

    manifest = json.loads((parity / "modules" / "manifest.json").read_text())["arrays"]["sta"]
    fx, ours = sta_results
    errors = _check_all(fx, ours, manifest)
    assert set(errors) == set(ours) and len(errors) == 11


def test_parity_sta_needs_normalised_input_for_fixture(parity, sta_results):
    # Sanity of the protocol: the fixture was made from the bgr255 crop; the raw crop gives another mask.
    fx, _ = sta_results
    net = _network(parity, "sta")
    with torch.no_grad():
        raw = net(torch.from_numpy(fx["in.image_rgb255"]), torch.from_numpy(fx["in.box_xywh"]))
    assert rel_error(raw.numpy().reshape(fx["pred_final"].shape), fx["pred_final"]) > 1e-2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_parity_modules_on_cuda(parity):
    # TF32 convolutions (the cuDNN default) are not float32-exact; parity needs them off.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for name, run in (("rts", run_rts), ("sta", run_sta)):
        fx = dict(np.load(parity / "modules" / f"{name}_modules.npz"))
        manifest = [k for k in fx]
        _check_all(fx, run(_network(parity, name).cuda(), fx), manifest)
        _network(parity, name).cpu()
