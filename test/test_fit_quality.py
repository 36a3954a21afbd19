"""rts-fit-quality end to end on real photos: two annotated sequences of one moving target, one annotated where
the target is (every box right) and one annotated on an empty spot (every box wrong). The counts check that the
signals are paired with the right frames (annotation gaps and a late start included); --write stores a model
that --check and the tracker then use."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rts_ros.testing import REPO_ROOT, PhotoScene, without_root_file_access  # noqa: E402

N = 14


def run(*args, prefix=()):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([*prefix, sys.executable, "-m", "rts_ros.cli.fit_quality", *map(str, args),
                           "--no-progress"], capture_output=True, text=True, timeout=900, env=env, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    try:
        scene = PhotoScene(40)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("seqs")
    for name in ("right", "wrong"):
        d = root / name
        d.mkdir()
        lines = []
        for i in range(N):
            x = 100 + 3 * i
            cv2.imwrite(str(d / f"{i:04d}.jpg"), scene.frame((x, 100)), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if name == "right":
                # frame 0 unannotated (the run starts at frame 1), frames 5 and 6 unannotated
                lines.append("nan,nan,nan,nan" if i in (0, 5, 6) else f"{x},100,40,40")
            else:
                lines.append(f"{x},100,40,40" if i == 0 else "260,10,40,40")   # a spot the target never visits
        (d / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return root


def test_fit_write_and_check(tmp_path, data):
    weights = tmp_path / "w"
    shutil.copytree(REPO_ROOT / "weights" / "default", weights)
    meta = json.loads((weights / "rts.json").read_text())
    del meta["quality"]
    (weights / "rts.json").write_text(json.dumps(meta))

    r = run(data, "--weights", weights, "--check")
    assert r.returncode == 2 and "no quality model to check" in r.stderr

    r = run(data, "--weights", weights, "--write")
    assert r.returncode == 0, r.stderr
    # right: frames 2..13 minus the gaps 5, 6 = 10 scored frames; wrong: frames 1..13 = 13
    assert f"frames {10 + 13}: right (IoU >= 0.5) 10, wrong (IoU < 0.1) 13" in r.stdout, r.stdout
    stored = json.loads((weights / "rts.json").read_text())["quality"]
    assert stored["record"]["frames"] == 23 and stored["record"]["data"] == [data.name]
    assert set(meta) <= set(json.loads((weights / "rts.json").read_text()))   # nothing else lost

    r = run(data / "right", "--weights", weights, "--check")
    assert r.returncode == 0, r.stderr
    assert "frames 10: right (IoU >= 0.5) 10, wrong (IoU < 0.1) 0" in r.stdout

    from rts_ros.api import Tracker

    assert Tracker.from_weights(weights, device="cpu").quality_model is not None


def test_signals_are_paired_with_the_frames_they_were_computed_on(data):
    """collect() against a hand-run tracker on the sequence with a late start and a gap in its annotation."""
    from rts_ros.api import Tracker
    from rts_ros.data.eval_folders import find_sequences
    from rts_ros.eval.quality_fit import collect

    seq = find_sequences(data / "right")[0]
    rows = collect(Tracker.from_weights(REPO_ROOT / "weights" / "default", device="cpu"), [seq])
    t = Tracker.from_weights(REPO_ROOT / "weights" / "default", device="cpu")
    t.initialize(seq.image(1), box=tuple(seq.boxes[1]))
    want, quality = [], []
    for i in range(2, N):
        r = t.track(seq.image(i))
        if i not in (5, 6):
            want.append(t.last_info.quality_features)
            quality.append(r.quality)
    np.testing.assert_array_equal(rows.features, np.array(want))
    np.testing.assert_allclose(rows.quality, quality)
    assert rows.sequence == [seq.name] * len(want)


def test_every_option_has_a_help_text():
    from rts_ros.cli.fit_quality import build_parser

    parser = build_parser()
    assert all(a.help for a in parser._actions), [a.dest for a in parser._actions if not a.help]


def test_one_class_data_and_a_read_only_weights_folder_are_one_line_errors(tmp_path, data):
    # every box right: nothing to tell right from wrong with
    r = run(data / "right", "--weights", REPO_ROOT / "weights" / "default")
    assert r.returncode == 2 and r.stderr.strip().startswith("rts-fit-quality: error: cannot fit a quality model"), \
        r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "both succeeds and fails" in r.stderr
    # --write into a folder that cannot be written: said before the fit (which would fail as above)
    prefix = without_root_file_access()
    weights = tmp_path / "w"
    shutil.copytree(REPO_ROOT / "weights" / "default", weights)
    weights.chmod(0o555)
    try:
        r = run(data / "right", "--weights", weights, "--write", prefix=prefix)
    finally:
        weights.chmod(0o755)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"the weights folder {weights} is not writable" in r.stderr
