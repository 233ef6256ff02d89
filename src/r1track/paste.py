"""Copy-paste sequences: real objects cut from real tracking frames, pasted onto other real frames and
moved, written in the GOT-10k layout with exact ground truth.

Real tracking data is small; this multiplies it. A *cutout* is one annotated object of a source dataset
(a single-object sequence, or one identity of a MOTChallenge video): its box region in each frame where
it is annotated, present and wholly inside the image. A pasted sequence plays one cutout's frames forward
(so the object keeps its real appearance changes: a walker's legs, a turning car) on a background frame
taken from another source sequence, with a smooth motion path, a slow change of scale, a drifting camera
window, and 0-3 *distractors*: other cutouts, half of them look-alikes (the same object at another moment,
or another identity of the same video, i.e. another pedestrian of the same crowd), some passing close
by, some in front of the target.

Labels (exact for the written frames):

- The target is pasted as the rectangle of its source box, resized to an integer box at an integer
  position; ``groundtruth.txt`` is that rectangle clipped to the image. The outer ring of every pasted
  patch fades into the background (so the rectangle's edge is no cue), inside the box.
- visible fraction = target-box pixels inside the image and not under a distractor drawn in front of it
  (alpha >= 1/2) / all target-box pixels; ``cover.label`` bins it as GOT-10k does (``synth.cover_label``),
  ``absence.label`` is 1 where cover is 0; frame 1 always shows the whole target.

Every plan is drawn from ``numpy.random.Generator``s seeded by (seed, index) and the sources' names and
boxes, so the same sources and seed give the same bytes, whatever the number of sequences asked for.
"""

from __future__ import annotations

import re
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from r1track import datasets
from r1track.atomic import atomic_write_bytes, atomic_write_text
from r1track.datasets.base import Sequence, VideoFrames, image_size
from r1track.errors import R1TrackError
from r1track.synth import JPEG_QUALITY, MOTIONS, cover_label, motion_path, prepare_split

MIN_SIDE = 12  # px: smaller source boxes hold too little of the object to paste
EDGE = 0.15  # fraction of a patch's side over which its outer ring fades into the background
NAME = re.compile(r"^Paste_(Train|Val)_\d{6}$")


@dataclass(frozen=True)
class Cutout:
    """One annotated object of a source sequence: the frames it can be cut from and its boxes there."""

    sequence: Sequence
    frames: np.ndarray  # (K,) frame indices, ascending
    boxes: np.ndarray  # (K, 4) xywh, wholly inside the frame
    video: str  # cutouts of one video (identities of a MOT video) are look-alikes of each other


def cutouts(sequences: list[Sequence], min_side: int = MIN_SIDE) -> list[Cutout]:
    """The cutouts of ``sequences`` with at least 8 usable frames."""
    out = []
    for seq in sequences:
        gt = seq.gt
        ok = np.isfinite(gt).all(axis=1) & (np.nan_to_num(gt[:, 2:]).min(axis=1) >= min_side)
        if seq.absent is not None:
            ok &= ~np.asarray(seq.absent, bool)
        if not ok.any():
            continue
        w, h = _resolution(seq)
        box = np.nan_to_num(gt)
        ok &= (box[:, 0] >= 0) & (box[:, 1] >= 0) & (box[:, 0] + box[:, 2] <= w) & (box[:, 1] + box[:, 3] <= h)
        frames = np.flatnonzero(ok)
        if len(frames) >= 8:
            out.append(Cutout(seq, frames, gt[frames], _video(seq)))
    return out


def _resolution(seq: Sequence) -> tuple[int, int]:
    if seq.meta.get("resolution"):
        w, h = seq.meta["resolution"]
        return int(w), int(h)
    if isinstance(seq.frames, VideoFrames):
        h, w = seq.frame(0).shape[:2]
        return w, h
    return image_size(seq.frames[0])


def _video(seq: Sequence) -> str:
    """The file or folder the frames come from: MOT identities of one video share it."""
    return str(seq.frames.path if isinstance(seq.frames, VideoFrames) else Path(seq.frames[0]).parent)


@dataclass(frozen=True)
class Layer:
    """One pasted object: which cutout frame it shows and where (integer xywh) in every output frame."""

    cutout: int
    source: np.ndarray  # (T,) index into the cutout's frames
    boxes: np.ndarray  # (T, 4) int
    front: bool = False  # drawn over the target


@dataclass(frozen=True)
class Plan:
    name: str
    size: tuple[int, int]
    background: tuple[int, int]  # (sequence index, frame index) in the source list
    window: np.ndarray  # (T, 4) float: the background region shown in each frame (x, y, w, h)
    target: Layer
    distractors: tuple[Layer, ...]

    @property
    def frames(self) -> int:
        return len(self.target.boxes)


def _playback(rng: np.random.Generator, count: int, frames: int) -> np.ndarray:
    """Cutout frame indices played forward from a random start, back and forth if it runs out."""
    start = int(rng.integers(count))
    period = max(2 * (count - 1), 1)
    k = (start + np.arange(frames)) % period
    return np.where(k < count, k, period - k)


def _scale(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    t = np.arange(frames, dtype=float)
    period, phase = rng.uniform(40, 160), rng.uniform(0, 2 * np.pi)
    return np.exp(amplitude * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase)))


def _boxes(src: np.ndarray, scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    wh = np.maximum(np.rint(src[:, 2:] * scale[:, None]), 4)
    xy = np.rint(centre - wh / 2)
    return np.concatenate([xy, wh], axis=1).astype(int)


def _layer(rng, cuts: list[Cutout], c: int, frames: int, side: float, size, centre=None, front=False) -> Layer:
    """A layer of cutout ``c`` whose frame-0 box has side sqrt(w*h) = ``side``; its own path unless
    ``centre`` (T, 2) is given."""
    cut = cuts[c]
    source = _playback(rng, len(cut.frames), frames)
    src = cut.boxes[source]
    zoom = min(side / np.sqrt(src[0, 2] * src[0, 3]), 3.0)  # blown up further, a patch is a blur
    scale = zoom * _scale(rng, frames, rng.uniform(0.0, 0.2))
    if centre is None:
        W, H = size
        half = src[:, 2:] * scale[:, None] / 2
        border = rng.uniform(0.6, 1.3) * half.max(axis=0)
        span = np.maximum(np.array([W, H]) - 2 * border, 0)
        centre = border + motion_path(rng, str(rng.choice(MOTIONS)), frames) * span
    return Layer(c, source, _boxes(src, scale, centre), front)


def _inside(box, size) -> bool:
    return box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= size[0] and box[1] + box[3] <= size[1]


def plan_sequence(cuts: list[Cutout], index: int, seed: int, frames: int, split: str = "train") -> Plan:
    """Plan pasted sequence ``index`` (1-based); depends only on its arguments."""
    scene, target_rng, extras = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(3))
    videos = [c.video for c in cuts]
    per_video = Counter(videos)  # (list.count per cutout is quadratic: a MOT17 source has thousands)
    share = np.array([per_video[v] for v in videos], float)
    # a crowd's many identities weigh like a few sequences, not like one each
    t_cut = int(target_rng.choice(len(cuts), p=share**-0.5 / (share**-0.5).sum()))
    others = [i for i, v in enumerate(videos) if v != videos[t_cut]] or list(range(len(cuts)))
    b = int(scene.choice(others, p=share[others] ** -1 / (share[others] ** -1).sum()))  # each video alike
    bg = (b, int(scene.integers(len(cuts[b].sequence))))
    size = W, H = _resolution(cuts[b].sequence)
    window = _window(scene, frames, size)
    side = target_rng.uniform(0.05, 0.25) * np.sqrt(W * H)
    for _ in range(20):  # frame 1 shows the whole target, as GOT-10k's first frames do
        target = _layer(target_rng, cuts, t_cut, frames, side, size)
        if _inside(target.boxes[0], size):
            break
    else:
        centre = np.tile([W / 2, H / 2], (frames, 1))
        target = _layer(target_rng, cuts, t_cut, frames, min(side, 0.3 * min(W, H)), size, centre)
    distractors = []
    same_video = [i for i, v in enumerate(videos) if v == videos[t_cut]]
    for _ in range(int(extras.choice(4, p=(0.2, 0.35, 0.3, 0.15)))):
        c = int(extras.choice(same_video if extras.random() < 0.5 else len(cuts)))
        d_side = side * extras.uniform(0.75, 1.3)
        centre = None
        if extras.random() < 0.5:  # passes by the target: starts beside it, crosses to the other side
            t_box = target.boxes.astype(float)
            offset = (
                extras.uniform(1.2, 3.0)
                * np.sqrt(t_box[0, 2] * t_box[0, 3])
                * np.array([np.cos(a := extras.uniform(0, 2 * np.pi)), np.sin(a)])
            )
            travel = np.linspace(1, extras.uniform(-1.2, 0.6), frames)[:, None]
            centre = t_box[:, :2] + t_box[:, 2:] / 2 + offset * travel
        layer = _layer(extras, cuts, c, frames, d_side, size, centre, front=extras.random() < 0.3)
        if layer.front and _overlap(layer.boxes[0], target.boxes[0]):  # frame 1 shows the whole target
            layer = replace(layer, front=False)
        distractors.append(layer)
    return Plan(f"Paste_{split.capitalize()}_{index:06d}", size, bg, window, target, tuple(distractors))


def _window(rng: np.random.Generator, frames: int, size: tuple[int, int]) -> np.ndarray:
    """The background region each frame shows: 70-100% of the background frame, drifting and zooming
    slowly (a moving camera), or fixed for a third of the sequences."""
    W, H = size
    (s0, s1), (p0, p1) = rng.uniform(0.7, 1.0, size=2), rng.uniform(0, 1, size=(2, 2))
    if rng.random() < 1 / 3:
        s1, p1 = s0, p0
    t = np.linspace(0, 1, frames)[:, None]
    wh = (s0 + (s1 - s0) * t) * np.array([W, H])
    xy = (p0 + (p1 - p0) * t) * (np.array([W, H]) - wh)
    return np.concatenate([xy, wh], axis=1)


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


# ---------------------------------------------------------------- rendering


class _Frames:
    """Decoded source frames, the most recent few kept (sequences revisit the same frames)."""

    def __init__(self, keep: int = 64):
        self.keep, self.cache = keep, OrderedDict[tuple[str, int], np.ndarray]()

    def __call__(self, seq: Sequence, i: int) -> np.ndarray:
        key = (seq.name, i)
        if key not in self.cache:
            self.cache[key] = seq.frame(i)
            if len(self.cache) > self.keep:
                self.cache.popitem(last=False)
        self.cache.move_to_end(key)
        return self.cache[key]


def _alpha(w: int, h: int) -> np.ndarray:
    """(h, w) opacity: 1 inside, fading to 0 over the outer ``EDGE`` of each side."""
    ramp = [np.clip((np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5) / max(EDGE * n, 1), 0, 1) for n in (w, h)]
    return np.minimum(ramp[1][:, None], ramp[0][None, :]).astype(np.float32)


def _paste(image: np.ndarray, patch: np.ndarray, box) -> np.ndarray:
    """Blend ``patch`` (already box-sized) into ``image`` at ``box``; returns the (h, w) alpha used, with
    the part outside the image zeroed."""
    x, y, w, h = (int(v) for v in box)
    alpha = _alpha(w, h)
    H, W = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 > x0 and y1 > y0:
        a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
        region = image[y0:y1, x0:x1].astype(np.float32)
        image[y0:y1, x0:x1] = np.rint(region * (1 - a) + patch[y0 - y : y1 - y, x0 - x : x1 - x] * a).astype(np.uint8)
    visible = np.zeros_like(alpha)
    visible[max(y0 - y, 0) : max(y1 - y, 0), max(x0 - x, 0) : max(x1 - x, 0)] = 1
    return alpha * visible


def _patch(frames: _Frames, cut: Cutout, k: int, box) -> np.ndarray:
    x, y, w, h = cut.boxes[k]
    frame = frames(cut.sequence, int(cut.frames[k]))
    crop = frame[int(np.floor(y)) : int(np.ceil(y + h)), int(np.floor(x)) : int(np.ceil(x + w))]
    return cv2.resize(crop, (int(box[2]), int(box[3])), interpolation=cv2.INTER_AREA).astype(np.float32)


def render_frame(plan: Plan, cuts: list[Cutout], t: int, frames: _Frames) -> tuple[np.ndarray, np.ndarray, int]:
    """(RGB image, target box clipped to the image, cover label) of frame ``t``."""
    W, H = plan.size
    bg_seq = cuts[plan.background[0]].sequence
    x, y, w, h = plan.window[t]
    scale = np.array([[W / w, 0, -x * W / w], [0, H / h, -y * H / h]])
    image = cv2.warpAffine(frames(bg_seq, plan.background[1]), scale, (W, H), flags=cv2.INTER_LINEAR)
    for layer in (d for d in plan.distractors if not d.front):
        _paste(image, _patch(frames, cuts[layer.cutout], layer.source[t], layer.boxes[t]), layer.boxes[t])
    box = plan.target.boxes[t]
    seen = _paste(image, _patch(frames, cuts[plan.target.cutout], plan.target.source[t], box), box) > 0
    for layer in (d for d in plan.distractors if d.front):
        d = layer.boxes[t]
        a = _paste(image, _patch(frames, cuts[layer.cutout], layer.source[t], d), d)
        x0, y0 = max(d[0], box[0]), max(d[1], box[1])
        x1, y1 = min(d[0] + d[2], box[0] + box[2]), min(d[1] + d[3], box[1] + box[3])
        if x1 > x0 and y1 > y0:
            under = a[y0 - d[1] : y1 - d[1], x0 - d[0] : x1 - d[0]] >= 0.5
            seen[y0 - box[1] : y1 - box[1], x0 - box[0] : x1 - box[0]] &= ~under
    visible = int(seen.sum())  # in the image and not under a distractor in front
    x0, y0 = max(box[0], 0), max(box[1], 0)
    x1, y1 = min(box[0] + box[2], W), min(box[1] + box[3], H)
    clipped = np.array([x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)], float)
    return image, clipped, cover_label(visible, int(box[2] * box[3]))


def meta_info(plan: Plan, cuts: list[Cutout], seed: int, index: int) -> str:
    target = cuts[plan.target.cutout].sequence
    background = cuts[plan.background[0]].sequence
    lines = [
        "[METAINFO]",
        f"object_class: {target.meta.get('object_class', 'object')}",
        "motion_class: pasted",
        f"resolution: ({plan.size[0]}, {plan.size[1]})",
        f"source: {target.name}",
        f"background: {background.name} frame {plan.background[1] + 1}",
        "distractors: " + ", ".join(cuts[d.cutout].sequence.name for d in plan.distractors),
        f"generator: r1track.paste seed={seed} index={index}",
    ]
    return "\n".join(lines) + "\n"


def write_sequence(plan: Plan, cuts: list[Cutout], seq_dir: Path, meta: str, frames: _Frames, bar=None) -> None:
    """Render and write one sequence, one frame at a time; labels are written last."""
    seq_dir.mkdir(parents=True, exist_ok=True)
    boxes, covers = [], []
    for t in range(plan.frames):
        image, box, cover = render_frame(plan, cuts, t, frames)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise R1TrackError(f"{seq_dir}: JPEG encoding failed for frame {t + 1}")
        atomic_write_bytes(seq_dir / f"{t + 1:08d}.jpg", jpg.tobytes(), sync=False)
        boxes.append(",".join(f"{v:.4f}" for v in box))
        covers.append(cover)
        if bar is not None:
            bar.update(1)
    atomic_write_text(seq_dir / "meta_info.ini", meta)
    for name, values in (
        ("groundtruth.txt", boxes),
        ("cover.label", covers),
        ("absence.label", [int(c == 0) for c in covers]),
    ):
        atomic_write_text(seq_dir / name, "".join(f"{v}\n" for v in values))


def generate(
    sources: list[Sequence],
    out: str | Path,
    sequences: int,
    frames: int,
    seed: int,
    split: str = "train",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``sequences`` pasted sequences of ``frames`` frames built from ``sources`` to
    ``out/<split>`` (GOT-10k layout) and return that folder."""
    if split not in ("train", "val"):
        raise R1TrackError(f"unknown split {split!r}; choose train or val")
    if sequences < 1 or frames < 2:
        raise R1TrackError(f"need at least one sequence of two frames (got {sequences} x {frames})")
    if seed < 0:
        raise R1TrackError(f"seed must be >= 0 (got {seed})")
    cuts = cutouts(sources)
    if len({c.sequence.name for c in cuts}) < 2:
        raise R1TrackError(
            f"need objects from at least 2 source sequences with 8+ frames wholly inside the image and "
            f"boxes of {MIN_SIDE}+ px (found {len(cuts)})"
        )
    split_dir = Path(out) / split
    prepare_split(split_dir, overwrite, NAME, "r1track paste")
    split_dir.mkdir(parents=True, exist_ok=True)
    names, decoded = [], _Frames()
    with tqdm(total=sequences * frames, unit="frame", desc=f"paste {split}", disable=not progress) as bar:
        for index in range(1, sequences + 1):
            plan = plan_sequence(cuts, index, seed, frames, split)
            write_sequence(plan, cuts, split_dir / plan.name, meta_info(plan, cuts, seed, index), decoded, bar)
            names.append(plan.name)
    atomic_write_text(split_dir / "list.txt", "".join(f"{n}\n" for n in names))  # last: complete means complete
    return split_dir


# ---------------------------------------------------------------- command


def add_arguments(parser) -> None:
    parser.add_argument(
        "--source",
        nargs=2,
        action="append",
        required=True,
        metavar=("DATASET", "ROOT"),
        help=f"objects and backgrounds from this dataset ({', '.join(datasets.DATASETS)}); repeatable",
    )
    parser.add_argument("--drop-videos", nargs="*", default=[], help="source sequence names to leave out (held out)")
    parser.add_argument("--keep-videos", nargs="*", default=None, help="only these source sequence names")
    parser.add_argument("--out", required=True, help="dataset root; sequences go to OUT/<split>")
    parser.add_argument("--sequences", type=int, required=True, help="number of sequences")
    parser.add_argument("--frames", type=int, required=True, help="frames per sequence")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same sources and seed, same bytes)")
    parser.add_argument("--split", choices=("train", "val"), default="train", help="split folder (default: train)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing pasted split")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_sources(specs: list[tuple[str, str]], drop=(), keep=None) -> list[Sequence]:
    """The sequences of every (dataset, root) whose names end with none of ``drop`` (and with one of
    ``keep``, when given)."""
    loaded = [s for name, root in specs for s in datasets.load(name, root)]
    ends = lambda s, names: any(s.name.endswith(n) for n in names)  # noqa: E731
    return [s for s in loaded if not ends(s, drop) and (keep is None or ends(s, keep))]


def run(args) -> int:
    start = time.perf_counter()
    sources = load_sources(args.source, args.drop_videos, args.keep_videos)
    split_dir = generate(
        sources, args.out, args.sequences, args.frames, args.seed, args.split, args.overwrite, not args.no_progress
    )
    elapsed = time.perf_counter() - start
    print(
        f"wrote {args.sequences} pasted sequences x {args.frames} frames from {len(sources)} source sequences "
        f"to {split_dir} in {elapsed:.1f} s"
    )
    return 0
