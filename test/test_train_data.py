"""Dataset readers on tiny folders built here, the sequence sampler and the sample processing."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rts_ros.data.datasets import DAVIS, GOT10k, LaSOT, YouTubeVOS, read_index_png
from rts_ros.errors import ConfigError
from rts_ros.train.processing import ProcessingConfig, draw_low_res, inside_major_window, process_set
from rts_ros.train.sampler import choose_frames

H, W = 60, 80


def _frame(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = i * 10
    return img


def _write_palette_png(path: Path, ids: np.ndarray) -> None:
    """Palette PNG written by hand (zlib + chunks), like DAVIS/YouTube-VOS annotations."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    palette = bytes([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0])
    raw = b"".join(b"\x00" + row.astype(np.uint8).tobytes() for row in ids)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", ids.shape[1], ids.shape[0], 8, 3, 0, 0, 0))
           + chunk(b"PLTE", palette) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path.write_bytes(png)


def _ids(i: int) -> np.ndarray:
    ids = np.zeros((H, W), np.uint8)
    ids[10:20, 10 + i:30 + i] = 1
    if i % 2 == 0:
        ids[40:50, 50:60] = 2
    return ids


def test_palette_png_reads_back_indices(tmp_path):
    ids = _ids(3)
    _write_palette_png(tmp_path / "a.png", ids)
    np.testing.assert_array_equal(read_index_png(tmp_path / "a.png"), ids)


def test_lasot_reader(tmp_path):
    seq = tmp_path / "cat" / "cat-1"
    (seq / "img").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(seq / "img" / f"{i + 1:08d}.jpg"), _frame(i))
    (seq / "groundtruth.txt").write_text("\n".join(f"{5 + i},6,20,10" for i in range(4)) + "\n")
    (seq / "full_occlusion.txt").write_text("0,0,1,0")
    (seq / "out_of_view.txt").write_text("0,0,0,1")
    with pytest.raises(ConfigError, match="mask_root"):
        LaSOT(tmp_path)
    ds = LaSOT(tmp_path, box_masks=True)
    assert len(ds) == 1 and ds.sequence_name(0) == "cat-1"
    np.testing.assert_array_equal(ds.visible(0), [True, True, False, False])
    fr = ds.frame(0, 1)
    assert fr.image.shape == (H, W, 3) and fr.mask.sum() == 200
    np.testing.assert_allclose(fr.box, [6, 6, 20, 10])
    # Pre-generated masks are read from mask_root/<seq>/<stem>.png
    (tmp_path / "masks" / "cat-1").mkdir(parents=True)
    m = np.zeros((H, W), np.uint8)
    m[7:9, 8:12] = 255
    cv2.imwrite(str(tmp_path / "masks" / "cat-1" / "00000002.png"), m)
    assert LaSOT(tmp_path, mask_root=tmp_path / "masks").frame(0, 1).mask.sum() == 8


def test_got10k_reader(tmp_path):
    seq = tmp_path / "train" / "GOT-10k_Train_000001"
    seq.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(seq / f"{i + 1:08d}.jpg"), _frame(i))
    (seq / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,4\n1,2,3,4\n")
    (seq / "absence.label").write_text("0\n1\n0\n")
    (seq / "cover.label").write_text("8\n0\n0\n")
    (tmp_path / "train" / "list.txt").write_text("GOT-10k_Train_000001\n")
    ds = GOT10k(tmp_path, box_masks=True)
    np.testing.assert_array_equal(ds.visible(0), [True, False, False])


def test_youtubevos_and_davis_readers(tmp_path):
    yt = tmp_path / "yt" / "train"
    davis = tmp_path / "davis"
    for i in range(3):
        for img_dir, anno_dir in ((yt / "JPEGImages" / "v1", yt / "Annotations" / "v1"),
                                  (davis / "JPEGImages" / "480p" / "s1", davis / "Annotations" / "480p" / "s1")):
            img_dir.mkdir(parents=True, exist_ok=True)
            anno_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(img_dir / f"{i * 5:05d}.jpg"), _frame(i))
            _write_palette_png(anno_dir / f"{i * 5:05d}.png", _ids(i))
    (yt / "meta.json").write_text(json.dumps({"videos": {"v1": {"objects": {"1": {}, "2": {}}}}}))
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "train.txt").write_text("s1\n")
    for ds in (YouTubeVOS(tmp_path / "yt"), DAVIS(davis)):
        assert len(ds) == 2                      # one sequence per object
        np.testing.assert_array_equal(ds.visible(1), [True, False, True])
        fr = ds.frame(0, 1)
        np.testing.assert_allclose(fr.box, [11, 10, 20, 10])
        assert fr.mask.sum() == 200


def test_davis_2016_grey_masks_are_one_object(tmp_path):
    # DAVIS 2016 stores its one object as 0/255 grey PNGs; the 2017 reading (255 = void) found no object.
    davis = tmp_path / "davis16"
    img_dir, anno_dir = davis / "JPEGImages" / "480p" / "bear", davis / "Annotations" / "480p" / "bear"
    img_dir.mkdir(parents=True)
    anno_dir.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(img_dir / f"{i:05d}.jpg"), _frame(i))
        cv2.imwrite(str(anno_dir / f"{i:05d}.png"), (_ids(i) == 1).astype(np.uint8) * 255)
    (davis / "ImageSets" / "2016").mkdir(parents=True)
    (davis / "ImageSets" / "2016" / "train.txt").write_text("bear\n")
    ds = DAVIS(davis, year="2016")
    assert len(ds) == 1
    np.testing.assert_array_equal(ds.visible(0), [True, True, True])
    fr = ds.frame(0, 2)
    np.testing.assert_allclose(fr.box, [12, 10, 20, 10])
    assert fr.mask.sum() == 200 and set(np.unique(fr.mask)) == {0, 1}


def test_choose_frames_rules():
    rng = np.random.default_rng(0)
    assert choose_frames(np.ones(8, bool), rng) is None          # needs > 8 visible frames
    vis = np.ones(40, bool)
    vis[::3] = False
    for _ in range(50):
        train, test = choose_frames(vis, rng, max_gap=10)
        base = train[0]
        assert vis[base] and base < 40 - 3 and list(test) == sorted(test)
        assert all(vis[t] and base < t < base + 10 + 50 for t in test)
        assert np.any(vis[max(0, base - 10 - 50):base])        # the reference's "previous frame" side effect


def test_inside_major_window_stays_inside_when_it_fits():
    x1, y1, w, h = inside_major_window(np.array([5.0, 5.0]), 20 * 20, 5.0, (480, 640), (48, 80))
    assert w / h == pytest.approx(80 / 48, rel=0.02)
    assert (x1, y1) == (0.0, 0.0)
    # a box larger than the image: shrunk until one axis fits exactly
    x1, y1, w, h = inside_major_window(np.array([320.0, 240.0]), 400 * 400, 5.0, (480, 640), (48, 80))
    assert min(w / 640, h / 480) == pytest.approx(1.0, abs=0.01)


def test_process_set_keeps_mask_and_box_consistent():
    img = np.full((120, 160, 3), 90, np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:70, 60:100] = 1
    img[mask > 0] = 200
    cfg = ProcessingConfig(output_hw=(96, 160), max_rotation_deg=0.0, log_scale_range=0.0, brightness_jitter=0.0,
                           grayscale_prob=0.0)
    out = process_set([img], [mask], [np.array([60, 40, 40, 30])], "test", cfg, np.random.default_rng(1))
    assert out.images.shape == (1, 3, 96, 160) and out.masks.shape == (1, 96, 160)
    ys, xs = np.nonzero(out.masks[0])
    x, y, w, h = out.boxes[0]
    # Without rotation the transformed box is the mask's box (within a pixel of resampling).
    assert abs(xs.min() - x) <= 1.5 and abs(ys.min() - y) <= 1.5
    assert abs(xs.max() + 1 - (x + w)) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
    # Bright pixels are the target pixels.
    assert out.images[0, 0][out.masks[0] > 0].mean() > 190
    assert out.labels.shape == (1, 96 // 32 + 1, 160 // 32 + 1)


def _striped_target_sample():
    """A 40x30 target of 1-px black/white stripes on grey: all its detail is at the highest frequency."""
    img = np.full((120, 160, 3), 128, np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:70, 60:100] = 1
    img[40:70, 60:100] = 0
    img[40:70, 60:100:2] = 255
    cfg = ProcessingConfig(output_hw=(96, 160), search_area_factor=3.0, max_rotation_deg=0.0, log_scale_range=0.0,
                           brightness_jitter=0.0, grayscale_prob=0.0, flip_prob=0.0)
    return img, mask, np.array([60, 40, 40, 30]), cfg


def test_low_res_blur_renders_a_small_target_and_leaves_masks_exact():
    img, mask, box, cfg = _striped_target_sample()
    sharp = process_set([img], [mask], [box], "train", cfg, np.random.default_rng(3))
    # The target spans sqrt(40*30) = 34.6 px in the image and about as much in the crop (the crop keeps the scale
    # near 1 here). Rendered as an 8-px target, the 1-px stripes average out to their mean grey.
    small = process_set([img], [mask], [box], "train", cfg, np.random.default_rng(3), low_res_px=8.0)
    same = process_set([img], [mask], [box], "train", cfg, np.random.default_rng(3), low_res_px=500.0)
    inside = sharp.masks[0] > 0
    core = cv2.erode(inside.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert sharp.images[0, 0][core].std() > 60                      # stripes survive the sharp crop
    assert small.images[0, 0][core].std() < 0.25 * sharp.images[0, 0][core].std()
    assert abs(small.images[0, 0][core].mean() - sharp.images[0, 0][core].mean()) < 20
    np.testing.assert_array_equal(small.masks, sharp.masks)        # labels stay exact
    np.testing.assert_array_equal(small.boxes, sharp.boxes)
    np.testing.assert_array_equal(same.images, sharp.images)       # a source larger than the target: unchanged


def test_low_res_draw_is_off_without_touching_the_random_stream():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert draw_low_res(rng_a, ProcessingConfig()) is None
    assert rng_a.random() == rng_b.random()                         # nothing was drawn: old configs reproduce
    cfg = ProcessingConfig(low_res_prob=1.0, low_res_target_px=(12.0, 64.0))
    rng = np.random.default_rng(0)
    draws = np.array([draw_low_res(rng, cfg) for _ in range(2000)])
    assert draws.min() >= 12.0 and draws.max() <= 64.0
    # log-uniform: the median is the geometric mean of the range, sqrt(12 * 64) = 27.7
    assert np.median(draws) == pytest.approx(np.sqrt(12 * 64), rel=0.05)
    half = ProcessingConfig(low_res_prob=0.5)
    rng = np.random.default_rng(1)
    assert 0.45 < np.mean([draw_low_res(rng, half) is not None for _ in range(2000)]) < 0.55


def test_low_res_config_is_validated():
    from rts_ros.train.config import TrainConfig
    assert TrainConfig.from_dict({"low_res_prob": 0.5, "low_res_target_px": [10, 40]}).processing().low_res_prob == 0.5
    for bad in ({"low_res_prob": 1.5}, {"low_res_target_px": [40, 10]}, {"low_res_target_px": [0, 10]},
                {"low_res_target_px": [5, 10, 20]}):
        with pytest.raises(ConfigError, match="low_res"):
            TrainConfig.from_dict(bad)


def test_synthetic_clips_size_scale_makes_targets_larger():
    """size_scale multiplies the sprite size range: the same clips' targets grow by about that factor (less where
    the frame border cuts them), and a scale outside [0.25, 4] is refused."""
    from rts_ros.data.datasets_synthetic import SyntheticClips

    def median_side(ds, seq):
        b = np.array([ds.frame(seq, i).box for i in range(0, 12, 3)])
        return np.nanmedian(np.sqrt(b[:, 2] * b[:, 3]))

    plain = SyntheticClips(num_frames=12, difficulty_min=0.1, difficulty_max=0.6)
    large = SyntheticClips(num_frames=12, difficulty_min=0.1, difficulty_max=0.6, size_scale=2.5)
    ratios = [median_side(large, s) / median_side(plain, s) for s in range(4)]
    assert 1.6 < np.mean(ratios) <= 2.6 and min(ratios) > 1.3
    assert large.sequence_name(3) == plain.sequence_name(3)
    for bad in (0.1, 5.0):
        with pytest.raises(ConfigError, match="size_scale"):
            SyntheticClips(size_scale=bad)


def test_training_samples_blur_every_frame_of_a_sample_when_asked():
    """The config option reaches the samples: with the blur always on and a 6-px source, the crops lose their
    fine detail (mean absolute horizontal gradient) in train and test frames alike."""
    from rts_ros.train.config import TrainConfig
    from rts_ros.train.samples import TrainingSamples
    from rts_ros.train.trainer import build_datasets

    def detail(low_res_prob: float) -> dict[str, float]:
        cfg = TrainConfig.from_dict({
            "datasets": [{"kind": "synthetic", "kwargs": {"height": 120, "width": 160, "num_frames": 12}}],
            "crop_hw": [96, 160], "search_area_factor": 3.0, "low_res_prob": low_res_prob,
            "low_res_target_px": [6.0, 6.0]})
        datasets, weights = build_datasets(cfg)
        samples = TrainingSamples(datasets, weights, 6, seed=2, processing=cfg.processing(16), num_test=2)
        grads = {"train": [], "test": []}
        for i in range(len(samples)):
            s = samples[i]
            for mode in grads:
                grads[mode].append(np.abs(np.diff(s[f"{mode}_images"], axis=-1)).mean())
        return {mode: float(np.mean(v)) for mode, v in grads.items()}

    sharp, blurred = detail(0.0), detail(1.0)
    assert blurred["train"] < 0.6 * sharp["train"] and blurred["test"] < 0.6 * sharp["test"]
