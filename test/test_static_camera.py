"""Training sequences from static-camera video (rts_ros.data.static_camera, rts-label-static).

A generated fixed-camera video with known masks checks the labels from first principles (two movers, a cast
shadow, a reflection in place, a crossing); opencv-doc's vtest.avi checks that real pedestrians come out.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rts_ros.cli import label_static
from rts_ros.data.datasets import DAVIS
from rts_ros.data.synthetic_assets import OPENCV_DOC_DATA
from rts_ros.data.static_camera import (CameraMovesError, StaticCameraParams, background_shift, foreground_masks,
                                        link_tracks, write_davis_folder)

H, W, N = 240, 320, 100
M = 56                      # frames with movers; the rest shows the empty scene
RADII = (14, 9)             # mover A is larger than mover B
VTEST = OPENCV_DOC_DATA / "vtest.avi"


def _centres(t: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Mover A goes right along y=80, mover B left along y=92: they touch from t=26 and part after t=30.
    Fast enough that each pixel shows a mover in only ~6% of the frames (MOG2 keeps colours seen in more
    than 10% of the frames as background)."""
    return (20 + 5 * t, 80), (300 - 5 * t, 92)


def _disc(c, r) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= r * r


def _shadow(c, r) -> np.ndarray:
    """A cast shadow on the ground, attached below the disc: the background darkened, not covered."""
    yy, xx = np.mgrid[:H, :W]
    return ((xx - c[0]) ** 2 / (r * r) + (yy - c[1] - 1.3 * r) ** 2 / (0.5 * r) ** 2 <= 1) & ~_disc(c, r)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (H, W, 3)).astype(np.uint8), (0, 0), 3)
    bg = cv2.normalize(bg, None, 70, 190, cv2.NORM_MINMAX)
    path = tmp_path_factory.mktemp("static") / "fixed_camera.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (W, H))
    assert out.isOpened()
    for t in range(N):
        f = bg.copy()
        for c, r, colour in zip(_centres(t) if t < M else (), RADII, ((230, 40, 40), (40, 40, 230))):
            sh = _shadow(c, r)
            f[sh] = (f[sh] * 0.65).astype(np.uint8)
            f[_disc(c, r)] = colour
        if 60 <= t < 72:                            # a reflection: foreground for 12 frames, but it never travels
            f[200:220, 20:44] = 255
        out.write(f)
    out.release()
    return path


def test_movers_become_tracks_with_their_masks_without_shadow_or_reflection(video):
    p = StaticCameraParams(min_area=100, min_length=8)
    tracks = link_tracks(foreground_masks(video, p), p)
    assert tracks, "no track found"
    for tr in tracks:
        x0, y0, x1, y1 = tr.boxes[0]
        assert not (x0 < 44 and x1 > 20 and y0 < 220 and y1 > 200), "the reflection that never moves became a track"
    # before the crossing, each mover is one track whose masks match the drawn disc (shadow left out)
    for k in range(2):
        c10 = _centres(10)[k]
        found = [tr for tr in tracks if 10 in tr.frames and _disc(c10, RADII[k])[tr.mask(10, (H, W))].mean() > 0.5]
        assert len(found) == 1, f"mover {k}: {len(found)} tracks at frame 10"
        tr = found[0]
        for t in tr.frames:
            if t >= 24:                              # the discs begin to touch at t=26
                break
            m, d, sh = tr.mask(t, (H, W)), _disc(_centres(t)[k], RADII[k]), _shadow(_centres(t)[k], RADII[k])
            iou = (m & d).sum() / (m | d).sum()
            assert iou > 0.8, f"mover {k} frame {t}: mask IoU {iou:.2f}"
            assert (m & sh).sum() < 0.15 * sh.sum(), f"mover {k} frame {t}: the cast shadow is in the mask"
    # where the movers merge the tracks end: no mask holds much of both discs at once (the large track
    # must not swallow the small mover)
    for tr in tracks:
        for t in tr.frames:
            if t >= M:
                break
            m = tr.mask(t, (H, W))
            shares = [_disc(c, r)[m].sum() / _disc(c, r).sum() for c, r in zip(_centres(t), RADII)]
            assert min(shares) < 0.3, f"a track spans both movers at frame {t}"


def test_davis_folder_reads_back_as_the_tracks(video, tmp_path):
    p = StaticCameraParams(min_area=100, min_length=8)
    tracks = link_tracks(foreground_masks(video, p), p)
    names = write_davis_folder(video, tracks, tmp_path, "cam")
    ds = DAVIS(tmp_path)
    assert [ds.sequence_name(i) for i in range(len(ds))] == [f"{n}_1" for n in names]
    for i, tr in enumerate(tracks):
        assert ds.visible(i).all() and len(ds.visible(i)) == tr.length
        for j in (0, tr.length - 1):
            f = ds.frame(i, j)
            np.testing.assert_array_equal(f.mask.astype(bool), tr.mask(tr.start + j, (H, W)))
    # a second run replaces the first: no stale frames or sequences; a video whose name starts with this
    # one's ('cam_2') keeps its sequences
    write_davis_folder(video, tracks[:2], tmp_path, "cam_2")
    write_davis_folder(video, tracks[:1], tmp_path, "cam")
    ds = DAVIS(tmp_path)
    assert sorted(ds.sequence_name(i) for i in range(len(ds))) == ["cam_0000_1", "cam_2_0000_1", "cam_2_0001_1"]
    assert len(list((tmp_path / "Annotations" / "480p").iterdir())) == 3
    # no tracks: nothing written
    assert write_davis_folder(video, [], tmp_path / "empty", "none") == []


def test_real_pedestrians_of_vtest(tmp_path, capsys):
    if not VTEST.is_file():
        pytest.skip(f"{VTEST} not installed (Debian package opencv-doc)")
    rc = label_static.main([str(VTEST), str(tmp_path), "--max-frames", "300", "--no-progress"])
    assert rc == 0
    assert "warning" not in capsys.readouterr().err          # a fixed camera: no camera-motion warning
    sheet = cv2.imread(str(tmp_path / "previews" / "vtest.jpg"))
    assert sheet is not None and sheet.shape[1] == 6 * 240   # the preview sheet, six tiles a row
    ds = DAVIS(tmp_path)
    assert len(ds) >= 15, f"only {len(ds)} pedestrian tracks in the first 300 frames of vtest.avi"
    tall = 0
    for i in range(0, len(ds), max(len(ds) // 10, 1)):
        f = ds.frame(i, 0)
        x, y, w, h = f.box
        tall += h > w                                 # people standing upright
        assert 150 <= f.mask.sum() <= 0.05 * f.mask.size
    assert tall >= 7


def test_cli_refuses_a_missing_video(tmp_path, capsys):
    assert label_static.main([str(tmp_path / "none.avi"), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "cannot open video" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    assert label_static.main([str(tmp_path / "a.avi"), str(tmp_path / "b" / "a.avi"), str(tmp_path / "out")]) == 2
    assert "share a file name" in capsys.readouterr().err


def test_cli_refuses_a_file_as_out_dir_before_processing(video, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert label_static.main([str(video), str(tmp_path / "afile"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rts-label-static: error: output folder {tmp_path / 'afile'} is a file, not a folder; "
                   "choose another path"]


def _textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A scene with corners (rectangles of random colours), so that features can be matched."""
    img = np.full((h, w, 3), 128, np.uint8)
    for _ in range(250):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 30)), y + int(rng.integers(4, 30))),
                      tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return img


def test_background_shift_measures_a_known_translation():
    rng = np.random.default_rng(1)
    scene = cv2.cvtColor(_textured(rng, 200, 400), cv2.COLOR_BGR2GRAY)
    still = [scene[:, 40:360]] * 16
    shift, by_features = background_shift(still)
    assert by_features and shift < 0.5
    # the last quarter looks 24 px further right: first against last quarter moves by 24
    panned = [scene[:, 40:360]] * 12 + [scene[:, 64:384]] * 4
    shift, by_features = background_shift(panned, scale=2.0)
    assert by_features and abs(shift - 2 * 24) < 2


def test_a_moving_camera_is_reported_and_left_out_on_request(video, tmp_path, capsys):
    rng = np.random.default_rng(2)
    scene = _textured(rng, H, W + 80)
    path = tmp_path / "panning.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (W, H))
    for t in range(80):                         # the camera pans by 1 px per frame
        out.write(np.ascontiguousarray(scene[:, t:t + W]))
    out.release()
    with pytest.raises(CameraMovesError, match="moves by"):
        list(foreground_masks(path, StaticCameraParams(max_camera_shift=4.0)))
    # by default only a warning; with --max-camera-shift the video is left out, the others still written,
    # and the earlier run's sequences of the left-out video removed
    assert label_static.main([str(path), str(video), str(tmp_path / "out"), "--no-progress", "--min-area", "100",
                              "--min-length", "8"]) == 0
    assert "panning.avi: the background seems to move" in capsys.readouterr().err
    assert any(d.name.startswith("panning_") for d in (tmp_path / "out" / "JPEGImages" / "480p").iterdir())
    assert label_static.main([str(path), str(video), str(tmp_path / "out"), "--no-progress", "--min-area", "100",
                              "--min-length", "8", "--max-camera-shift", "4"]) == 1
    err = capsys.readouterr().err
    assert "skipped" in err and "left out: panning.avi" in err
    names = [d.name for d in (tmp_path / "out" / "JPEGImages" / "480p").iterdir()]
    assert names and all(n.startswith("fixed_camera_") for n in names)
    assert not (tmp_path / "out" / "previews" / "panning.jpg").exists()
