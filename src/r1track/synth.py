"""Synthetic tracking benchmark in the GOT-10k layout, with exact ground truth.

Each sequence shows one target (a shaded geometric shape of a named colour) moving over a textured
background, with look-alike distractors behind it and occluders passing in front of it. Everything is
rendered with OpenCV from a plan drawn from ``numpy.random.Generator``s seeded by (seed, split, index),
so a sequence never depends on how many others are generated and the same seed gives the same bytes.

Label definitions (all derived from the rendered masks, so they are exact for the written frames):

- A shape is drawn anti-aliased; its *mask* is the set of pixels with coverage >= 128/255 (about half
  the pixel inside the outline). The *full* mask is rendered on a canvas around the whole (unclipped)
  shape, so it also counts pixels that fall outside the image.
- ``groundtruth.txt``: the tight box of the target's full (amodal) mask clipped to the image, in
  continuous pixels: x = min column, w = max column - min column + 1 (same for y/h). Occluders do not
  shrink it.
- visible fraction = (mask pixels inside the image and not under an occluder's mask) / (full mask
  pixels); ``cover.label`` bins it as GOT-10k does: 0 -> 0, (0,15%] -> 1, (15,30%] -> 2, ...,
  (75,90%] -> 6, (90,100%) -> 7, 100% -> 8. ``absence.label`` is 1 exactly where cover is 0.
- ``cut_by_image.label`` is 1 where part of the full mask lies outside the image.
- For the ``test`` split, ``groundtruth.txt`` holds the first line only (as in GOT-10k test) and the
  sequence folders hold no per-frame labels; the full truth is written beside the split as
  ``DIR/test_groundtruth/<seq>.txt`` (all boxes) and ``<seq>_cover.label``, ``<seq>_absence.label``,
  ``<seq>_cut_by_image.label``, so test runs can still be scored.

Distractors are drawn behind the target (they never change its cover); occluders in front of it.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from r1track.atomic import atomic_write_bytes, atomic_write_text
from r1track.errors import R1TrackError

SPLITS = ("train", "val", "test")
# Deliberately not multiples of 28 (the Qwen-VL patch grid), so resizing paths get exercised.
FRAME_SIZES = ((320, 240), (360, 270), (400, 300), (480, 360), (416, 234))
COLOURS = {
    "red": (220, 35, 35),
    "green": (40, 180, 60),
    "blue": (40, 80, 225),
    "yellow": (240, 220, 40),
    "orange": (250, 140, 20),
    "purple": (140, 50, 190),
    "cyan": (40, 210, 220),
    "white": (245, 245, 245),
    "pink": (250, 125, 185),
}
# Occluders use neutral tones no target can have, so they never look like the target.
OCCLUDER_COLOURS = ((105, 105, 105), (95, 75, 55), (60, 62, 72), (140, 128, 108), (70, 85, 60))
MOTIONS = ("linear", "bounce", "sinusoidal", "random_walk", "zoom")
# size class of the target's frame-0 box: sqrt(w*h / (W*H)) below 0.12 small, below 0.22 medium.
SIZE_LIMITS = (("small", 0.12), ("medium", 0.22), ("large", np.inf))
SIZE_SAMPLING = {"small": (0.06, 0.105), "medium": (0.135, 0.2), "large": (0.24, 0.3)}
JPEG_QUALITY = 90
MASK_LEVEL = 128  # anti-aliased coverage at or above which a pixel belongs to a shape's mask
SHIFT = 4  # fractional bits for cv2.fillPoly: sub-pixel vertex positions
PAN = 16  # background margin (pixels) the camera may pan over


# ---------------------------------------------------------------- shapes


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(a), np.sin(a)], axis=1) * radius


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    a = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    return np.stack([np.cos(a) * radii, np.sin(a) * radii], axis=1)


def _cross(arm: float = 0.33) -> np.ndarray:
    a = arm
    return np.array(
        [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)],
        float,
    )


def _centred(poly: np.ndarray) -> np.ndarray:
    """Centre a unit polygon on its bounding box, so half extents are symmetric."""
    return poly - (poly.max(0) + poly.min(0)) / 2


# Unit polygons (y points down, as in images); circles and ellipses are fine polygons.
SHAPES = {
    name: _centred(poly)
    for name, poly in {
        "circle": _regular(48),
        "ellipse": _regular(48) * (1.0, 0.6),
        "square": np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], float),
        "triangle": _regular(3),
        "diamond": np.array([(0, -1), (0.65, 0), (0, 1), (-0.65, 0)], float),
        "star": _star(),
        "cross": _cross(),
        "hexagon": _regular(6, phase=0.0),
        "pentagon": _regular(5),
    }.items()
}


def shape_polygon(shape: str, centre, half, angle: float) -> np.ndarray:
    """Vertices (K, 2) of ``shape`` scaled by ``half`` (x, y), rotated by ``angle``, at ``centre``."""
    p = SHAPES[shape] * np.asarray(half, float)
    c, s = np.cos(angle), np.sin(angle)
    return p @ np.array([[c, s], [-s, c]]) + np.asarray(centre, float)


def _half_extents(shape: str, half: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Half width/height (T, 2) of the shape's bounding box for per-frame ``half`` (T, 2), ``angle`` (T,)."""
    p = SHAPES[shape][None] * half[:, None, :]
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = p[..., 0] * c - p[..., 1] * s
    y = p[..., 0] * s + p[..., 1] * c
    return np.stack([np.abs(x).max(1), np.abs(y).max(1)], axis=1)


@dataclass
class Raster:
    """A shape rasterised on a local canvas whose top-left pixel is (x0, y0) in frame pixels."""

    alpha: np.ndarray  # (h, w) uint8 anti-aliased coverage
    x0: int
    y0: int

    @property
    def mask(self) -> np.ndarray:
        return self.alpha >= MASK_LEVEL


def rasterise(poly: np.ndarray) -> Raster:
    """Anti-aliased fill of a polygon given in continuous pixel coordinates (pixel i spans [i, i+1))."""
    x0, y0 = np.floor(poly.min(0)).astype(int) - 1
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # OpenCV puts pixel centres on integers; ours are at i + 0.5.
    pts = np.rint((poly - (x0 + 0.5, y0 + 0.5)) * (1 << SHIFT)).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=SHIFT)
    return Raster(canvas, int(x0), int(y0))


# ---------------------------------------------------------------- backgrounds


def _muted(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """Desaturated colours, so the named target colours stand out from the scenery."""
    grey = rng.uniform(60, 190, size=(n, 1))
    return (0.5 * rng.uniform(30, 225, size=(n, 3)) + 0.5 * grey).astype(np.float32)


def _texture_noise(rng: np.random.Generator, w: int, h: int, cells: int, amplitude: float) -> np.ndarray:
    """Smooth noise that mostly changes brightness, with a little colour (keeps the scenery muted)."""
    return amplitude * (_smooth_noise(rng, w, h, cells, 1) + 0.35 * _smooth_noise(rng, w, h, cells))


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int, channels: int = 3) -> np.ndarray:
    """Zero-mean smooth noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    gw = max(2, cells)
    gh = max(2, round(cells * h / w))
    grid = rng.uniform(-1, 1, size=(gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A textured (never flat) RGB float32 background: noise, gradient, stripes, blobs or tiles."""
    kind = rng.choice(("noise", "gradient", "stripes", "blobs", "tiles"))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1, c2 = _muted(rng, 2)
    if kind == "noise":
        img = c1 + _texture_noise(rng, w, h, int(rng.integers(3, 7)), 55)
    elif kind == "gradient":
        a = rng.uniform(0, 2 * np.pi)
        proj = xx * np.cos(a) + yy * np.sin(a)
        t = ((proj - proj.min()) / np.ptp(proj))[..., None]
        img = c1 * (1 - t) + c2 * t
    elif kind == "stripes":
        a, period = rng.uniform(0, np.pi), rng.uniform(14, 60)
        t = (0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period))[..., None]
        img = c1 * (1 - t) + c2 * t
    elif kind == "blobs":
        img = np.empty((h, w, 3), np.float32)
        img[:] = c1
        for colour in _muted(rng, int(rng.integers(15, 40))):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(6, w // 5)), int(rng.integers(6, h // 5)))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour.tolist(), -1)
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(1.5, 5)))
    else:
        cell = rng.uniform(16, 48)
        t = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2)[..., None]
        img = cv2.GaussianBlur(c1 * (1 - t) + c2 * t, (0, 0), 1.0)
    img = img + _texture_noise(rng, w, h, int(rng.integers(12, 30)), 18)  # mid-scale variation
    img = img + rng.normal(0, rng.uniform(2, 6), size=(h, w, 1)).astype(np.float32)  # grain
    return np.clip(img, 0, 255).astype(np.float32)


def camera_pan(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Integer (T, 2) offsets of the frame window inside the padded background (half the videos pan)."""
    if rng.random() < 0.5:
        return np.full((frames, 2), PAN, int)
    t = np.arange(frames)[:, None]
    period = rng.uniform(40, 160, size=2)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    offset = PAN + 0.9 * PAN * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase))
    return np.clip(np.rint(offset), 0, 2 * PAN).astype(int)


# ---------------------------------------------------------------- motion


@dataclass(frozen=True)
class Sprite:
    """How an object looks: shape, base colour, a shading gradient and a darker core."""

    shape: str
    colour: str
    rgb: tuple[float, ...]  # (r, g, b)
    shade_angle: float
    shade: float  # brightness varies by +-shade across the object
    core: float  # relative size of the darker inner copy of the shape (0: none)


@dataclass(frozen=True)
class Track:
    """An object's appearance and its per-frame centre (T, 2), half size (T, 2) and angle (T,)."""

    sprite: Sprite
    centre: np.ndarray
    half: np.ndarray
    angle: np.ndarray


def _fold(x: np.ndarray) -> np.ndarray:
    """Triangle wave into [0, 1]: positions bounce off the walls."""
    x = np.mod(x, 2.0)
    return np.where(x > 1, 2 - x, x)


def _travel_limit(p0: np.ndarray, d: np.ndarray) -> float:
    """Distance from p0 along direction d to the border of the unit square."""
    return min((1 - p) / c if c > 0 else -p / c if c < 0 else np.inf for p, c in zip(p0, d))


def motion_path(rng: np.random.Generator, motion: str, frames: int) -> np.ndarray:
    """Normalised positions (T, 2) in [0, 1]^2 for a motion class; speeds are per frame, so a longer
    sequence shows more of the same motion rather than a slower one."""
    t = np.arange(frames, dtype=float)[:, None]
    p0 = rng.uniform(0.2, 0.8, size=2)
    a = rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(a), np.sin(a)])
    if motion == "linear":
        speed = min(rng.uniform(0.002, 0.012), _travel_limit(p0, d) / max(frames - 1, 1))
        return np.clip(p0 + d * speed * t, 0, 1)
    if motion == "bounce":
        return _fold(p0 + d * rng.uniform(0.006, 0.02) * t)
    if motion == "sinusoidal":
        drift = d * min(rng.uniform(0.001, 0.006), _travel_limit(p0, d) / max(frames - 1, 1)) * t
        wave = np.array([-d[1], d[0]]) * rng.uniform(0.08, 0.25) * np.sin(2 * np.pi * t / rng.uniform(20, 60))
        return _fold(p0 + drift + wave)
    if motion == "random_walk":
        v = np.zeros((frames, 2))
        kicks = rng.normal(0, rng.uniform(0.002, 0.005), size=(frames, 2))
        for i in range(1, frames):  # velocity with inertia, so the walk is smooth
            v[i] = 0.9 * v[i - 1] + kicks[i]
        return _fold(p0 + np.cumsum(v, axis=0) - v[0])
    if motion == "zoom":
        return _fold(p0 + d * rng.uniform(0.0, 0.002) * t)
    raise ValueError(f"unknown motion class {motion!r}")


def _wave(rng: np.random.Generator, frames: int, amplitude: float, periods: tuple[float, float]) -> np.ndarray:
    """A smooth (T,) oscillation that is exactly 0 at frame 0."""
    t = np.arange(frames, dtype=float)
    period, phase = rng.uniform(*periods), rng.uniform(0, 2 * np.pi)
    return amplitude * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase))


def object_track(
    rng: np.random.Generator,
    sprite: Sprite,
    motion: str,
    ratio: float,
    frames: int,
    size: tuple[int, int],
    border: tuple[float, float],
) -> Track:
    """Plan an object's path: scale, aspect and (sometimes) angle change smoothly; its box at frame 0
    has side sqrt(w*h) = ratio * sqrt(W*H). ``border`` bounds how far (in half extents) the centre keeps
    from the image border: below 1 the object may leave the image partly."""
    W, H = size
    round_shape = sprite.shape in ("circle", "square")  # keep circles and squares recognisable
    log_ar0 = rng.uniform(-0.1, 0.1) if round_shape else rng.uniform(-0.25, 0.25)
    angle0 = np.deg2rad(rng.uniform(-15, 15))
    zoom = motion == "zoom"
    # _wave swings over twice its amplitude: zoom up to ~2.2x, other scale/aspect changes up to ~22%
    log_scale = _wave(rng, frames, rng.uniform(0.2, 0.4) if zoom else rng.uniform(0.0, 0.1), (60, 200))
    log_ar = log_ar0 + _wave(rng, frames, rng.uniform(0.0, 0.05 if round_shape else 0.1), (40, 150))
    # some objects rock (degrees), never far enough to turn a square into a diamond
    spin = rng.uniform(6, 14) if rng.random() < 0.35 else 0.0
    angle = angle0 + np.deg2rad(_wave(rng, frames, spin, (30, 90)))
    unit = np.stack([np.exp(log_ar / 2), np.exp(-log_ar / 2)], axis=1)  # aspect, area 1
    ext0 = _half_extents(sprite.shape, unit[:1], angle[:1])[0]
    base = ratio * np.sqrt(W * H) / (2 * np.sqrt(ext0[0] * ext0[1]))
    half = base * unit * np.exp(log_scale)[:, None]
    ext = _half_extents(sprite.shape, half, angle)
    # never wider than most of the frame, whatever the zoom
    fit = np.minimum(1.0, np.minimum(0.42 * W / ext[:, 0], 0.42 * H / ext[:, 1]))
    fit = np.maximum(fit, 3.0 / ext.min(axis=1))  # and never smaller than a few pixels
    half, ext = half * fit[:, None], ext * fit[:, None]
    p = motion_path(rng, motion, frames)
    lo = rng.uniform(*border) * ext
    span = np.array([W, H], float) - 2 * lo
    centre = np.where(span > 0, lo + p * np.maximum(span, 0), np.array([W, H]) / 2)
    return Track(sprite, centre, half, angle)


def _sprite(rng: np.random.Generator, shape: str, colour: str) -> Sprite:
    return Sprite(
        shape,
        colour,
        tuple(float(c) for c in COLOURS[colour]),
        float(rng.uniform(0, 2 * np.pi)),
        float(rng.uniform(0.08, 0.22)),
        float(rng.choice((0.0, 0.4, 0.5, 0.55))),
    )


def _linear_track(sprite: Sprite, centre0, velocity, t_c: float, half, angle: float, frames: int) -> Track:
    t = np.arange(frames, dtype=float)[:, None]
    centre = np.asarray(centre0) + np.asarray(velocity) * (t - t_c)
    return Track(sprite, centre, np.tile(np.asarray(half, float), (frames, 1)), np.full(frames, angle))


def occluder_track(rng: np.random.Generator, target: Track, frames: int) -> Track | None:
    """An occluder crossing the target around a random frame: a big disc or square that hides it fully
    for a few frames, or a bar / offset disc that hides part of it. None if there is no time for one."""
    ext = _half_extents(target.sprite.shape, target.half, target.angle)
    radius = float(ext.max())  # the target fits in a square of this half side
    a = rng.uniform(0, 2 * np.pi)
    d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    kind = rng.choice(("full", "bar", "side"), p=(0.4, 0.35, 0.25))
    if kind == "full":
        margin = rng.uniform(0.1, 0.4) * radius + 2
        shape = str(rng.choice(("circle", "square")))
        half = radius * (np.sqrt(2) if shape == "circle" else 1.0) + margin
        # a disc has more slack over round targets; aim at hiding it fully for about 2..6 frames
        slack = margin + (0.41 * radius if shape == "circle" else 0.0)
        speed = max(1.5, 2 * slack / rng.integers(2, 7))
        size, offset, angle = (half, half), 0.0, 0.0
    elif kind == "bar":
        shape, angle = "square", float(a)
        size = (rng.uniform(0.25, 0.6) * radius, rng.uniform(1.5, 3.0) * radius)
        offset, speed = rng.uniform(-0.6, 0.6) * radius, rng.uniform(1.0, 4.0)
    else:
        shape, angle = "circle", 0.0
        r = rng.uniform(0.6, 1.2) * radius
        size, offset, speed = (r, r), rng.uniform(0.8, 1.5) * radius * rng.choice((-1, 1)), rng.uniform(1.0, 4.0)
    reach = float(np.hypot(*size)) + radius * np.sqrt(2) + 2  # apart by this much, they cannot touch
    earliest = max(reach / speed, 0.25 * frames)
    if earliest > 0.9 * (frames - 1):  # short video: cross faster rather than skip
        speed = reach / max(0.6 * (frames - 1), 1e-9)
        earliest = reach / speed
        if earliest > frames - 1 or frames < 3:
            return None
    t_c = float(rng.uniform(earliest, max(earliest, 0.9 * (frames - 1))))
    i = int(np.clip(round(t_c), 1, frames - 2)) if frames >= 3 else 0
    v_target = (target.centre[min(i + 1, frames - 1)] - target.centre[max(i - 1, 0)]) / 2
    at = target.centre[i] + (t_c - i) * v_target + offset * n
    rgb = OCCLUDER_COLOURS[rng.integers(len(OCCLUDER_COLOURS))]
    sprite = Sprite(
        shape,
        "occluder",
        tuple(float(c) for c in rgb),
        float(rng.uniform(0, 2 * np.pi)),
        float(rng.uniform(0.08, 0.22)),
        0.0,
    )
    return _linear_track(sprite, at, v_target + speed * d, t_c, size, angle, frames)


# ---------------------------------------------------------------- plan and render


@dataclass(frozen=True)
class Plan:
    """Everything needed to render one sequence, frame by frame."""

    name: str
    size: tuple[int, int]
    background: np.ndarray  # (H + 2 PAN, W + 2 PAN, 3) float32
    pan: np.ndarray  # (T, 2) window offsets (x, y)
    target: Track
    motion: str
    size_class: str
    distractors: tuple[Track, ...]
    occluders: tuple[Track, ...]

    @property
    def frames(self) -> int:
        return len(self.pan)

    @property
    def description(self) -> str:
        return f"the {self.size_class} {self.target.sprite.colour} {self.target.sprite.shape}"


def sequence_name(split: str, index: int) -> str:
    return f"Synth_{split.capitalize()}_{index:06d}"


def size_class(box, width: int, height: int) -> str:
    ratio = np.sqrt(box[2] * box[3] / (width * height))
    return next(name for name, limit in SIZE_LIMITS if ratio < limit)


def _seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, SPLITS.index(split), index])


def plan_sequence(seed: int, split: str, index: int, frames: int, size: tuple[int, int] | None = None) -> Plan:
    """Plan sequence ``index`` (1-based) of ``split``; depends only on its arguments."""
    scene, looks, motion_rng, extras, cam = (np.random.default_rng(s) for s in _seed(seed, split, index).spawn(5))
    W, H = size if size is not None else FRAME_SIZES[scene.integers(len(FRAME_SIZES))]
    bg = background(scene, W + 2 * PAN, H + 2 * PAN)
    shape = str(looks.choice(list(SHAPES)))
    colour = str(looks.choice(list(COLOURS)))
    wanted = str(looks.choice(list(SIZE_SAMPLING)))
    motion = str(motion_rng.choice(MOTIONS))
    target = object_track(
        motion_rng,
        _sprite(looks, shape, colour),
        motion,
        motion_rng.uniform(*SIZE_SAMPLING[wanted]),
        frames,
        (W, H),
        (0.55, 1.25),
    )
    first = target_labels(target, 0, (W, H), [])
    cls = size_class(first[0], W, H)
    distractors = tuple(
        _distractor(extras, target, frames, (W, H)) for _ in range(int(extras.choice(4, p=(0.25, 0.35, 0.25, 0.15))))
    )
    occluders: list = []
    for _ in range(int(extras.choice(3, p=(0.3, 0.45, 0.25)))):
        occ = occluder_track(extras, target, frames)
        # frame 0 must show the whole target, as GOT-10k's first frames do
        if occ is not None and target_labels(target, 0, (W, H), [*occluders, occ])[1] == 8:
            occluders.append(occ)
    return Plan(
        sequence_name(split, index),
        (int(W), int(H)),
        bg,
        camera_pan(cam, frames),
        target,
        motion,
        cls,
        distractors,
        tuple(occluders),
    )


def _distractor(rng: np.random.Generator, target: Track, frames: int, size: tuple[int, int]) -> Track:
    """A look-alike: same shape or same colour as the target, never both (the description stays unique)."""
    t = target.sprite
    other_shapes = [s for s in SHAPES if s != t.shape]
    other_colours = [c for c in COLOURS if c != t.colour]
    like = rng.choice(("shape", "colour", "neither"), p=(0.4, 0.4, 0.2))
    shape = t.shape if like == "shape" else str(rng.choice(other_shapes if like == "colour" else list(SHAPES)))
    colour = t.colour if like == "colour" else str(rng.choice(other_colours))
    ratio = rng.uniform(*SIZE_SAMPLING[str(rng.choice(list(SIZE_SAMPLING)))])
    motion = str(rng.choice(MOTIONS))
    return object_track(rng, _sprite(rng, shape, colour), motion, ratio, frames, size, (0.3, 1.1))


def _raster_at(track: Track, t: int) -> Raster:
    return rasterise(shape_polygon(track.sprite.shape, track.centre[t], track.half[t], track.angle[t]))


def _overlap(a: Raster, bx0: int, by0: int, bh: int, bw: int):
    """Where raster ``a`` overlaps the (bh, bw) array whose top-left pixel is (bx0, by0): the slices in
    ``a`` and in that array, or None."""
    ah, aw = a.alpha.shape
    x0, y0 = max(a.x0, bx0), max(a.y0, by0)
    x1, y1 = min(a.x0 + aw, bx0 + bw), min(a.y0 + ah, by0 + bh)
    if x0 >= x1 or y0 >= y1:
        return None
    return (
        (slice(y0 - a.y0, y1 - a.y0), slice(x0 - a.x0, x1 - a.x0)),
        (slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0)),
    )


def _appearance(track: Track, t: int, r: Raster) -> np.ndarray:
    """RGB float32 texture over the raster's canvas: shaded colour with an optional darker core."""
    s = track.sprite
    h, w = r.alpha.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = track.centre[t] - (r.x0 + 0.5, r.y0 + 0.5)
    g = ((xx - cx) * np.cos(s.shade_angle) + (yy - cy) * np.sin(s.shade_angle)) / max(track.half[t].max(), 1.0)
    light = 1 + s.shade * np.clip(g, -1, 1)
    if s.core > 0:
        core = rasterise(shape_polygon(s.shape, track.centre[t], track.half[t] * s.core, track.angle[t]))
        inner = np.zeros((h, w), np.float32)
        ov = _overlap(core, r.x0, r.y0, h, w)
        if ov is not None:
            inner[ov[1]] = core.alpha[ov[0]] / np.float32(255)
        light = light * (1 - 0.35 * inner)
    return np.asarray(s.rgb, np.float32) * light[..., None]


def _paint(image: np.ndarray, track: Track, t: int, r: Raster | None = None) -> Raster:
    r = r if r is not None else _raster_at(track, t)
    H, W = image.shape[:2]
    win = _overlap(r, 0, 0, H, W)
    if win is not None:
        local, frame = win
        a = (r.alpha[local] / np.float32(255))[..., None]
        image[frame] = image[frame] * (1 - a) + _appearance(track, t, r)[local] * a
    return r


def target_labels(target: Track, t: int, size: tuple[int, int], occluders) -> tuple[np.ndarray, int, int]:
    """(box xywh, cover 0..8, cut 0/1) of the target at frame t, from its mask and the occluders' masks."""
    W, H = size
    r = _raster_at(target, t)
    return _labels(r, [_raster_at(o, t) for o in occluders], W, H)


def _labels(r: Raster, occluders: list[Raster], W: int, H: int) -> tuple[np.ndarray, int, int]:
    full = r.mask
    total = int(full.sum())
    win = _overlap(r, 0, 0, H, W)
    inside = np.zeros_like(full)  # the full mask, restricted to the image
    if win is not None:
        inside[win[0]] = full[win[0]]
    rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    if total == 0 or len(rows) == 0:
        return np.zeros(4), 0, 1
    visible = inside.copy()
    for o in occluders:  # occluder masks, in the target canvas's coordinates
        ov = _overlap(o, r.x0, r.y0, *full.shape)
        if ov is not None:
            visible[ov[1]] &= ~o.mask[ov[0]]
    box = np.array([r.x0 + cols[0], r.y0 + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], float)
    return box, cover_label(int(visible.sum()), total), int(inside.sum() < total)


def cover_label(visible: int, total: int) -> int:
    """GOT-10k cover bin of visible/total: 0, (0,15%] -> 1, ..., (75,90%] -> 6, (90,100%) -> 7, 100% -> 8."""
    if visible <= 0:
        return 0
    if visible >= total:
        return 8
    return min(7, -(-100 * visible // (15 * total)))  # ceil, in integers: no float edge cases


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    box: np.ndarray  # xywh
    cover: int
    cut: int


def render_frame(plan: Plan, t: int, with_target: bool = True) -> Rendered:
    """Render frame t (0-based) and its labels; ``with_target=False`` leaves the target out (for checks)."""
    W, H = plan.size
    ox, oy = plan.pan[t]
    image = plan.background[oy : oy + H, ox : ox + W].copy()
    for d in plan.distractors:
        _paint(image, d, t)
    target = _raster_at(plan.target, t)
    if with_target:
        _paint(image, plan.target, t, target)
    occluders = [_paint(image, o, t) for o in plan.occluders]
    box, cover, cut = _labels(target, occluders, W, H)
    return Rendered(np.clip(np.rint(image), 0, 255).astype(np.uint8), box, cover, cut)


# ---------------------------------------------------------------- files


def _write_text(path: Path, lines) -> None:
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def _box_line(box) -> str:
    return ",".join(f"{v:.4f}" for v in box)


def meta_info(plan: Plan, seed: int, split: str, index: int) -> str:
    s = plan.target.sprite
    lines = [
        "[METAINFO]",
        f"object_class: {s.shape}",
        f"motion_class: {plan.motion}",
        "major_class: geometric shape",
        "root_class: synthetic object",
        f"object_colour: {s.colour}",
        f"size_class: {plan.size_class}",
        f"resolution: ({plan.size[0]}, {plan.size[1]})",
        f"description: {plan.description}",
        f"generator: r1track.synth seed={seed} split={split} index={index}",
    ]
    return "\n".join(lines) + "\n"


def write_sequence(plan: Plan, seq_dir: Path, split: str, meta: str, truth_dir: Path | None, bar=None) -> None:
    """Render and write one sequence, one frame at a time; labels are written last."""
    seq_dir.mkdir(parents=True, exist_ok=True)
    boxes, covers, cuts = [], [], []
    for t in range(plan.frames):
        frame = render_frame(plan, t)
        ok, jpg = cv2.imencode(
            ".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not ok:
            raise R1TrackError(f"{seq_dir}: JPEG encoding failed for frame {t + 1}")
        atomic_write_bytes(seq_dir / f"{t + 1:08d}.jpg", jpg.tobytes(), sync=False)
        boxes.append(_box_line(frame.box))
        covers.append(frame.cover)
        cuts.append(frame.cut)
        if bar is not None:
            bar.update(1)
    absence = [int(c == 0) for c in covers]
    atomic_write_text(seq_dir / "meta_info.ini", meta)
    if split == "test":
        _write_text(seq_dir / "groundtruth.txt", boxes[:1])
        _write_text(truth_dir / f"{plan.name}.txt", boxes)
        for label, values in (("cover", covers), ("absence", absence), ("cut_by_image", cuts)):
            _write_text(truth_dir / f"{plan.name}_{label}.label", values)
    else:
        _write_text(seq_dir / "groundtruth.txt", boxes)
        for label, values in (("cover", covers), ("absence", absence), ("cut_by_image", cuts)):
            _write_text(seq_dir / f"{label}.label", values)


def prepare_split(split_dir: Path, overwrite: bool, ours: re.Pattern, command: str) -> bool:
    """Refuse a non-empty split folder unless asked; when asked, remove only what a generator wrote
    (``list.txt`` and sequence folders named like ``ours``). True when something was removed."""
    if not split_dir.exists() or not any(split_dir.iterdir()):
        return False
    if not overwrite:
        raise R1TrackError(
            f"{split_dir} already exists and is not empty; pass --overwrite (overwrite=True) to replace it"
        )
    foreign = [p.name for p in split_dir.iterdir() if p.name != "list.txt" and not ours.match(p.name)]
    if foreign:
        shown = ", ".join(sorted(foreign)[:3])
        raise R1TrackError(f"{split_dir} holds files not written by {command} ({shown}); refusing to overwrite it")
    for p in split_dir.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return True


def _prepare(split_dir: Path, truth_dir: Path | None, split: str, overwrite: bool) -> None:
    ours = re.compile(rf"^Synth_{split.capitalize()}_\d{{6}}$")
    if prepare_split(split_dir, overwrite, ours, "r1track synth") and truth_dir is not None and truth_dir.is_dir():
        for p in truth_dir.glob(f"Synth_{split.capitalize()}_*"):
            p.unlink()


def _parse_size(text) -> tuple[int, int]:
    if isinstance(text, (tuple, list)):
        w, h = (int(v) for v in text)
    else:
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
        if not m:
            raise R1TrackError(f"frame size {text!r} is not WxH (e.g. 400x300)")
        w, h = int(m[1]), int(m[2])
    if w < 64 or h < 48 or w > 4096 or h > 4096:
        raise R1TrackError(f"frame size {w}x{h} is out of range (64x48 .. 4096x4096)")
    return w, h


def generate(
    out: str | Path,
    sequences: int,
    frames: int,
    seed: int,
    split: str = "val",
    size: tuple[int, int] | str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``sequences`` synthetic sequences of ``frames`` frames to ``out/<split>`` (GOT-10k layout)
    and return that folder. Sequence i depends only on (seed, split, i, frames, size)."""
    if split not in SPLITS:
        raise R1TrackError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if sequences < 1 or frames < 1:
        raise R1TrackError(f"need at least one sequence and one frame (got {sequences} x {frames})")
    if seed < 0:
        raise R1TrackError(f"seed must be >= 0 (got {seed})")
    size = _parse_size(size) if size is not None else None
    split_dir = Path(out) / split
    truth_dir = Path(out) / "test_groundtruth" if split == "test" else None
    _prepare(split_dir, truth_dir, split, overwrite)
    split_dir.mkdir(parents=True, exist_ok=True)
    if truth_dir is not None:
        truth_dir.mkdir(parents=True, exist_ok=True)
    names = []
    with tqdm(total=sequences * frames, unit="frame", desc=f"synth {split}", disable=not progress) as bar:
        for index in range(1, sequences + 1):
            plan = plan_sequence(seed, split, index, frames, size)
            write_sequence(plan, split_dir / plan.name, split, meta_info(plan, seed, split, index), truth_dir, bar)
            names.append(plan.name)
    _write_text(split_dir / "list.txt", names)  # last: a complete list means a complete split
    return split_dir


# ---------------------------------------------------------------- command


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="dataset root; sequences go to OUT/<split>")
    parser.add_argument("--sequences", type=int, required=True, help="number of sequences")
    parser.add_argument("--frames", type=int, required=True, help="frames per sequence")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same seed, same bytes)")
    parser.add_argument("--split", choices=SPLITS, default="val", help="split folder and naming (default: val)")
    parser.add_argument(
        "--size",
        default=None,
        help="frame size WxH for all sequences (default: varied per "
        f"sequence among {', '.join(f'{w}x{h}' for w, h in FRAME_SIZES)})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing synthetic split")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    start = time.perf_counter()
    split_dir = generate(
        args.out,
        args.sequences,
        args.frames,
        args.seed,
        split=args.split,
        size=args.size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - start
    n = args.sequences * args.frames
    print(
        f"wrote {args.sequences} sequences x {args.frames} frames to {split_dir} "
        f"in {elapsed:.1f} s ({n / elapsed:.0f} frames/s)"
    )
    if args.split == "test":
        print(f"full test ground truth: {split_dir.parent / 'test_groundtruth'}")
    return 0
