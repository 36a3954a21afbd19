"""Textured, deformable sprites for the synthetic video generator and their exact compositing.

A sprite lives on a square local canvas (texture + a shape that may change every frame) and is placed in
the frame by an affine pose (centre, scale, rotation, anisotropy).  Compositing uses the *thresholded*
warped shape as the paste mask, so the returned mask is exactly the set of pixels the sprite covers.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rts_ros.data import synthetic_assets as assets

SHAPE_KINDS = ("ellipse", "polygon", "blob", "silhouette")


@dataclass(frozen=True)
class Pose:
    """Placement of a sprite in one frame (pixels, radians)."""

    cx: float
    cy: float
    scale: float
    angle: float
    aspect: float  # >1 stretches x, shrinks y (area kept): a cheap whole-body deformation


@dataclass
class Sprite:
    """Texture on a size x size canvas and a shape description that ``shape_mask(t)`` rasterises."""

    size: int
    texture: np.ndarray          # size x size x 3 uint8 RGB
    kind: str
    params: np.ndarray           # kind-specific numbers (see make_sprite)
    deform: float                # 0 = rigid shape; ~0.3 = strong non-rigid wobble
    silhouette: np.ndarray | None = None

    def shape_mask(self, t: int) -> np.ndarray:
        """uint8 0/255 shape on the local canvas at frame t (deterministic in t)."""
        s = self.size
        canvas = np.zeros((s, s), np.uint8)
        c = s / 2.0
        if self.kind == "ellipse":
            a, b, w1, w2, p1, p2 = self.params
            ax = a * (1 + self.deform * np.sin(w1 * t + p1))
            by = b * (1 + self.deform * np.sin(w2 * t + p2))
            cv2.ellipse(canvas, (int(c * 16), int(c * 16)), (int(ax * 16), int(by * 16)), 0, 0, 360, 255, -1,
                        lineType=cv2.LINE_8, shift=4)
        elif self.kind == "silhouette":
            canvas = self.silhouette.copy()
        else:
            n = (len(self.params) - 1) // 4
            radius = self.params[0]
            base, amp, freq, phase = (self.params[1 + i * n: 1 + (i + 1) * n] for i in range(4))
            # Radial profile of the base shape, wobbling in time proportionally to `deform`.
            theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
            r = radius * base * (1 + self.deform * amp * np.sin(freq * t + phase))
            pts = np.stack([c + r * np.cos(theta), c + r * np.sin(theta)], axis=1)
            cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
        return canvas


def make_sprite(rng: np.random.Generator, size: int, deform: float, kind: str | None = None,
                texture: np.ndarray | None = None, real_texture_prob: float = 0.5) -> Sprite:
    """A random sprite; ``texture`` forces the texture (look-alike distractors reuse the target's)."""
    kind = kind or str(rng.choice(SHAPE_KINDS))
    sil = None
    if kind == "silhouette":
        shapes = assets.silhouettes()
        if shapes:
            sil = _fit_silhouette(shapes[int(rng.integers(len(shapes)))], size, rng)
        else:
            kind = "blob"
    radius = size * 0.45
    if kind == "ellipse":
        params = np.array([radius, radius * rng.uniform(0.35, 1.0), rng.uniform(0.05, 0.3),
                           rng.uniform(0.05, 0.3), rng.uniform(0, 6.3), rng.uniform(0, 6.3)])
    elif kind == "polygon":
        n = int(rng.integers(3, 9))
        # Irregular polygon: sorted random angles would need resampling; a jittered radius is enough.
        base = rng.uniform(0.55, 1.0, n)
        params = np.concatenate([[radius], base, np.full(n, 0.3), rng.uniform(0.05, 0.25, n),
                                 rng.uniform(0, 6.3, n)])
    else:  # blob: smooth radial profile from a few harmonics
        n = 48
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        prof = np.ones(n)
        for k in range(2, 5):
            prof += rng.uniform(0, 0.25) * np.sin(k * theta + rng.uniform(0, 6.3))
        prof = np.clip(prof / prof.max(), 0.3, 1.0)
        k = rng.integers(1, 4)
        amp = np.sin(k * theta + rng.uniform(0, 6.3))
        params = np.concatenate([[radius], prof, amp, np.full(n, rng.uniform(0.05, 0.25)),
                                 rng.uniform(0, 0.5, n) + theta * k])
    if texture is None:
        texture = None
        if rng.random() < real_texture_prob:
            texture = assets.random_photo_crop(rng, size, size)
        if texture is None:
            texture = assets.procedural_texture(rng, size, size)
    return Sprite(size=size, texture=texture, kind=kind, params=params, deform=deform, silhouette=sil)


def _fit_silhouette(sil: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = sil.shape
    f = 0.9 * size / max(h, w)
    small = cv2.resize(sil, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    small = ((small > 127) * 255).astype(np.uint8)
    if rng.random() < 0.5:
        small = small[:, ::-1]
    canvas = np.zeros((size, size), np.uint8)
    y0, x0 = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    canvas[y0: y0 + small.shape[0], x0: x0 + small.shape[1]] = small
    return canvas


def pose_matrix(sprite_size: int, pose: Pose) -> np.ndarray:
    """2x3 affine map from local canvas pixels to frame pixels."""
    c = sprite_size / 2.0
    sx = pose.scale * np.sqrt(pose.aspect)
    sy = pose.scale / np.sqrt(pose.aspect)
    cos, sin = np.cos(pose.angle), np.sin(pose.angle)
    lin = np.array([[cos * sx, -sin * sy], [sin * sx, cos * sy]])
    trans = np.array([pose.cx, pose.cy]) - lin @ np.array([c, c])
    return np.hstack([lin, trans[:, None]])


def paste(frame: np.ndarray, sprite: Sprite, pose: Pose, t: int,
          texture: np.ndarray | None = None) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Draw the sprite into ``frame`` in place; return (roi x0, y0, x1, y1) and its bool mask, or None."""
    h, w = frame.shape[:2]
    mat = pose_matrix(sprite.size, pose)
    s = sprite.size
    corners = mat @ np.array([[0, s, 0, s], [0, 0, s, s], [1, 1, 1, 1]], dtype=np.float64)
    x0 = max(0, int(np.floor(corners[0].min())))
    y0 = max(0, int(np.floor(corners[1].min())))
    x1 = min(w, int(np.ceil(corners[0].max())) + 1)
    y1 = min(h, int(np.ceil(corners[1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    mat = mat.copy()
    mat[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    shape = cv2.warpAffine(sprite.shape_mask(t), mat, size, flags=cv2.INTER_LINEAR)
    mask = shape > 127
    if not mask.any():
        return None
    tex = cv2.warpAffine(sprite.texture if texture is None else texture, mat, size, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    np.copyto(frame[y0:y1, x0:x1], tex, where=mask[..., None])
    return (x0, y0, x1, y1), mask
