"""Synthetic video generator: determinism, exact masks and boxes, real occlusion, exits, speed, file output."""
import time

import cv2
import numpy as np
import pytest

from rts_ros.data.eval_folders import find_sequences
from rts_ros.data.synthetic import SynthConfig, generate_sequence
from rts_ros.data.synthetic_io import write_demo_video, write_sequence_folder
from rts_ros.errors import ConfigError, InvalidInputError


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], float)


def test_same_seed_same_video_other_seed_other_video():
    a = generate_sequence(11, 96, 128, 12, 0.8)
    b = generate_sequence(11, 96, 128, 12, 0.8)
    c = generate_sequence(12, 96, 128, 12, 0.8)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not all(np.array_equal(x, y) for x, y in zip(a.frames, c.frames))


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_box_is_tight_box_of_mask_where_visible(difficulty):
    for seed in range(3):
        seq = generate_sequence(seed, 120, 160, 40, difficulty)
        assert len(seq.frames) == len(seq.masks) == len(seq.visible) == seq.boxes.shape[0] == 40
        for frame, mask, box, vis in zip(seq.frames, seq.masks, seq.boxes, seq.visible):
            assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
            assert mask.shape == (120, 160) and mask.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 255}
            assert vis == bool(mask.any())
            if vis:
                np.testing.assert_array_equal(box, _tight_box(mask))
            else:
                assert np.all(np.isnan(box))


def test_init_frame_shows_the_whole_unoccluded_target():
    for seed in range(25):
        seq = generate_sequence(seed, 120, 160, 30, 1.0)
        assert seq.visible[0] and seq.occlusion[0] == 0.0, f"seed {seed}"
        x, y, w, h = seq.boxes[0]
        assert x > 0 and y > 0 and x + w < 160 and y + h < 120, f"seed {seed}: target cut by the border"


def test_occluders_hide_exactly_the_covered_target_pixels():
    free = SynthConfig.from_difficulty(0.6, num_distractors=0, num_occluders=0, exit_prob=0.0)
    occ = SynthConfig.from_difficulty(0.6, num_distractors=0, num_occluders=2, exit_prob=0.0)
    hidden_frames = 0
    for seed in range(6):
        a = generate_sequence(seed, 120, 160, 60, config=free)
        b = generate_sequence(seed, 120, 160, 60, config=occ)
        for t in range(60):
            full, vis = a.masks[t] > 0, b.masks[t] > 0
            assert not np.any(vis & ~full), "occlusion can only remove target pixels"
            hidden = full & ~vis
            expected = 1.0 - vis.sum() / full.sum() if full.any() else 0.0
            assert b.occlusion[t] == pytest.approx(expected)
            if hidden.sum() > 20:
                hidden_frames += 1
                # The hidden pixels show something else than the target (the occluder is drawn there).
                changed = np.any(a.frames[t][hidden] != b.frames[t][hidden], axis=1)
                assert changed.mean() > 0.5
            # Outside the occluders' reach nothing changes: the visible target pixels are identical.
            np.testing.assert_array_equal(a.frames[t][vis], b.frames[t][vis])
    assert hidden_frames > 0, "no occluder ever crossed the target"


def test_target_leaves_and_reenters_the_frame():
    cfg = SynthConfig.from_difficulty(0.5, exit_prob=1.0, num_occluders=0, num_distractors=0)
    reentries = 0
    for seed in range(4):
        vis = generate_sequence(seed, 120, 160, 80, config=cfg).visible
        assert not all(vis), f"seed {seed}: the target never left"
        first_gone = vis.index(False)
        reentries += any(vis[first_gone:])
    assert reentries >= 3


def test_distractors_look_like_the_target():
    cfg = SynthConfig.from_difficulty(0.5, num_distractors=2, num_occluders=0, distractor_above_prob=0.0,
                                      exit_prob=0.0, lighting_amp=0.0, real_background_prob=0.0)
    alone = SynthConfig.from_difficulty(0.5, num_distractors=0, num_occluders=0, exit_prob=0.0,
                                        lighting_amp=0.0, real_background_prob=0.0)
    a = generate_sequence(5, 120, 160, 5, config=alone)
    b = generate_sequence(5, 120, 160, 5, config=cfg)
    tgt = a.masks[0] > 0
    target_colour = a.frames[0][tgt].mean(0)
    changed = np.any(a.frames[0] != b.frames[0], axis=2) & ~tgt
    assert changed.sum() > 50, "distractors were not drawn"
    # Same texture (up to a mild gain): their mean colour is close to the target's, the background's is not
    # required to be.
    assert np.abs(b.frames[0][changed].mean(0) - target_colour).max() < 40


def test_generation_is_fast_enough_for_on_the_fly_training():
    generate_sequence(0, 240, 320, 5, 0.5)  # warm the photo cache
    t0 = time.perf_counter()
    for seed in range(4):
        generate_sequence(100 + seed, 240, 320, 50, 0.7)
    per_frame = (time.perf_counter() - t0) / 200
    # Target is well under 5 ms on an idle core; the bound leaves room for a loaded CI machine.
    assert per_frame < 0.015, f"{per_frame * 1e3:.1f} ms per 240x320 frame"


def test_bad_arguments_are_rejected_clearly():
    with pytest.raises(ConfigError, match="difficulty"):
        SynthConfig.from_difficulty(1.5)
    with pytest.raises(ConfigError, match="unknown"):
        SynthConfig.from_difficulty(0.5, num_dragons=3)
    with pytest.raises(InvalidInputError, match="height"):
        generate_sequence(0, 10, 10, 5)


def test_folder_round_trip_through_the_evaluation_reader(tmp_path):
    cfg = SynthConfig.from_difficulty(0.5, exit_prob=1.0)
    seq = generate_sequence(3, 96, 128, 40, config=cfg)
    write_sequence_folder(seq, tmp_path / "s", "png")
    (loaded,) = find_sequences(tmp_path)
    assert len(loaded) == 40
    np.testing.assert_array_equal(np.isnan(loaded.boxes), np.isnan(seq.boxes))
    np.testing.assert_allclose(loaded.boxes[seq.visible], seq.boxes[seq.visible])
    for i in (0, 10, 39):
        np.testing.assert_array_equal(loaded.image(i), seq.frames[i])  # png is lossless
        np.testing.assert_array_equal(loaded.mask(i), seq.masks[i] > 0)


def test_demo_video_has_every_frame(tmp_path):
    path = tmp_path / "demo.mp4"
    seq = write_demo_video(path, seed=1, height=96, width=128, num_frames=25)
    cap = cv2.VideoCapture(str(path))
    n = 0
    for _ in range(100):
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (96, 128, 3)
        n += 1
    assert n == 25 and all(seq.visible)


def test_rts_synth_command_writes_sequences(tmp_path):
    from rts_ros.cli.synth import main

    assert main([str(tmp_path), "--num-seqs", "2", "--seed", "1000", "--frames", "6", "--height", "64",
                 "--width", "80"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["synth_001000", "synth_001001"]
    assert len(list((tmp_path / "synth_001000" / "img").glob("*.jpg"))) == 6
    assert len((tmp_path / "synth_001000" / "groundtruth.txt").read_text().split()) == 6


def test_rts_synth_refuses_a_negative_seed_and_a_file_as_out_dir(tmp_path, capsys):
    from rts_ros.cli.synth import main

    (tmp_path / "afile").write_text("x")
    for out, extra, message in ((tmp_path / "out", ["--seed", "-5"], "--seed -5"),
                                (tmp_path / "afile", [], "is a file")):
        assert main([str(out), "--num-seqs", "1", "--frames", "2", "--height", "64", "--width", "80", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rts-synth: error:") and message in err[0], err
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidInputError, match="cannot create"):   # the library says it too
        write_sequence_folder(generate_sequence(1, 64, 80, 2), tmp_path / "afile" / "s")


def test_rts_synth_options_all_have_a_help_text():
    from rts_ros.cli.synth import build_parser

    parser = build_parser()
    assert all(a.help for a in parser._actions), [a.dest for a in parser._actions if not a.help]
