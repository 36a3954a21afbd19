"""rts-eval end to end: folder readers, the OpenCV baselines, the rts adapter, the command, tables and plots."""
import csv
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from rts_ros.data.eval_folders import find_sequences, parse_groundtruth
from rts_ros.data.synthetic import SynthConfig, generate_sequence
from rts_ros.data.synthetic_io import write_sequence_folder
from rts_ros.errors import InvalidInputError
from rts_ros.eval.report import paired_auc, summarize, write_reports
from rts_ros.eval.runner import merge_runs, run_sequence
from rts_ros.eval.trackers import STATUSES, OpenCVTracker, Prediction, RTSTracker, make_tracker
from rts_ros.testing import REPO_ROOT, without_root_file_access

EASY = SynthConfig.from_difficulty(0.0, real_background_prob=0.0)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    for seed in (1000, 1001):
        write_sequence_folder(generate_sequence(seed, 120, 160, 30, config=EASY), root / f"synth_{seed}", "png")
    return root


class Oracle:
    """Returns the ground truth: the ideal tracker."""

    name = "oracle"

    def __init__(self, seq):
        self.seq, self.i = seq, 0

    def start(self, image, box, mask=None):
        self.i = 0

    def step(self, image):
        self.i += 1
        return Prediction(self.seq.boxes[self.i], self.seq.mask(self.i))


class Static:
    """Never moves: the box of the first frame forever (what a tracker must beat)."""

    name = "static"

    def start(self, image, box, mask=None):
        self.box = np.asarray(box, float)

    def step(self, image):
        return Prediction(self.box)


def test_groundtruth_separators_and_absent_rows():
    text = "1,2,3,4\n5\t6\t7\t8\n9 10 11 12\n1;2;3;4\nNaN,NaN,NaN,NaN\n0,0,0,0\n3,3,-1,5\n\n"
    boxes = parse_groundtruth(text)
    np.testing.assert_array_equal(boxes[:4], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [1, 2, 3, 4]])
    assert np.all(np.isnan(boxes[4:])) and boxes.shape == (7, 4)
    with pytest.raises(InvalidInputError, match="line 1"):
        parse_groundtruth("1,2,3\n")
    with pytest.raises(InvalidInputError, match="not numeric"):
        parse_groundtruth("a,b,c,d\n")


def test_groundtruth_empty_rows_polygons_and_wrong_value_counts(tmp_path):
    # an empty row is a frame without the target (dropping it would shift every later box); an 8-value VOT polygon
    # is read as its bounding box; blank lines at the end are not frames
    seq = tmp_path / "s"
    (seq / "img").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(seq / "img" / f"{i:04d}.png"), np.zeros((40, 60, 3), np.uint8))
    (seq / "groundtruth.txt").write_text("1,2,3,4\n\n180,130,234,130,234,174,180,174\n10,20,15,20,5,28,0,22\n\n\n")
    (seq / "img" / "._0001.png").write_bytes(b"\x00\x05\x16\x07 macOS metadata")   # hidden: not a frame
    (loaded,) = find_sequences(tmp_path)
    assert len(loaded) == 4 and np.all(np.isnan(loaded.boxes[1]))
    np.testing.assert_array_equal(loaded.boxes[[0, 2, 3]], [[1, 2, 3, 4], [180, 130, 54, 44], [0, 20, 15, 8]])
    for n in (5, 6, 7, 9):
        (seq / "groundtruth.txt").write_text("1,2,3,4\n" + ",".join(["1"] * n) + "\n1,2,3,4\n1,2,3,4\n")
        with pytest.raises(InvalidInputError, match=rf"groundtruth.txt: line 2 .* holds {n} values"):
            find_sequences(tmp_path)


def test_eval_command_checks_its_options_before_tracking(synth_dir, tmp_path, capsys, monkeypatch):
    from rts_ros.cli.evaluate import main
    from rts_ros.eval import runner

    def never(*args, **kwargs):
        raise AssertionError("tracking started before the options were checked")

    monkeypatch.setattr(runner, "run_sequence", never)
    (tmp_path / "afile").write_text("x")
    for extra, message in ((["--out", str(tmp_path / "afile")], "is a file"),
                           (["--out", str(tmp_path / "o"), "--max-frames", "0"], "--max-frames 0"),
                           (["--out", str(tmp_path / "o"), "--max-frames", "-3"], "--max-frames -3")):
        assert main([str(synth_dir), "--trackers", "kcf", "--no-progress", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rts-eval: error:") and message in err[0], err


def test_eval_command_reports_an_unreadable_sequence_folder(synth_dir, tmp_path):
    prefix = without_root_file_access()
    shutil.copytree(synth_dir / "synth_1000", tmp_path / "data" / "s")
    (tmp_path / "data" / "s").chmod(0)
    try:
        r = subprocess.run([*prefix, sys.executable, "-m", "rts_ros.cli.evaluate", str(tmp_path / "data"),
                            "--trackers", "kcf", "--out", str(tmp_path / "o"), "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                           env=dict(os.environ, OMP_NUM_THREADS="2"))
    finally:
        (tmp_path / "data" / "s").chmod(0o755)
    assert r.returncode == 2 and r.stderr.strip() == (f"rts-eval: error: cannot read {tmp_path / 'data' / 's'}: "
                                                      "Permission denied; check its permissions"), r.stderr


def test_otb_layout_with_img_folder_and_tab_separated_rect_file(tmp_path):
    seq_dir = tmp_path / "Walker"
    (seq_dir / "img").mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(seq_dir / "img" / f"{i:04d}.jpg"), np.full((40, 50, 3), 100, np.uint8))
    (seq_dir / "groundtruth_rect.txt").write_text("1\t2\t10\t12\n2\t3\t10\t12\n3\t4\t10\t12\n")
    (seq,) = find_sequences(tmp_path)
    assert seq.name == "Walker" and len(seq) == 3 and seq.masks is None
    assert seq.image(0).shape == (40, 50, 3)
    np.testing.assert_array_equal(seq.boxes[2], [3, 4, 10, 12])


def test_davis_layout_gives_one_sequence_per_object(tmp_path):
    img_dir = tmp_path / "JPEGImages" / "480p" / "toys"
    ann_dir = tmp_path / "Annotations" / "480p" / "toys"
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(img_dir / f"{i:05d}.jpg"), np.zeros((30, 40, 3), np.uint8))
        ids = np.zeros((30, 40), np.uint8)
        ids[2:10, 3 + i:13 + i] = 1
        ids[15:25, 20:30] = 2
        cv2.imwrite(str(ann_dir / f"{i:05d}.png"), ids)
    seqs = find_sequences(tmp_path)
    assert [s.name for s in seqs] == ["toys_1", "toys_2"]
    np.testing.assert_array_equal(seqs[0].boxes[2], [5, 2, 10, 8])
    np.testing.assert_array_equal(seqs[1].boxes[0], [20, 15, 10, 10])
    assert seqs[1].mask(1).sum() == 100


def test_davis_2016_binary_masks_give_one_sequence(tmp_path):
    # DAVIS 2016 stores one object as 0/255 grey PNGs; in DAVIS 2017 palettes 255 is void beside real ids.
    for video, fg in (("swan", 255), ("cows", 1)):
        img_dir = tmp_path / "JPEGImages" / "480p" / video
        ann_dir = tmp_path / "Annotations" / "480p" / video
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(img_dir / f"{i:05d}.jpg"), np.zeros((30, 40, 3), np.uint8))
            ids = np.zeros((30, 40), np.uint8)
            ids[4:12, 5 + i:15 + i] = fg
            if fg != 255:
                ids[3, 5:15] = 255  # a void border row is not an object
            cv2.imwrite(str(ann_dir / f"{i:05d}.png"), ids)
    cows, swan = find_sequences(tmp_path)
    assert (swan.name, swan.object_id) == ("swan", 255)
    np.testing.assert_array_equal(swan.boxes[1], [6, 4, 10, 8])
    assert swan.mask(1).sum() == 80
    assert (cows.name, cows.object_id) == ("cows", 1) and cows.mask(0).sum() == 80


def test_missing_data_is_reported_clearly(tmp_path):
    with pytest.raises(InvalidInputError, match="no sequence found"):
        find_sequences(tmp_path)
    with pytest.raises(InvalidInputError, match="not a folder"):
        find_sequences(tmp_path / "nope")
    with pytest.raises(InvalidInputError, match="unknown tracker"):
        make_tracker("mosse")


def test_oracle_tracker_gets_perfect_scores(synth_dir):
    seqs = find_sequences(synth_dir)
    results = [run_sequence(Oracle(s), s) for s in seqs]
    (summary,) = summarize(results)
    assert summary.auc == pytest.approx(20 / 21)
    assert summary.precision20 == 1.0 and summary.norm_precision == 1.0
    assert summary.j == 1.0 and summary.f == 1.0
    # J/F skip the start and the last frame (DAVIS protocol): 28 of 30 frames per sequence.
    assert all(len(r.j) == 28 for r in results)


@pytest.mark.parametrize("kind", ["csrt", "kcf"])
def test_opencv_baselines_run_on_a_generated_sequence(synth_dir, kind):
    seq = find_sequences(synth_dir)[0]
    res = run_sequence(OpenCVTracker(kind), seq)
    static = run_sequence(Static(), seq)
    assert res.tracked_frames == 30 and res.fps > 0
    assert len(res.ious) == int(np.all(np.isfinite(seq.boxes[1:]), axis=1).sum())
    assert np.all(np.isfinite(res.pred_boxes)), "the baselines give a box on every frame"
    if kind == "csrt":
        # An easy, unoccluded target: CSRT follows it better than standing still.
        assert res.auc > static.auc


def test_rts_command_writes_table_csv_and_plots(synth_dir, tmp_path, capsys):
    from rts_ros.cli.evaluate import main

    out = tmp_path / "out"
    assert main([str(synth_dir), "--trackers", "csrt,kcf", "--out", str(out), "--no-progress",
                 "--max-frames", "12"]) == 0
    printed = capsys.readouterr().out
    assert "| csrt | 2 | 24 |" in printed and "| kcf | 2 | 24 |" in printed
    for name in ("success_plot.png", "precision_plot.png", "per_sequence_plot.png"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.shape[0] > 100 and img.std() > 0, name
    rows = list(csv.reader((out / "per_sequence.csv").open()))
    assert len(rows) == 1 + 4 and rows[0][:2] == ["tracker", "sequence"]
    preds = np.loadtxt(out / "predictions" / "csrt" / "synth_1000.txt", delimiter=",")
    assert preds.shape == (12, 4)


def test_per_sequence_comparison_pairs_each_sequence_with_itself(synth_dir, tmp_path):
    """The first tracker's AUC on a sequence is paired with the other's on the same sequence, whatever the order
    of the results; the per-sequence plot is written for two trackers and not for one."""
    s0, s1 = find_sequences(synth_dir)
    st0, st1 = run_sequence(Static(), s0), run_sequence(Static(), s1, max_frames=10)
    assert st0.auc != st1.auc, "the two sequences must score differently for the pairing to be tested"
    results = [run_sequence(Oracle(s1), s1), st0, st1, run_sequence(Oracle(s0), s0)]
    names, first, other = paired_auc(results, "oracle", "static")
    assert names == [s1.name, s0.name]
    assert first == pytest.approx([20 / 21, 20 / 21]) and list(other) == [st1.auc, st0.auc]
    assert paired_auc(results, "static", "nobody")[0] == []
    paths = write_reports(tmp_path / "two", results, summarize(results), "t")
    img = cv2.imread(str(paths["per_sequence_plot"]))
    assert img is not None and img.std() > 0
    paths = write_reports(tmp_path / "one", results[1:3], summarize(results[1:3]), "t")
    assert "per_sequence_plot" not in paths and not (tmp_path / "one" / "per_sequence_plot.png").exists()


def test_same_sequence_name_under_two_roots_stays_two_sequences(synth_dir, tmp_path, capsys):
    """Two data roots holding a sequence of the same name: both are evaluated, each under a name qualified by
    its root, with its own per-sequence row and prediction file; unique names stay as they are."""
    import shutil

    from rts_ros.cli.evaluate import main

    for root in ("left", "right"):
        shutil.copytree(synth_dir / "synth_1000", tmp_path / root / "synth_1000")
    shutil.copytree(synth_dir / "synth_1001", tmp_path / "right" / "synth_1001")
    out = tmp_path / "out"
    assert main([str(tmp_path / "left"), str(tmp_path / "right"), "--trackers", "csrt", "--out", str(out),
                 "--no-progress", "--max-frames", "6"]) == 0
    assert "| csrt | 3 | 18 |" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "per_sequence.csv").open()))
    assert [r["sequence"] for r in rows] == ["left_synth_1000", "right_synth_1000", "synth_1001"]
    assert sorted(p.name for p in (out / "predictions" / "csrt").iterdir()) == [
        "left_synth_1000.txt", "right_synth_1000.txt", "synth_1001.txt"]


def test_report_marks_missing_mask_metrics(synth_dir, tmp_path):
    seq = find_sequences(synth_dir)[0]
    results = [run_sequence(Static(), seq), run_sequence(Oracle(seq), seq)]
    paths = write_reports(tmp_path, results, summarize(results), "t")
    table = paths["markdown"].read_text()
    static_row = next(line for line in table.splitlines() if line.startswith("| static"))
    # J, F, J&F, init J: a box-only tracker has no masks; one sequence gives no AUC interval; and it reports
    # no status (uncertain, lost)
    assert static_row.count(" - |") == 7


def test_self_reported_status_is_counted_per_frame_pooled_and_written(synth_dir, tmp_path):
    """Each frame's self-reported status is counted (frames after the start only); merged runs add up; the
    summary pools frames over sequences; the CSVs carry the shares."""
    seqs = find_sequences(synth_dir)

    class Scripted(Static):
        name = "scripted"

        def start(self, image, box, mask=None):
            super().start(image, box, mask)
            self.i = 0

        def step(self, image):
            self.i += 1
            status = "lost" if self.i % 5 == 0 else "uncertain" if self.i % 3 == 0 else "tracking"
            return Prediction(self.box, status=status)

    a = run_sequence(Scripted(), seqs[0])                     # frames 1..29 after the start
    assert a.status_counts == {"tracking": 16, "uncertain": 8, "lost": 5}
    assert a.status_share("lost") == pytest.approx(5 / 29)
    b = run_sequence(Scripted(), seqs[1], max_frames=11)       # frames 1..10
    assert b.status_counts == {"tracking": 5, "uncertain": 3, "lost": 2}
    assert merge_runs([a, a]).status_counts == {"tracking": 32, "uncertain": 16, "lost": 10}
    (summary,) = summarize([a, b])
    assert summary.lost == pytest.approx(7 / 39) and summary.uncertain == pytest.approx(11 / 39)
    paths = write_reports(tmp_path, [a, b], [summary], "t")
    rows = list(csv.DictReader(paths["per_sequence"].open()))
    assert [r["lost"] for r in rows] == [f"{5 / 29:.2f}", "0.20"] and rows[1]["uncertain"] == "0.30"
    (row,) = csv.DictReader(paths["csv"].open())
    assert row["lost"] == f"{7 / 39:.2f}" and row["uncertain"] == f"{11 / 39:.2f}"


@pytest.mark.parametrize("kind", ["csrt", "kcf"])
def test_opencv_baselines_report_lost_where_the_target_is_gone(tmp_path, kind):
    """From frame 15 on the clip is a flat grey image: nothing to track, and OpenCV's update() says so on each
    of those 15 frames. Before that the easy target is found on all 14 frames."""
    seq = generate_sequence(1000, 120, 160, 30, config=EASY)
    for i in range(15, 30):
        seq.frames[i] = np.full_like(seq.frames[i], 128)
    write_sequence_folder(seq, tmp_path / "vanishing", "png")
    res = run_sequence(OpenCVTracker(kind), find_sequences(tmp_path / "vanishing")[0])
    assert res.status_counts == {"tracking": 14, "lost": 15}


def _small_rts_tracker():
    import torch

    from rts_ros.api import Tracker, TrackerConfig
    from rts_ros.model import build_rts

    torch.manual_seed(0)
    net = build_rts(dict(backbone_type="resnet", backbone_block="basic", backbone_layers=[1, 1, 1, 1],
                         backbone_width=16, out_feature_dim=64, decoder_mdim=16, label_encoder_dims=[8, 16, 32],
                         num_filters=8))
    cfg = TrackerConfig(image_sample_size=(128, 160), box_init="grabcut")
    return Tracker(net, None, device="cpu", config=cfg)


def test_rts_adapter_runs_the_library_tracker_and_scores_masks(synth_dir):
    """Plumbing of the rts path with an untrained small network (scores are meaningless, shapes are not)."""
    pytest.importorskip("rts_ros.api")
    seq = find_sequences(synth_dir)[0]
    res = run_sequence(RTSTracker(tracker=_small_rts_tracker(), init_with_mask=True), seq, max_frames=6)
    assert res.tracked_frames == 6 and len(res.ious) == 5
    assert len(res.j) == 5 and all(0.0 <= v <= 1.0 for v in res.j + res.f)
    assert sum(res.status_counts.values()) == 5 and set(res.status_counts) <= set(STATUSES)
    assert np.isnan(res.init_j), "a start from the annotated mask says nothing about the box-to-mask step"


def test_init_j_scores_the_start_mask_made_from_the_box(synth_dir):
    """Box start: init J is the IoU of the tracker's own start mask (GrabCut here) with the annotation. The
    annotated mask itself scores 1; the filled box scores its fill ratio; GrabCut on these clean clips (flat
    background, one object) must do better than the filled box."""
    seq = find_sequences(synth_dir)[0]
    gt = seq.mask(0)
    x, y, w, h = (int(v) for v in seq.boxes[0])
    filled = np.zeros_like(gt)
    filled[y:y + h, x:x + w] = True

    class FixedStart(Static):
        def __init__(self, start_mask):
            self.start_mask = start_mask

        def start(self, image, box, mask=None):
            super().start(image, box, mask)
            return self.start_mask

    for start_mask, expected in ((gt, 1.0), (filled, gt.sum() / filled.sum())):
        res = run_sequence(FixedStart(start_mask), seq, max_frames=3)
        assert res.init_j == pytest.approx(expected)
    res = run_sequence(RTSTracker(tracker=_small_rts_tracker()), seq, max_frames=3)
    assert res.init_j > gt.sum() / filled.sum()
    (summary,) = summarize([res])
    assert summary.init_j == pytest.approx(res.init_j)


def test_rts_with_the_shipped_model_beats_standing_still(synth_dir):
    """The shipped model must follow a slowly moving target better than a box that never moves (both sequences)."""
    from rts_ros.errors import CheckpointError

    try:
        tracker = RTSTracker(device="cpu")
    except (CheckpointError, FileNotFoundError, ImportError, AttributeError) as exc:
        pytest.skip(f"shipped default model not available yet ({type(exc).__name__}: {exc})")
    for seq in find_sequences(synth_dir):
        rts, static = run_sequence(tracker, seq).auc, run_sequence(Static(), seq).auc
        assert rts > static, f"{seq.name}: rts AUC {rts:.3f} <= static box {static:.3f}"


def test_shifted_starts_move_only_the_start_box_and_pool_into_one_result(synth_dir):
    """start_shift moves the box the tracker starts from, not the annotation; pooled runs score the mean of the
    runs' success curves (same frames in every run)."""
    seq = find_sequences(synth_dir)[0]

    class Spy(Static):
        def start(self, image, box, mask=None):
            self.started_from = np.asarray(box, float)
            super().start(image, box, mask)

    spy = Spy()
    shifted = run_sequence(spy, seq, max_frames=8, start_shift=(1, -1))
    np.testing.assert_array_equal(spy.started_from, seq.boxes[0] + [1, -1, 0, 0])
    plain = run_sequence(Static(), seq, max_frames=8)
    assert shifted.auc != plain.auc   # a static box one pixel off scores differently against the same truth
    pooled = merge_runs([plain, shifted])
    assert pooled.auc == pytest.approx((plain.auc + shifted.auc) / 2)
    assert pooled.tracked_frames == 16 and pooled.sequence == seq.name


def test_start_shifts_option_writes_the_auc_of_every_start(synth_dir, tmp_path, capsys):
    from rts_ros.cli.evaluate import main

    out = tmp_path / "out"
    assert main([str(synth_dir), "--trackers", "csrt", "--out", str(out), "--no-progress", "--max-frames", "10",
                 "--start-shifts", "2"]) == 0
    assert "| csrt | 2 | 60 |" in capsys.readouterr().out   # 2 sequences x 10 frames x 3 starts
    rows = list(csv.DictReader((out / "start_shifts.csv").open()))
    assert [(r["start dx"], r["start dy"]) for r in rows] == [("0", "0"), ("1", "0"), ("0", "1")]
    table = list(csv.DictReader((out / "results.csv").open()))
    mean = np.mean([float(r["success AUC"]) for r in rows])
    assert float(table[0]["success AUC"]) == pytest.approx(mean, abs=1.5e-3)
