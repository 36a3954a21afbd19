"""rts-track as a subprocess: output files, init-mask mode, overlay, errors, and parity of boxes.txt."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from rts_ros.testing import REPO_ROOT, without_root_file_access  # noqa: E402

TINY_KWDS = {"backbone_type": "resnet", "backbone_block": "basic", "backbone_layers": [1, 1, 1, 1],
             "backbone_width": 8, "out_feature_dim": 32, "decoder_mdim": 16}


def write_weights_dir(folder, net, kwds):
    """A weights folder (rts.safetensors + rts.json) written by the weights package."""
    from rts_ros.weights import save_network

    save_network(folder, "rts", net.state_dict(), kwds, fun_module="test", fun_name="tiny")
    return folder


def run_cli(*args, timeout=900, prefix=(), module="rts_ros.cli.track"):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([*prefix, sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO_ROOT)


def one_error_line(r, code):
    """The run failed with `code` and said so in one line, without a traceback."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == code and len(lines) == 1 and lines[0].startswith(("error:", "rts-")), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from rts_ros.model import build_rts

    torch.manual_seed(0)
    return write_weights_dir(tmp_path_factory.mktemp("w") / "tiny", build_rts(TINY_KWDS), TINY_KWDS)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(1)
    for i in range(4):
        img = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        img[30:60, 40 + 3 * i:80 + 3 * i] = (250, 30, 30)
        cv2.imwrite(str(d / f"f{i:02d}.png"), img)
    return d


def test_cli_writes_all_outputs_with_overlay(tmp_path, tiny_weights, frames_dir):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("image_sample_size: [128, 224]\nbox_init: grabcut\n")
    out = tmp_path / "out"
    r = run_cli(frames_dir, "--init-box", "40,30,40,30", "--weights", tiny_weights, "--device", "cpu",
                "--config", cfg, "--output", out, "--overlay")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("tracking: 3 frames, ") and last.endswith(" FPS")
    boxes = (out / "boxes.txt").read_text().splitlines()
    assert len(boxes) == 4 and boxes[0] == "40,30,40,30"
    assert len((out / "confidence.txt").read_text().splitlines()) == 4
    quality = (out / "quality.txt").read_text().splitlines()
    assert quality[0] == "1.000000" and quality[1:] == ["nan"] * 3   # the tiny weights have no quality model
    states = (out / "state.txt").read_text().splitlines()
    assert states[0] == "TRACKING" and all(s in ("TRACKING", "UNCERTAIN", "LOST") for s in states)
    masks = sorted((out / "masks").iterdir())
    assert [m.name for m in masks] == [f"{i:08d}.png" for i in range(1, 5)]
    m0 = cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE)
    assert m0.shape == (96, 128) and set(np.unique(m0)) <= {0, 255}
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_cli_init_mask_gives_its_tight_box(tmp_path, tiny_weights, frames_dir):
    mask = np.zeros((96, 128), np.uint8)
    mask[31:58, 42:79] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("image_sample_size: [128, 224]\n")
    out = tmp_path / "out"
    r = run_cli(frames_dir, "--init-mask", tmp_path / "m.png", "--weights", tiny_weights, "--device", "cpu",
                "--config", cfg, "--output", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (out / "boxes.txt").read_text().splitlines()[0] == "42,31,37,27"
    assert np.array_equal(cv2.imread(str(out / "masks" / "00000001.png"), cv2.IMREAD_GRAYSCALE), mask)


def test_cli_errors_are_clear(tmp_path, tiny_weights, frames_dir):
    r = run_cli(frames_dir, "--weights", tiny_weights, "--output", tmp_path / "o")
    assert r.returncode == 2 and "--init-box" in r.stderr
    r = run_cli(frames_dir, "--init-box", "1,2,3", "--output", tmp_path / "o")
    assert r.returncode == 2 and "x,y,w,h" in r.stderr
    r = run_cli(frames_dir, "--init-box", "40,30,0,30", "--weights", tiny_weights, "--device", "cpu",
                "--output", tmp_path / "o")
    assert r.returncode == 1 and "zero or negative size" in r.stderr
    r = run_cli(tmp_path / "missing", "--init-box", "1,2,3,4", "--output", tmp_path / "o")
    assert r.returncode != 0 and "neither a folder" in r.stderr
    r = run_cli(frames_dir, "--init-box", "1,2,3,4", "--weights", tmp_path / "nowhere", "--output", tmp_path / "o")
    assert r.returncode == 1 and "weights folder" in r.stderr


def test_cli_checks_box_and_output_before_loading_the_model(tmp_path, frames_dir):
    """The weights folder does not exist: the box and the output folder are reported, so they were checked first."""
    (tmp_path / "afile").write_text("x")
    r = run_cli(frames_dir, "--init-box", "40,30,40,30", "--weights", tmp_path / "nowhere", "--output",
                tmp_path / "afile")
    assert "--output" in one_error_line(r, 1) and "is a file" in r.stderr
    r = run_cli(frames_dir, "--init-box", "40,30,0,30", "--weights", tmp_path / "nowhere", "--output", tmp_path / "o")
    assert "zero or negative size" in one_error_line(r, 1)
    assert not (tmp_path / "o").exists()      # no empty boxes.txt, state.txt ... left behind


def test_cli_reports_unreadable_input_and_unwritable_output(tmp_path, frames_dir):
    prefix = without_root_file_access()
    shutil.copytree(frames_dir, tmp_path / "in")
    (tmp_path / "in").chmod(0)
    (tmp_path / "ro").mkdir(mode=0o555)
    try:
        r = run_cli(tmp_path / "in", "--init-box", "40,30,40,30", "--output", tmp_path / "o", prefix=prefix)
        assert "cannot read the folder" in one_error_line(r, 1) and "Permission denied" in r.stderr
        r = run_cli(frames_dir, "--init-box", "40,30,40,30", "--output", tmp_path / "ro" / "o", prefix=prefix)
        assert "not writable" in one_error_line(r, 1)
    finally:
        (tmp_path / "in").chmod(0o755)


def test_cli_skips_hidden_files_among_the_frames(tmp_path, tiny_weights, frames_dir):
    shutil.copytree(frames_dir, tmp_path / "in")
    (tmp_path / "in" / "._f01.png").write_bytes(b"\x00\x05\x16\x07 macOS AppleDouble")   # not an image
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("image_sample_size: [128, 224]\n")
    r = run_cli(tmp_path / "in", "--init-box", "40,30,40,30", "--weights", tiny_weights, "--device", "cpu",
                "--config", cfg, "--output", tmp_path / "out", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("tracking: 3 frames, ")


def test_convert_tells_an_unreadable_input_from_an_unwritable_output(tmp_path):
    prefix = without_root_file_access()
    r = run_cli(tmp_path / "missing.pth", tmp_path / "w", module="rts_ros.cli.convert")
    assert "IN" in one_error_line(r, 2) and "does not exist" in r.stderr
    (tmp_path / "dir.pth").mkdir()
    r = run_cli(tmp_path / "dir.pth", tmp_path / "w", module="rts_ros.cli.convert")
    assert "is a folder" in one_error_line(r, 2)
    (tmp_path / "locked.pth").write_bytes(b"PK")
    (tmp_path / "locked.pth").chmod(0)
    r = run_cli(tmp_path / "locked.pth", tmp_path / "w", module="rts_ros.cli.convert", prefix=prefix)
    line = one_error_line(r, 2)
    assert "cannot read IN" in line and "Permission denied" in line and "OUT_DIR" not in line


@pytest.mark.slow
def test_parity_cli_boxes_match_reference(tmp_path, parity):
    """The fixture frames with the recipe weights in a weights folder: boxes.txt vs the reference boxes."""
    from rts_ros.weights.official import write_official_checkpoint
    from rts_ros.weights.recipe import recipe_arrays, recipe_constructor

    w = tmp_path / "recipe_weights"
    for name, fname in (("rts", "rts50.pth"), ("sta", "sta.pth.tar")):
        src = tmp_path / fname
        arrays = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in recipe_arrays(str(parity), name).items()}
        write_official_checkpoint(src, name, arrays, recipe_constructor(str(parity), name)["kwds"])
        del arrays
        conv = subprocess.run([sys.executable, "-m", "rts_ros.cli.convert", "-q", str(src), str(w)],
                              capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
        assert conv.returncode == 0, conv.stderr
        src.unlink()
    seq = json.loads((parity / "tracker" / "sequence.json").read_text())
    ref = json.loads((parity / "tracker" / "results.json").read_text())
    out = tmp_path / "out"
    r = run_cli(parity / "tracker" / "frames", "--init-box", ",".join(map(str, seq["init_bbox_xywh"])),
                "--weights", w, "--device", "cpu", "--output", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("tracking: 9 frames, ")
    boxes = np.array([[float(v) for v in line.split(",")] for line in (out / "boxes.txt").read_text().splitlines()])
    expect = np.array([seq["init_bbox_xywh"]] + [f["target_bbox_xywh"] for f in ref["frames"]], dtype=float)
    assert boxes.shape == expect.shape
    np.testing.assert_allclose(boxes, expect, atol=1.0)
    states = (out / "state.txt").read_text().splitlines()
    assert states[7] == "LOST" and states[8] == "TRACKING"
