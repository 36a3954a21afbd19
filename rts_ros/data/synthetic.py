"""Deterministic synthetic tracking videos with exact masks (training clips, tests, demos).

One target sprite (textured ellipse/polygon/blob/silhouette, procedural or photo texture) moves, scales,
rotates and deforms over a panning photo or procedural background, with look-alike distractors (same
texture and shape family), occluders that cross its path, lighting drift and optional exits from the frame.

Everything is drawn from ``numpy.random.SeedSequence(seed)``: one independent stream per component
(background, target, distractors, occluders, camera), so turning occluders off leaves the target,
background and distractors pixel-identical -- the tests rely on that.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import cv2
import numpy as np

from rts_ros.data import synthetic_assets as assets
from rts_ros.data.synthetic_motion import crossing_path, smooth_signal, waypoint_path
from rts_ros.data.synthetic_sprites import Pose, Sprite, make_sprite, paste
from rts_ros.errors import ConfigError, InvalidInputError


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the generator; ``from_difficulty`` maps one number in [0, 1] to all of them."""

    size_range: tuple[float, float] = (0.2, 0.4)   # sprite canvas side / min(H, W)
    max_speed: float = 0.03                         # px per frame / min(H, W)
    scale_amp: float = 0.3                          # log-scale amplitude
    rotation_amp: float = 0.8                       # radians
    aspect_amp: float = 0.2                         # log-aspect amplitude (whole-body stretch)
    deform: float = 0.15                            # shape wobble (0 = rigid)
    num_distractors: int = 1
    num_occluders: int = 1
    distractor_above_prob: float = 0.3              # a distractor passing in front occludes the target
    exit_prob: float = 0.15                         # chance that the target leaves and re-enters
    camera_pan: float = 0.05                        # background pan amplitude / min(H, W)
    lighting_amp: float = 0.12                      # global gain amplitude
    real_background_prob: float = 0.7
    real_texture_prob: float = 0.5

    @classmethod
    def from_difficulty(cls, difficulty: float, **overrides) -> "SynthConfig":
        d = float(difficulty)
        if not 0.0 <= d <= 1.0:
            raise ConfigError(f"difficulty must be within [0, 1], got {difficulty!r}")
        base = cls(
            size_range=(0.28 - 0.12 * d, 0.45 - 0.15 * d), max_speed=0.01 + 0.04 * d,
            scale_amp=0.1 + 0.4 * d, rotation_amp=0.2 + 1.3 * d, aspect_amp=0.05 + 0.3 * d,
            deform=0.05 + 0.25 * d, num_distractors=int(round(3 * d)), num_occluders=int(round(2 * d)),
            distractor_above_prob=0.4 * d, exit_prob=0.3 * d, camera_pan=0.02 + 0.08 * d,
            lighting_amp=0.25 * d,
        )
        try:
            return dataclasses.replace(base, **overrides)
        except TypeError as exc:
            raise ConfigError(f"unknown SynthConfig field in {sorted(overrides)}: {exc}") from None


@dataclass
class Sequence:
    """A generated video.  ``boxes`` are tight x, y, w, h of ``masks`` (NaN rows where not visible)."""

    frames: list[np.ndarray]        # H x W x 3 uint8 RGB
    masks: list[np.ndarray]         # H x W uint8, 0/255, visible target pixels only
    boxes: np.ndarray               # (N, 4) float64
    visible: list[bool]             # mask non-empty
    occlusion: np.ndarray           # (N,) fraction of the in-frame target hidden by other sprites
    seed: int = 0
    config: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class _Actor:
    sprite: Sprite
    poses: list[Pose]
    above: bool                     # drawn over the target


def generate_sequence(seed: int, height: int = 240, width: int = 320, num_frames: int = 50,
                      difficulty: float = 0.5, config: SynthConfig | None = None) -> Sequence:
    """Generate one video; identical arguments give identical pixels (on the same photo set)."""
    if height < 32 or width < 32 or num_frames < 1:
        raise InvalidInputError(f"need height, width >= 32 and num_frames >= 1; got {height}x{width}, "
                                f"{num_frames} frames")
    cfg = config or SynthConfig.from_difficulty(difficulty)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)]
    rng_bg, rng_tgt, rng_dis, rng_occ, rng_cam = streams
    n, short = num_frames, min(height, width)

    pad = int(round(cfg.camera_pan * short))
    background = _background(rng_bg, height + 2 * pad, width + 2 * pad, cfg)
    cam = np.stack([smooth_signal(rng_cam, n, pad), smooth_signal(rng_cam, n, pad)], 1) + pad
    cam = np.clip(np.round(cam), 0, 2 * pad).astype(int)
    gain = 1.0 + smooth_signal(rng_cam, n, cfg.lighting_amp)

    target = _make_target(rng_tgt, n, height, width, cfg)
    radius = _radius(target)
    distractors = [_make_distractor(rng_dis, n, height, width, cfg, target, radius) for _ in range(cfg.num_distractors)]
    occluders = [_make_occluder(rng_occ, n, cfg, target, radius) for _ in range(cfg.num_occluders if n >= 2 else 0)]
    below = [a for a in distractors if not a.above]
    above = [a for a in distractors if a.above] + occluders

    frames, masks, visible = [], [], []
    boxes = np.full((n, 4), np.nan)
    occlusion = np.zeros(n)
    for t in range(n):
        oy, ox = cam[t, 1], cam[t, 0]
        frame = background[oy: oy + height, ox: ox + width].copy()
        for actor in below:
            paste(frame, actor.sprite, actor.poses[t], t)
        mask = np.zeros((height, width), np.uint8)
        drawn = paste(frame, target.sprite, target.poses[t], t)
        if drawn is not None:
            (x0, y0, x1, y1), m = drawn
            mask[y0:y1, x0:x1][m] = 255
        amodal = int(np.count_nonzero(mask))
        for actor in above:
            cover = paste(frame, actor.sprite, actor.poses[t], t)
            if cover is not None and amodal:
                (x0, y0, x1, y1), m = cover
                mask[y0:y1, x0:x1][m] = 0
        if gain[t] != 1.0:
            frame = cv2.convertScaleAbs(frame, alpha=float(gain[t]))
        area = int(np.count_nonzero(mask))
        if area:
            boxes[t] = cv2.boundingRect(mask)
        if amodal:
            occlusion[t] = 1.0 - area / amodal
        frames.append(frame)
        masks.append(mask)
        visible.append(area > 0)
    return Sequence(frames, masks, boxes, visible, occlusion, int(seed), cfg)


def _background(rng: np.random.Generator, h: int, w: int, cfg: SynthConfig) -> np.ndarray:
    img = assets.random_photo_crop(rng, h, w) if rng.random() < cfg.real_background_prob else None
    return img if img is not None else assets.procedural_background(rng, h, w)


def _poses(rng: np.random.Generator, centres: np.ndarray, cfg: SynthConfig, scale0: float = 1.0) -> list[Pose]:
    n = len(centres)
    scale = scale0 * np.exp(smooth_signal(rng, n, cfg.scale_amp))
    angle = rng.uniform(-0.3, 0.3) + smooth_signal(rng, n, cfg.rotation_amp)
    aspect = np.exp(smooth_signal(rng, n, cfg.aspect_amp))
    return [Pose(float(c[0]), float(c[1]), float(s), float(a), float(r))
            for c, s, a, r in zip(centres, scale, angle, aspect)]


def _radius(actor: _Actor) -> float:
    return 0.45 * actor.sprite.size


def _make_target(rng: np.random.Generator, n: int, h: int, w: int, cfg: SynthConfig) -> _Actor:
    short = min(h, w)
    size = max(12, int(round(rng.uniform(*cfg.size_range) * short)))
    sprite = make_sprite(rng, size, cfg.deform, real_texture_prob=cfg.real_texture_prob)
    r = 0.45 * size
    # Stay-inside box for the centre; the start is central so frame 0 shows the whole target.
    box = (min(r, w / 2), min(r, h / 2), max(w - r, w / 2), max(h - r, h / 2))
    start = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h])
    speed = cfg.max_speed * short
    exit_plan = None
    if n >= 12 and rng.random() < cfg.exit_prob:
        t_leave = int(rng.integers(n // 4, n // 2))
        t_back = t_leave + int(rng.integers(max(2, n // 6), max(3, n // 3)))
        # The centre box already keeps r inside; the sprite's largest extent is r * exp(scale + aspect/2).
        margin = 2.2 * r * np.exp(cfg.scale_amp + cfg.aspect_amp / 2) + 2 * speed
        exit_plan = (t_leave, t_back, margin)
    centres = waypoint_path(rng, n, start, box, speed, exit_plan)
    return _Actor(sprite, _poses(rng, centres, cfg), above=False)


def _make_distractor(rng: np.random.Generator, n: int, h: int, w: int, cfg: SynthConfig,
                     target: _Actor, radius: float) -> _Actor:
    size = max(12, int(round(target.sprite.size * rng.uniform(0.8, 1.2))))
    tex = cv2.resize(target.sprite.texture, (size, size), interpolation=cv2.INTER_LINEAR)
    tex = cv2.convertScaleAbs(tex, alpha=rng.uniform(0.85, 1.15))  # look-alike, not a clone
    sprite = make_sprite(rng, size, cfg.deform, kind=target.sprite.kind, texture=tex)
    if target.sprite.silhouette is not None:
        sprite.silhouette = cv2.resize(target.sprite.silhouette, (size, size), interpolation=cv2.INTER_NEAREST)
    above = bool(rng.random() < cfg.distractor_above_prob)
    r = 0.45 * size
    box = (min(r, w / 2), min(r, h / 2), max(w - r, w / 2), max(h - r, h / 2))
    # Start away from the target so that frame 0 shows it unoccluded and unambiguous.
    t0 = np.array([target.poses[0].cx, target.poses[0].cy])
    start = t0
    for _ in range(20):
        start = np.array([rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])])
        if np.linalg.norm(start - t0) > 1.6 * (radius + r) * (1 + cfg.scale_amp):
            break
    centres = waypoint_path(rng, n, start, box, cfg.max_speed * min(h, w))
    return _Actor(sprite, _poses(rng, centres, cfg), above)


def _make_occluder(rng: np.random.Generator, n: int, cfg: SynthConfig, target: _Actor, radius: float) -> _Actor:
    size = max(12, int(round(target.sprite.size * rng.uniform(0.7, 1.4))))
    sprite = make_sprite(rng, size, cfg.deform * 0.5, real_texture_prob=cfg.real_texture_prob)
    t_cross = int(rng.integers(max(1, n // 5), n))  # n >= 2 (checked by the caller)
    through = np.array([target.poses[t_cross].cx, target.poses[t_cross].cy])
    clearance = 1.3 * (radius + 0.45 * size) * (1 + cfg.scale_amp) ** 2
    speed = max(1.0, clearance / max(t_cross, 1))
    start0 = np.array([target.poses[0].cx, target.poses[0].cy])
    centres = crossing_path(rng, n, through, t_cross, speed)
    for _ in range(10):  # never cover the target at frame 0 (that is the initialisation frame)
        if np.linalg.norm(centres[0] - start0) > clearance:
            break
        centres = crossing_path(rng, n, through, t_cross, speed)
    return _Actor(sprite, _poses(rng, centres, cfg), above=True)
