"""Tracker-level parity: our Tracker on the fixture sequence vs the reference run (shared/parity/tracker).

Tolerances from the fixture README: discrete fields equal; boxes within 1 px; clf_max_score within 1e-3;
pos/target_scale within 1e-3 relative; masks IoU >= 0.99.
"""
import json
import os

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from rts_ros.tracker.tracker import Tracker  # noqa: E402

pytestmark = pytest.mark.slow


def recipe_networks(parity_dir):
    """RTS and STA built from the fixture's weight recipes (bit-exact, SHA-checked)."""
    from rts_ros.model import build_rts, build_sta
    from rts_ros.weights.recipe import recipe_arrays, recipe_constructor

    nets = []
    for name, build in (("rts", build_rts), ("sta", build_sta)):
        net = build(recipe_constructor(str(parity_dir), name)["kwds"])
        sd = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in recipe_arrays(str(parity_dir), name).items()}
        net.load_state_dict(sd, strict=True)
        nets.append(net.eval())
    return nets


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


@pytest.fixture(scope="module")
def run(parity):
    rts, sta = recipe_networks(parity)
    tdir = parity / "tracker"
    seq = json.loads((tdir / "sequence.json").read_text())
    # RTS_TEST_DEVICE=cuda runs the same comparison on a GPU (TF32 off: it is not float32-exact).
    device = os.environ.get("RTS_TEST_DEVICE", "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            pytest.skip(f"RTS_TEST_DEVICE={device} but no CUDA device")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    tracker = Tracker(rts, sta, device=device)
    frames = [read_rgb(tdir / "frames" / f"{i:03d}.png") for i in range(seq["num_frames"])]
    out = [tracker.initialize(frames[0], box=seq["init_bbox_xywh"])]
    infos, probs = [tracker.init_info], [None]
    for img in frames[1:]:
        out.append(tracker.track(img))
        infos.append(tracker.last_info)
        probs.append(tracker._core.prev_raw[0, 0].cpu().numpy().copy())
    return {"dir": tdir, "ref": json.loads((tdir / "results.json").read_text()), "out": out, "infos": infos,
            "probs": probs, "maps": np.load(tdir / "per_frame_maps.npz")}


def test_init_matches_reference(run):
    ref, info = run["ref"]["init"], run["infos"][0]
    assert info["sta_mask_area"] == ref["sta_mask_area"]
    np.testing.assert_allclose(info["pos"], ref["pos_yx"], rtol=1e-6)
    assert info["target_scale"] == pytest.approx(ref["target_scale"], rel=1e-6)
    np.testing.assert_allclose(info["init_sample_pos"], ref["init_sample_pos_yx"])
    np.testing.assert_allclose(info["clf_init_sample_pos"], ref["clf_init_sample_pos_yx"])
    assert info["clf_sigma"] == pytest.approx(ref["clf_sigma"][0], rel=1e-6)
    ref_mask = cv2.imread(str(run["dir"] / "out_masks" / "000.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert iou(ref_mask, run["out"][0].mask > 0) >= 0.99


DISCRETE = {
    "clf_flag": "clf_flag", "is_lost_seg": "is_lost_seg", "seg_too_small": "seg_too_small",
    "is_lost_clf": "is_lost_clf", "reposition_branch": "reposition_branch",
    "search_area_rescaling_called": "search_area_rescaling_called",
    "target_not_found_counter": "target_not_found_counter", "seg_memory_updated": "seg_memory_updated",
    "seg_model_update_iters": "seg_model_update_iters", "clf_memory_updated": "clf_memory_updated",
    "clf_model_update_iters": "clf_model_update_iters", "output_box_source": "output_box_source",
    "seg_num_stored_samples": "seg_num_stored", "clf_num_stored_samples": "clf_num_stored",
}


@pytest.mark.parametrize("i", range(1, 10))
def test_frame_matches_reference(run, i):
    ref = run["ref"]["frames"][i - 1]
    assert ref["frame"] == i
    res, info = run["out"][i], run["infos"][i]
    for ref_key, ours in DISCRETE.items():
        assert getattr(info, ours) == ref[ref_key], f"frame {i}: {ref_key}"
    np.testing.assert_allclose(res.box, ref["target_bbox_xywh"], atol=1.0, err_msg=f"frame {i} output box")
    np.testing.assert_allclose(info.clf_box, ref["clf_target_bbox_xywh"], atol=1.0, err_msg=f"frame {i} clf box")
    np.testing.assert_allclose(info.clf_search_area, ref["clf_search_area_xywh"], atol=1.0)
    np.testing.assert_allclose(info.sample_coords, ref["sample_coords_y0x0y1x1"], atol=1.0)
    assert info.clf_max_score == pytest.approx(ref["clf_max_score"], abs=1e-3)
    assert res.confidence == pytest.approx(ref["clf_max_score"], abs=1e-3)
    np.testing.assert_allclose(info.pos, ref["pos_yx"], rtol=1e-3)
    np.testing.assert_allclose(info.target_sz, ref["target_sz_hw"], rtol=1e-3)
    assert info.target_scale == pytest.approx(ref["target_scale"], rel=1e-3)
    np.testing.assert_allclose(info.search_center, ref["sample_pos_yx"], rtol=1e-3)
    np.testing.assert_allclose(info.clf_pos, ref["clf_pos_yx"], rtol=1e-3)
    np.testing.assert_allclose(info.clf_target_sz, ref["clf_target_sz_hw"], rtol=1e-3)
    # masks: IoU >= 0.99, equal emptiness, area as recorded
    ref_mask = cv2.imread(str(run["dir"] / "out_masks" / f"{i:03d}.png"), cv2.IMREAD_GRAYSCALE) > 0
    ours = res.mask > 0
    assert iou(ref_mask, ours) >= 0.99, f"frame {i} mask IoU"
    assert ours.any() == ref_mask.any()
    assert abs(res.mask_area - ref["mask_area"]) <= 0.01 * max(ref["mask_area"], 1) + 20
    # recorded internal maps: instance scores (1e-3 of the peak) and the probability map
    ref_scores = run["maps"]["clf_scores"][i - 1]
    assert np.abs(info.clf_scores - ref_scores).max() <= 1e-3 * np.abs(ref_scores).max()
    ref_prob = run["maps"]["segmentation_prob"][i - 1]
    assert np.abs(run["probs"][i] - ref_prob).max() <= 1e-3


def test_states_follow_the_flags(run):
    from rts_ros.tracker.types import TrackState

    states = [r.state for r in run["out"]]
    assert states[0] == TrackState.TRACKING
    assert states[7] == TrackState.LOST  # occluded: classifier 'not_found' and an empty mask
    assert all(s == TrackState.TRACKING for k, s in enumerate(states) if k != 7)
