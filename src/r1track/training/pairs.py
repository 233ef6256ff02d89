"""Training pairs from tracking datasets: the R1-Track recipe, with our fixes as options.

``PairOptions()`` reproduces the reference recipe (R1-Track-5k style): per sample, two distinct frames of
one video drawn uniformly at random (any gap, either order, absent frames kept); per frame a square crop
of side ``ceil(sqrt(w*h) * factor)``, ``factor ~ U(2, 8)``, centre jittered by ``U(-0.2, 0.2) * side``
in x and y, black padding, resized to 336; boxes written as the crop-pixel box truncated to integers
(toward zero, as Python's ``int``) and not clipped, so they may leave the crop.

Sampling, exactly:
- One sample per video per pass. Sample ``i`` belongs to pass ``i // V`` (``V`` usable videos); each
  pass visits every video once in a seeded random order, so ``samples > V`` cycles through the videos
  again with fresh random frames and crops, and ``samples < V`` takes a random subset of videos.
- Everything random about sample ``i`` comes from a generator seeded with ``(seed, i)``: the dataset
  is identical for the same seed whatever ``num_proc``, and sample ``i`` does not depend on the others.
- Frames with no usable box (non-finite, zero width or height: GOT-10k 004419 has ``h = 0``) are never
  drawn: no crop can be centred on them (the reference dropped the whole pair when it drew one).
- The (template, search) pair is uniform over the valid ordered pairs of distinct usable frames (the
  reference's rule when no fix is on); ``max_gap`` and ``template_first`` restrict the valid pairs.
- ``three_image_rate``: that fraction of tracking samples gets a third image between template and
  search: a "recent" frame drawn first, within ``recent_gap`` frames of the search frame (before it
  when ``template_first``, and then the template is drawn before the recent frame), cropped like the
  others (own factor and jitter around its own box) and announced with its box by the ``three``
  prompt variant. When the video has no such frames the sample stays a two-image sample.
- ``grounding_rate``: that fraction of samples *of sequences with a language description* is a grounding
  sample: the whole frame as it is (no crop) and the description; the answer is the frame box encoded
  by the family on the frame size (Qwen's processor resizes the frame, the family accounts for it).
  Its ``crops`` record is the identity ``[0, 0, L, L]`` with ``L = max(W, H)``. With ``thinking`` the
  grounding prompt gets the same thinking prefix as tracking prompts.
- ``balance_aspect``: sampling by target shape instead of by video. The search frame's box aspect
  ``log2(w / h)`` is put into 9 bins (edges ``+-0.25, +-0.75, +-1.25, +-1.75``: the middle bin is
  "square", aspect 0.84..1.19; the outer bins are open, aspect > 3.4 or < 0.3). Each sample draws a
  non-empty bin uniformly, then a video uniformly among those with frames in that bin, then a frame of
  that video in that bin; the template is then drawn as usual. Every shape class thus gets the same
  share of samples (a rare class is repeated more, with fresh crops), which keeps SFT from learning
  "the box is square" (the reference's early finding); one-sample-per-video-per-pass no longer holds.
- ``previous_rate``: that fraction of tracking samples gets the search crop a tracker cuts after a right
  answer: centred on the target's box in the previous usable frame (its size from that box, the factor
  drawn as usual, no jitter), so the target's offset from the centre is the video's own motion between
  frames. The uniform jitter puts the target anywhere within +-``jitter`` of the side, while a tracker
  mostly finds it near the centre (``benchmarks/target_motion.py``): a prior the jittered crops never
  teach. The first usable frame keeps a jittered crop.
- ``tracker_factor``: crops as a tracker with that template and search factor cuts them. Every template
  (and the three-image recent frame) is centred on its box at that factor, no jitter, as the tracker's
  first-frame template always is; the previous-box search crops above use that factor too, so the
  target there has about its template size (the tracker's size prior). Jittered search crops keep their
  drawn factor. Off (None), templates are drawn like search crops (the reference).

Images are stored encoded (``image_format``: JPEG quality 95 as the reference's ``cv2.imwrite``, or
lossless PNG) in a ``datasets`` Image feature; reading a row gives PIL images.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from r1track.atomic import atomic_write_text
from r1track.boxes import is_valid, xywh_to_xyxy
from r1track.crops import PADS, Crop, crop_region, extract
from r1track.datasets.base import Sequence
from r1track.errors import DataError, R1TrackError
from r1track.families import Family, get_family
from r1track.prompts import (
    PROMPT_IMAGES,
    PROMPTS,
    THREE_IMAGE_VARIANT,
    format_answer,
    format_box,
    grounding_messages,
    tracking_messages,
    with_thinking,
)

# GOT-10k train videos with identical first frames or misaligned boxes (matched as name suffixes).
BAD_GOT10K_TRAIN = ("008628", "008630", "009058", "009059")
ASPECT_EDGES = (-1.75, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.75)  # bin edges of log2(w / h)
IMAGE_FORMATS = ("jpeg", "png")
DATA_FILE = "data.parquet"
INFO_FILE = "pairs.json"
ROW_GROUP = 100  # rows per parquet row group: what `datasets` uses for image data


def _features():
    from datasets import Features, Image, List, Value

    part = {"type": Value("string"), "text": Value("string")}
    message = {"role": Value("string"), "content": List(part)}
    return Features(
        {
            "prompt": List(message),
            "completion": List(message),
            "images": List(Image()),
            "solution": List(Value("float64")),
            "task": Value("string"),
            "image_size": List(Value("int64")),
            "family": Value("string"),
            "sequence": Value("string"),
            "frame_ids": List(Value("int64")),
            "crops": List(List(Value("float64"))),
            "frame_boxes": List(List(Value("float64"))),
        }
    )


@dataclass(frozen=True)
class PairOptions:
    """How pairs are drawn and written. Defaults = the reference recipe; every fix is off."""

    factor_range: tuple[float, float] = (2.0, 8.0)  # context factor ~ U(lo, hi), per image
    jitter: float = 0.2  # crop centre shift ~ U(-jitter, jitter) * crop side, per axis
    sizes: tuple[int, ...] = (336,)  # crop size drawn per sample (the 100k sets: 112, 224, 336, 448)
    pad: str = "constant"  # "constant" (black, reference) or "mean" (frame mean colour)
    family: str = "qwen2.5-vl"
    prompt: str = "current"
    thinking: bool = False
    image_format: str = "jpeg"
    # our fixes (all off by default)
    skip_absent: bool = False  # never draw frames flagged absent or with visible_ratio == 0
    max_gap: int | None = None  # largest |template - search| frame distance
    template_first: bool = False  # template frame strictly before the search frame
    drop_videos: tuple[str, ...] = ()  # sequence-name suffixes to leave out (see BAD_GOT10K_TRAIN)
    clip_boxes: bool = False  # clip boxes to the crop (reference: not clipped)
    balance_aspect: bool = False  # sample by box-shape bin (see the module docstring)
    three_image_rate: float = 0.0
    recent_gap: int = 10  # largest |recent - search| distance in three-image samples
    grounding_rate: float = 0.0
    min_box_size: float = 0.0  # never draw frames whose box has min(w, h) below this (pixels)
    absent_rate: float = 0.0  # share of tracking samples whose search crop misses the target: answer []
    previous_rate: float = 0.0  # share of tracking samples cropped around the previous frame's box
    tracker_factor: float | None = None  # templates (and previous-box crops) centred at this factor
    photometric: float = 0.0  # strength of per-image brightness, contrast, colour and blur jitter (0: off)
    # the processor's resize bounds (None: the family's defaults); they fix the grid that grounding
    # answers on whole frames are written in, so they must be the checkpoint's (preprocessor_config.json)
    min_pixels: int | None = None
    max_pixels: int | None = None

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("factor_range", tuple(float(v) for v in self.factor_range))
        set_("sizes", tuple(int(v) for v in self.sizes))
        set_("drop_videos", tuple(str(v) for v in self.drop_videos))
        lo, hi = self.factor_range if len(self.factor_range) == 2 else (0, -1)
        problems = []
        if not 0 < lo <= hi:
            problems.append(f"factor_range must be (lo, hi) with 0 < lo <= hi, got {self.factor_range}")
        if not 0 <= self.jitter < 0.5:
            problems.append(f"jitter must be in [0, 0.5), got {self.jitter}")
        if not self.sizes or min(self.sizes) <= 0:
            problems.append(f"sizes must be positive, got {self.sizes}")
        if self.pad not in PADS:
            problems.append(f"pad must be one of {PADS}, got {self.pad!r}")
        if self.image_format not in IMAGE_FORMATS:
            problems.append(f"image_format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if self.prompt not in PROMPTS or PROMPT_IMAGES.get(self.prompt) != 2:
            two = [k for k, n in PROMPT_IMAGES.items() if n == 2]
            problems.append(f"prompt must be a two-image variant ({', '.join(two)}), got {self.prompt!r}")
        elif self.three_image_rate > 0 and self.prompt not in THREE_IMAGE_VARIANT:
            problems.append(
                f"prompt {self.prompt!r} has no three-image variant; use one of "
                f"{', '.join(k for k in THREE_IMAGE_VARIANT if PROMPT_IMAGES[k] == 2)}"
            )
        if self.max_gap is not None and self.max_gap < 1:
            problems.append(f"max_gap must be at least 1, got {self.max_gap}")
        if self.recent_gap < 1:
            problems.append(f"recent_gap must be at least 1, got {self.recent_gap}")
        for name in ("three_image_rate", "grounding_rate", "absent_rate", "previous_rate", "photometric"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.tracker_factor is not None and not self.tracker_factor > 0:
            problems.append(f"tracker_factor must be > 0, got {self.tracker_factor}")
        if self.min_box_size < 0:
            problems.append(f"min_box_size must be >= 0, got {self.min_box_size}")
        if problems:
            raise R1TrackError("bad pair options: " + "; ".join(problems))
        get_family(self.family)  # unknown family -> R1TrackError

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------
# The plan: which frames of which videos can be drawn


@dataclass
class _Video:
    seq: Sequence
    frames: np.ndarray  # usable frame indices, ascending
    weights: np.ndarray  # per usable frame: number of valid template frames when it is the search frame


@dataclass
class PairPlan:
    """Usable videos and frames for a seed and options; ``stats`` says what was left out and why."""

    videos: list[_Video]
    seed: int
    options: PairOptions
    bins: list[list[tuple[int, np.ndarray]]] = field(default_factory=list)  # per aspect bin: (video, frames)
    stats: dict = field(default_factory=dict)
    _orders: dict = field(default_factory=dict, repr=False)

    def video_at(self, i: int) -> int:
        """Video of sample ``i`` without balancing: pass ``i // V`` visits all videos in a seeded order."""
        n_pass, k = divmod(i, len(self.videos))
        if n_pass not in self._orders:
            if len(self._orders) > 64:  # bounded: samples arrive in order, old passes are done
                self._orders.clear()
            self._orders[n_pass] = np.random.default_rng([self.seed, 1, n_pass]).permutation(len(self.videos))
        return int(self._orders[n_pass][k])


def present_frames(seq: Sequence) -> np.ndarray:
    """Per frame (bool): a proper box, not flagged absent, not fully hidden (visible ratio 0)."""
    n = min(len(seq.gt), len(seq))
    ok = is_valid(seq.gt[:n])
    if seq.absent is not None:
        ok &= ~np.asarray(seq.absent[:n], dtype=bool)
    if seq.visible_ratio is not None:
        ok &= ~(np.asarray(seq.visible_ratio[:n], dtype=np.float64) == 0)
    return ok


def usable_frames(seq: Sequence, options: PairOptions) -> np.ndarray:
    """Indices of the frames that may be drawn (ascending)."""
    n = min(len(seq.gt), len(seq))
    gt = seq.gt[:n]
    ok = present_frames(seq) if options.skip_absent else is_valid(gt)
    if options.min_box_size > 0:
        ok &= np.minimum(gt[:, 2], gt[:, 3]) >= options.min_box_size
    return np.flatnonzero(ok)


def _template_window(s, options: PairOptions):
    """Closed frame-index range [lo, hi] where the template of search frame(s) ``s`` may lie."""
    s = np.asarray(s, dtype=np.float64)
    gap = np.inf if options.max_gap is None else float(options.max_gap)
    lo = s - gap
    hi = s - 1 if options.template_first else s + gap
    return lo, hi


def _template_counts(frames: np.ndarray, options: PairOptions) -> np.ndarray:
    lo, hi = _template_window(frames, options)
    inside = np.searchsorted(frames, hi, side="right") - np.searchsorted(frames, lo, side="left")
    return inside - (0 if options.template_first else 1)  # the search frame itself is not a template


def _template_candidates(frames: np.ndarray, s: int, options: PairOptions) -> np.ndarray:
    lo, hi = _template_window(s, options)
    return frames[(frames >= lo) & (frames <= hi) & (frames != s)]


def _recent_candidates(frames: np.ndarray, s: int, options: PairOptions) -> np.ndarray:
    lo = s - options.recent_gap
    hi = s - 1 if options.template_first else s + options.recent_gap
    return frames[(frames >= lo) & (frames <= hi) & (frames != s)]


def _aspect_bins(boxes: np.ndarray) -> np.ndarray:
    return np.digitize(np.log2(boxes[:, 2] / boxes[:, 3]), ASPECT_EDGES)


def dropped(seq: Sequence, options: PairOptions) -> bool:
    """The sequence is left out of every pair kind (its name ends with one of ``drop_videos``)."""
    return any(seq.name.endswith(suffix) for suffix in options.drop_videos)


def plan_pairs(sequences: Iterable[Sequence], seed: int, options: PairOptions | None = None) -> PairPlan:
    """Select the usable videos and frames; raises R1TrackError when no video can give a pair."""
    options = options or PairOptions()
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise R1TrackError(f"seed must be a non-negative integer, got {seed!r}")
    videos, stats = [], Counter[str]()
    for seq in sequences:
        stats["videos_total"] += 1
        stats["frames_total"] += len(seq)
        if dropped(seq, options):
            stats["videos_dropped"] += 1
            continue
        frames = usable_frames(seq, options)
        stats["frames_usable"] += len(frames)
        weights = _template_counts(frames, options) if len(frames) else np.zeros(0, dtype=np.int64)
        if weights.sum() <= 0:
            stats["videos_without_pairs"] += 1
            continue
        stats["videos_with_language"] += bool(seq.language)
        videos.append(_Video(seq, frames, weights))
    if not videos:
        raise R1TrackError(f"no sequence has two usable frames to make a pair from ({dict(stats)})")
    stats["videos_used"] = len(videos)
    plan = PairPlan(videos, int(seed), options, stats=dict(stats))
    if options.balance_aspect:
        members: dict[int, list] = {}
        for vi, v in enumerate(videos):
            searchable = v.frames[v.weights > 0]
            bins = _aspect_bins(v.seq.gt[searchable])
            for b in np.unique(bins):
                members.setdefault(int(b), []).append((vi, searchable[bins == b]))
        plan.bins = [members[b] for b in sorted(members)]
        plan.stats["aspect_bins"] = {int(b): sum(len(f) for _, f in members[b]) for b in sorted(members)}
    return plan


# ----------------------------------------------------------------------------------------------------
# One sample


def crop_box(box_xywh, crop: Crop, family: Family, clip: bool = False) -> list[float]:
    """A frame box as the answer writes it in ``crop``: mapped, optionally clipped, encoded, truncated."""
    xyxy = xywh_to_xyxy(crop.to_crop(box_xywh))
    if clip:
        xyxy = np.clip(xyxy, 0, crop.size)
    return _truncate(family.encode(xyxy, (crop.size, crop.size)))


def frame_box(box_xywh, image_size, family: Family, clip: bool = False) -> list[float]:
    """A frame box as a grounding answer writes it on the whole ``(w, h)`` frame."""
    xyxy = xywh_to_xyxy(box_xywh)
    if clip:
        w, h = image_size
        xyxy = np.clip(xyxy, 0, [w, h, w, h])
    return _truncate(family.encode(xyxy, image_size))


def _truncate(values) -> list[float]:
    return [float(v) for v in np.trunc(np.asarray(values, dtype=np.float64)) + 0.0]  # + 0.0: no -0.0


def grounding_answer(box, description: str) -> str:
    """Qwen's native grounding reply for one box (what ``parsing.parse_grounding`` reads)."""
    label = json.dumps(description.strip(), ensure_ascii=False)
    return f'```json\n[\n\t{{"bbox_2d": {format_box(box)}, "label": {label}}}\n]\n```'


def encode_image(rgb: np.ndarray, fmt: str) -> dict:
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    else:
        ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise R1TrackError(f"cannot encode a {rgb.shape} image as {fmt}")
    return {"bytes": buf.tobytes(), "path": None}


def assistant_message(text: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def _grounding_prompt(description: str, thinking: bool) -> list[dict]:
    """The grounding query; thinking recipes get the same prefix as tracking (one reward rule for all)."""
    messages = grounding_messages(description)
    if thinking:
        text = messages[-1]["content"][-1]
        text["text"] = with_thinking(text["text"], True)
    return messages


def _random_crop(box, size: int, rng: np.random.Generator, options: PairOptions) -> Crop:
    factor = rng.uniform(*options.factor_range)
    jitter = rng.uniform(-options.jitter, options.jitter, size=2)
    return crop_region(box, factor, size, jitter=(float(jitter[0]), float(jitter[1])))


def _previous_crop(seq: Sequence, frames: np.ndarray, s: int, size: int, rng, options: PairOptions) -> Crop | None:
    """The search crop around the box of the usable frame before ``s`` (None for the first one)."""
    before = frames[frames < s]
    if not len(before):
        return None
    factor = options.tracker_factor or rng.uniform(*options.factor_range)
    return crop_region(seq.gt[int(before[-1])], factor, size)


def _missing_crop(box, crop: Crop, rng: np.random.Generator) -> Crop:
    """``crop`` moved in a random direction until none of the target is inside (the "lost" state)."""
    angle = rng.uniform(0, 2 * np.pi)
    for step in np.linspace(0.6, 3.0, 25):
        dx, dy = step * crop.side * np.cos(angle), step * crop.side * np.sin(angle)
        moved = Crop(crop.x1 + int(round(dx)), crop.y1 + int(round(dy)), crop.side, crop.size)
        if moved.visible_share(box) == 0:
            return moved
    raise AssertionError("unreachable: a shift of 3 crop sides always leaves the target")


def _photometric(rgb: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and per-channel gain jitter, and a blur half the time, scaled by ``strength``."""
    if strength <= 0:
        return rgb
    img = rgb.astype(np.float32)
    gain = 1 + strength * rng.uniform(-0.4, 0.4, size=3)
    contrast = 1 + strength * rng.uniform(-0.5, 0.5)
    mean = img.mean()
    img = (img - mean) * contrast + mean * (1 + strength * rng.uniform(-0.4, 0.4))
    img = np.clip(img * gain, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        k = 1 + 2 * int(rng.integers(0, 1 + round(2 * strength)))
        img = cv2.GaussianBlur(img, (k, k), 0) if k > 1 else img
    return img


def make_sample(plan: PairPlan, i: int) -> dict:
    """Sample ``i`` of the plan as a row (images encoded); depends only on (seed, i) and the plan."""
    o = plan.options
    family = get_family(o.family, o.min_pixels, o.max_pixels)
    rng = np.random.default_rng([plan.seed, 0, i])
    u_ground, u_three = rng.random(2)
    if o.balance_aspect:
        members = plan.bins[rng.integers(len(plan.bins))]
        vi, in_bin = members[rng.integers(len(members))]
        s = int(in_bin[rng.integers(len(in_bin))])
    else:
        vi = plan.video_at(i)
        v = plan.videos[vi]
        s = int(rng.choice(v.frames, p=v.weights / v.weights.sum()))
    v = plan.videos[vi]
    seq = v.seq
    size = int(o.sizes[rng.integers(len(o.sizes))])

    if seq.language and u_ground < o.grounding_rate:
        frame = seq.frame(s)
        h, w = frame.shape[:2]
        solution = frame_box(seq.gt[s], (w, h), family, o.clip_boxes)
        side = float(max(w, h))
        return {
            "prompt": _grounding_prompt(seq.language, o.thinking),
            "completion": assistant_message(grounding_answer(solution, seq.language)),
            "images": [encode_image(frame, o.image_format)],
            "solution": solution,
            "task": "ground",
            "image_size": [w, h],
            "family": family.name,
            "sequence": seq.name,
            "frame_ids": [s],
            "crops": [[0.0, 0.0, side, side]],
            "frame_boxes": [seq.gt[s].tolist()],
        }

    ids = None
    if u_three < o.three_image_rate:
        templates = _template_candidates(v.frames, s, o)
        recent = _recent_candidates(v.frames, s, o)
        # keep only recent frames that leave a template: one before them when template_first
        if o.template_first:
            recent = recent[np.searchsorted(templates, recent) > 0]
        else:
            recent = recent[len(templates) - np.isin(recent, templates) > 0]
        if len(recent):
            r = int(rng.choice(recent))
            templates = templates[(templates < r) if o.template_first else (templates != r)]
            ids = [int(rng.choice(templates)), r, s]
    if ids is None:
        ids = [int(rng.choice(_template_candidates(v.frames, s, o))), s]
    crops = [_random_crop(seq.gt[f], size, rng, o) for f in ids]
    if o.tracker_factor:  # templates as the tracker cuts them (the draws above keep the random stream)
        crops[:-1] = [crop_region(seq.gt[f], o.tracker_factor, size) for f in ids[:-1]]
    if o.previous_rate > 0 and rng.random() < o.previous_rate:  # no draw when off: old sets stay identical
        crops[-1] = _previous_crop(seq, v.frames, s, size, rng, o) or crops[-1]
    absent = o.absent_rate > 0 and rng.random() < o.absent_rate  # no draw when off: old sets stay identical
    if absent:
        crops[-1] = _missing_crop(seq.gt[s], crops[-1], rng)
    boxes = [crop_box(seq.gt[f], c, family, o.clip_boxes) for f, c in zip(ids, crops)]
    if absent:
        boxes[-1] = []
    images = [
        encode_image(_photometric(extract(seq.frame(f), c, o.pad), rng, o.photometric), o.image_format)
        for f, c in zip(ids, crops)
    ]
    variant = o.prompt if len(ids) == 2 else THREE_IMAGE_VARIANT[o.prompt]
    prompt = tracking_messages([format_box(b) for b in boxes[:-1]], variant, o.thinking, n_images=len(ids))
    return {
        "prompt": prompt,
        "completion": assistant_message(format_answer(boxes[-1])),
        "images": images,
        "solution": boxes[-1],
        "task": "track",
        "image_size": [size, size],
        "family": family.name,
        "sequence": seq.name,
        "frame_ids": ids,
        "crops": [list(map(float, c.as_list())) for c in crops],
        "frame_boxes": [seq.gt[f].tolist() for f in ids],
    }


# ----------------------------------------------------------------------------------------------------
# Many samples, in parallel

_WORKER: dict = {}  # the plan of a worker process, set once by the pool initializer (never in the parent)


def _init_worker(plan: PairPlan) -> None:
    _WORKER["plan"] = plan


def _worker_rows(indices: list[int]) -> list[dict]:
    return [make_sample(_WORKER["plan"], i) for i in indices]


def iter_samples(plan: PairPlan, samples: int, num_proc: int = 1, progress: bool = True) -> Iterator[dict]:
    """Rows 0..samples-1 in order; ``num_proc > 1`` builds them in worker processes (same result)."""
    if samples < 1:
        raise R1TrackError(f"samples must be at least 1, got {samples}")
    bar = tqdm(total=samples, desc="pairs", unit="pair", disable=not progress)
    try:
        if num_proc <= 1:
            for i in range(samples):
                yield make_sample(plan, i)
                bar.update(1)
            return
        chunk = 16
        chunks = [list(range(a, min(a + chunk, samples))) for a in range(0, samples, chunk)]
        ctx = multiprocessing.get_context("spawn")  # no fork: OpenCV and tokenizer threads do not survive it
        with ctx.Pool(num_proc, initializer=_init_worker, initargs=(plan,)) as pool:
            for rows in pool.imap(_worker_rows, chunks):
                yield from rows
                bar.update(len(rows))
    finally:
        bar.close()


def build_pairs(
    sequences: Iterable[Sequence],
    samples: int | None = None,
    seed: int = 0,
    options: PairOptions | None = None,
    num_proc: int = 1,
    progress: bool = True,
):
    """The pair dataset (in memory) with the columns of docs/architecture.md.

    ``samples`` defaults to one per usable video (one pass, as the reference); see the module docstring
    for how more or fewer samples are drawn.
    """
    from datasets import Dataset

    plan = plan_pairs(sequences, seed, options)
    samples = len(plan.videos) if samples is None else samples
    rows = list(iter_samples(plan, samples, num_proc, progress))
    return Dataset.from_list(rows, features=_features())


def _count(counts: Counter, row: dict) -> None:
    counts["samples"] += 1
    counts[row["task"]] += 1
    if row["task"] == "track":
        counts[f"{len(row['images'])}_image"] += 1


def refuse_existing(out: str | Path, overwrite: bool) -> None:
    """A pair dataset already in ``out`` is kept unless ``overwrite``."""
    out = Path(out)
    if not overwrite and ((out / DATA_FILE).exists() or (out / INFO_FILE).exists()):
        raise R1TrackError(f"{out} already holds a pair dataset; pass --overwrite to replace it")


def write_rows(rows: Iterable[dict], out: str | Path, info: dict, overwrite: bool = False) -> dict:
    """Write pair rows to ``out/data.parquet`` (streamed, row groups of 100) and ``info`` plus the counts to
    ``out/pairs.json``; returns the info.

    Rows go to the parquet file as they are made, so memory stays flat for 100k-sample sets; the file is
    what ``Dataset.to_parquet`` writes (same schema and ``datasets`` feature metadata). Both files are
    written under temporary names and renamed at the end; existing files are kept unless ``overwrite``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from r1track import __version__

    out = Path(out)
    data, info_path = out / DATA_FILE, out / INFO_FILE
    refuse_existing(out, overwrite)
    features = _features()
    schema = features.arrow_schema
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{DATA_FILE}.partial"
    counts: Counter = Counter()
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch = []
            for row in rows:
                _count(counts, row)
                batch.append(features.encode_example(row))
                if len(batch) == ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        os.replace(tmp, data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    info = {**info, "samples": counts["samples"], "counts": dict(counts), "r1track": __version__}
    atomic_write_text(info_path, json.dumps(info, indent=2, default=str) + "\n")
    return info


def write_pairs(
    sequences: Iterable[Sequence],
    out: str | Path,
    samples: int | None = None,
    seed: int = 0,
    options: PairOptions | None = None,
    num_proc: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    source: dict | None = None,
) -> dict:
    """GT-jittered pairs written by ``write_rows``; returns the info (options, plan statistics, counts)."""
    options = options or PairOptions()
    plan = plan_pairs(sequences, seed, options)
    samples = len(plan.videos) if samples is None else samples
    info = {"source": source or {}, "seed": int(seed), "options": options.to_dict(), "plan": plan.stats}
    return write_rows(iter_samples(plan, samples, num_proc, progress), out, info, overwrite)


def load_pairs(path: str | Path | list, cache_dir: str | None = None):
    """A pair dataset written by ``write_pairs`` (a directory or its data.parquet), images decoded as PIL;
    several (a list) are concatenated in order, e.g. every closed-loop round's pairs."""
    from datasets import Dataset, concatenate_datasets

    if isinstance(path, (list, tuple)):
        if not path:
            raise R1TrackError("no pair dataset given (an empty list)")
        parts = [load_pairs(p, cache_dir) for p in path]
        for p, part in zip(path[1:], parts[1:]):
            if part.features != parts[0].features:
                raise DataError(p, f"its columns differ from those of {path[0]}: pairs of another r1track version?")
        return concatenate_datasets(parts)
    path = Path(path)
    file = path / DATA_FILE if path.is_dir() else path
    if not file.is_file():
        raise DataError(file, "no pair dataset here (expected a data.parquet written by build-pairs)")
    try:
        return Dataset.from_parquet(str(file), cache_dir=cache_dir)
    except Exception as e:  # a truncated or foreign file: say which
        raise DataError(file, f"cannot read the pair dataset: {e}") from e


# ----------------------------------------------------------------------------------------------------
# Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from r1track import datasets as tracking_datasets

    d = PairOptions()
    parser.add_argument("--dataset", required=True, help="dataset name (r1track.datasets), e.g. got10k")
    parser.add_argument("--root", required=True, help="dataset root directory")
    parser.add_argument("--split", default="train", help="dataset split (default: train)")
    tracking_datasets.add_options(parser)
    parser.add_argument("--out", required=True, help="output directory (data.parquet + pairs.json)")
    parser.add_argument("--samples", type=int, default=None, help="default: one per usable video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(d.sizes), help="crop sizes (px)")
    parser.add_argument("--factor-range", type=float, nargs=2, default=list(d.factor_range))
    parser.add_argument("--jitter", type=float, default=d.jitter)
    parser.add_argument("--family", default=d.family)
    parser.add_argument("--prompt", default=d.prompt, help="two-image prompt variant")
    parser.add_argument("--thinking", action="store_true", help="prompt with the thinking prefix")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default=d.image_format)
    fixes = parser.add_argument_group("fixes to the reference recipe (all off by default)")
    fixes.add_argument("--skip-absent", action="store_true", help="never draw absent/fully hidden frames")
    fixes.add_argument("--max-gap", type=int, default=None, help="largest template-search frame distance")
    fixes.add_argument("--template-first", action="store_true", help="template frame before search frame")
    fixes.add_argument(
        "--drop-bad-videos",
        action="store_true",
        help=f"leave out the known bad GOT-10k train videos {', '.join(BAD_GOT10K_TRAIN)}",
    )
    fixes.add_argument(
        "--drop-videos",
        nargs="+",
        default=[],
        metavar="SUFFIX",
        help="leave out sequences whose name ends with one of these",
    )
    fixes.add_argument("--clip-boxes", action="store_true", help="clip boxes to the crop")
    fixes.add_argument("--pad", choices=PADS, default=d.pad)
    fixes.add_argument("--balance-aspect", action="store_true", help="sample evenly over box-shape bins")
    fixes.add_argument("--three-image-rate", type=float, default=d.three_image_rate)
    fixes.add_argument("--recent-gap", type=int, default=d.recent_gap)
    fixes.add_argument("--grounding-rate", type=float, default=d.grounding_rate)
    fixes.add_argument("--min-box-size", type=float, default=d.min_box_size)
    fixes.add_argument(
        "--absent-rate",
        type=float,
        default=d.absent_rate,
        help="share of tracking samples whose search crop misses the target (answer [])",
    )
    fixes.add_argument(
        "--previous-rate",
        type=float,
        default=d.previous_rate,
        help="share of tracking samples whose search crop is centred on the previous frame's box (real motion)",
    )
    fixes.add_argument(
        "--tracker-factor",
        type=float,
        default=d.tracker_factor,
        help="cut templates (and --previous-rate crops) centred at this factor, as the tracker does",
    )
    fixes.add_argument(
        "--photometric",
        type=float,
        default=d.photometric,
        help="strength (0..1) of brightness, contrast, colour and blur jitter per image",
    )
    parser.add_argument(
        "--min-pixels",
        type=int,
        default=None,
        help="the model processor's minimum image pixels (grounding answers' grid)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="the model processor's maximum image pixels (grounding answers' grid)",
    )
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true")
    from r1track.training.rollouts import RolloutOptions  # rollouts builds on this module

    r, rd = (
        parser.add_argument_group("closed-loop pairs: the search crops of a policy's own tracking runs"),
        RolloutOptions(),
    )
    r.add_argument(
        "--from-rollouts",
        metavar="MODEL",
        default=None,
        help="track the sequences with this model ('nano', a path, a hub id) and make pairs of its crops",
    )
    r.add_argument("--rollout-backend", default="transformers", help="backend running the policy")
    r.add_argument("--rollout-device", default=None, help="device for the transformers backend (cpu, cuda)")
    r.add_argument("--rollout-max-new-tokens", type=int, default=32)
    r.add_argument("--rollout-runs", type=int, default=rd.runs_per_sequence, help="tracking runs per sequence")
    r.add_argument("--rollout-frames", type=int, default=rd.max_frames, help="frames tracked per run")
    r.add_argument("--rollout-batch-size", type=int, default=rd.batch_size, help="runs per model call")
    r.add_argument(
        "--min-visible",
        type=float,
        default=rd.min_visible,
        help="least share of the target inside the crop for a box answer (else [])",
    )
    r.add_argument(
        "--jittered-rate",
        type=float,
        default=0.0,
        help="share of GT-jittered pairs (these options) mixed in with the rollout pairs",
    )


def options_from_args(args: argparse.Namespace) -> PairOptions:
    drop = tuple(args.drop_videos) + (BAD_GOT10K_TRAIN if args.drop_bad_videos else ())
    names = {f.name for f in fields(PairOptions)}
    given = {k: v for k, v in vars(args).items() if k in names and k != "drop_videos"}
    return PairOptions(**given, drop_videos=drop)


def run(args: argparse.Namespace) -> int:
    from r1track import datasets as tracking_datasets
    from r1track.trackers import tracker_factory

    options = options_from_args(args)
    out = Path(args.out)
    refuse_existing(out, args.overwrite)  # before loading data or a model
    sequences = tracking_datasets.load_from_args(args)
    source = {"dataset": args.dataset, "root": str(args.root), "split": args.split}
    if args.from_rollouts:
        from r1track.training.rollouts import RolloutOptions, write_rollout_pairs

        rollout = RolloutOptions(args.rollout_runs, args.rollout_frames, args.min_visible, args.rollout_batch_size)
        backend_options = {"max_new_tokens": args.rollout_max_new_tokens}
        if args.rollout_device:
            backend_options["device"] = args.rollout_device
        factory = tracker_factory(args.from_rollouts, args.rollout_backend, **backend_options)
        info = write_rollout_pairs(
            sequences,
            factory,
            out,
            args.seed,
            rollout,
            options,
            args.jittered_rate,
            args.overwrite,
            source={**source, "policy": str(args.from_rollouts)},
        )
        st = info["states"]
        print(
            f"rollouts: {st['states']} states, {st['absent']} with the target absent or outside the crop, "
            f"{st['drifted']} drifted (IoU < 0.5), {st['lost']} lost (IoU 0)"
        )
    else:
        info = write_pairs(
            sequences, out, args.samples, args.seed, options, args.num_proc, args.overwrite, source=source
        )
    c = info["counts"]
    print(
        f"wrote {c['samples']} pairs ({c.get('track', 0)} tracking, {c.get('3_image', 0)} of them with "
        f"3 images; {c.get('ground', 0)} grounding) from {info.get('plan', {}).get('videos_used', len(sequences))} "
        f"sequences to {out / DATA_FILE}"
    )
    return 0
