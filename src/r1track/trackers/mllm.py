"""R1-Track inference: a multimodal LLM asked "where is the object of image 1 now, in image 2?".

Per frame: a square crop of the frame centred on the previous box (``search_factor`` x the box's
geometric-mean size, resized to ``crop_size``) goes to the model with the template crop of the first
frame and the template box written in model coordinates; the reply's box is decoded from model
coordinates to crop pixels, mapped to the frame and clipped to it.

Failure policy: a reply without a usable box, or whose box is degenerate (non-finite, or narrower or
shorter than 1 px once clipped to the frame, which includes inverted corners), keeps the previous
frame box -- in frame pixels, so failures never drift -- and counts in ``self.unparsable`` or
``self.rejected`` (``self.failures`` is their sum). Outputs are
always finite, inside the frame, with positive size.

Absence: the answer ``[]`` says the target is not in the search crop (models trained on rollout pairs
give it; ``parsing.parse_absent``). The tracker keeps the previous box, counts it in ``self.absences``
(not a failure) and searches a region ``absent_search_scale`` times wider on the next frame; each further
"absent" answer in a row widens it by that factor again, up to ``absent_search_max`` times the normal
region (a lost target is looked for ever wider, as long-term trackers re-detect).

Optional improvements (all off by default, so the default is the reference method):
- ``max_scale_change=r``: the new box's width and height may change by at most a factor ``r`` per frame
  (clamped around the predicted centre). Crops at factor 4 make one-frame scale jumps of more than ~1.5
  almost always errors (a distractor, a part of the object).
- ``scale_smoothing=a``: the new width and height move only ``a`` (0 < a <= 1) of the way from the
  previous box's to the answer's, the centre is the answer's (the scale learning rate of Siamese
  trackers). The search crop is a multiple of the box, so a box that is too large makes the target look
  smaller in the next crop and the next answer larger again; smoothing damps that loop.
- ``max_shift=s``: the new box's centre may move at most ``s`` x the previous box's geometric-mean size
  per frame (clamped along the answer's direction). A jump to a look-alike next to the target (a
  pedestrian in a crowd) is a larger step than most objects make between frames.
- ``scale_range=(lo, hi)``: the box's geometric-mean size stays within ``lo``..``hi`` x the first
  frame's (centre and aspect ratio as answered), the minimum and maximum scale factors of DSST-style
  correlation trackers. Per-frame limits cannot stop a box that shrinks a little every frame (the
  pedestrians of the real held-out video end at a few percent of their area).
- ``template_refresh=n``: at most every ``n`` frames, replace the template by a crop of the current
  frame around the current box, but only when the tracker is *stable*: the last
  ``REFRESH_STREAK`` answers all parsed, each consecutive pair of boxes overlaps with IoU >=
  ``REFRESH_IOU``, and the box area is within a factor 2 of the original template box's. This is
  temporal consistency, not correctness: a tracker locked on a distractor is stable too, which is why
  it is off by default.
- ``calibrate_factors=(3, 3.5, 4, 4.5)``: this sequence's search factor is chosen at ``init`` among these:
  the model is asked for the given box in shifted search crops of the first frame at each factor, and
  the factor whose answers have the box's size is kept (``self.factor``; ``self.calibration``: each
  factor's mean log answered-to-true area). A nano model's answered size follows the crop more than the
  target, so in the loop the box settles where the answers come out right-sized, and that factor
  differs between objects.
- ``three_image=True``: three images per query -- the template, a crop (``template_factor``) of the most
  recent frame around the box predicted there, and the search crop -- with the ``three`` prompt
  (``current`` -> ``three``, ``direct`` -> ``three-direct``). Models must be trained for it.

Batching: ``prepare(frame) -> Request`` and ``commit(reply) -> box`` split ``update`` so a runner can
advance many sequences with one batched ``backend.generate`` call.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable

import numpy as np

from r1track.backends.base import Backend, Request
from r1track.boxes import iou, is_valid, xywh_to_xyxy, xyxy_to_xywh
from r1track.crops import PADS, Crop, clip_box, crop_region, extract
from r1track.errors import R1TrackError
from r1track.families import Family, get_family
from r1track.parsing import parse_absent, parse_box, parse_grounding
from r1track.prompts import (
    PROMPT_IMAGES,
    PROMPTS,
    THREE_IMAGE_VARIANT,
    format_box,
    grounding_messages,
    tracking_messages,
)
from r1track.trackers.base import Tracker

REFRESH_STREAK = 3
REFRESH_IOU = 0.6
# search-crop centre shifts (fractions of the crop side) of the frame-0 calibration requests
CALIBRATION_SHIFTS = ((0.0, 0.0), (0.1, 0.0), (-0.1, 0.0), (0.0, 0.1), (0.0, -0.1))


class MLLMTracker(Tracker):
    """Single-object tracker driven by a multimodal LLM backend (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        family: str | Family | None = None,
        prompt: str = "current",
        template_factor: float = 4.0,
        search_factor: float = 4.0,
        crop_size: int = 336,
        thinking: bool = False,
        pad: str = "constant",
        max_scale_change: float | None = None,
        scale_smoothing: float | None = None,
        max_shift: float | None = None,
        scale_range: tuple[float, float] | None = None,
        template_refresh: int | None = None,
        three_image: bool = False,
        absent_search_scale: float = 1.5,
        absent_search_max: float | None = None,
        calibrate_factors: tuple[float, ...] | None = None,
        name: str | None = None,
    ):
        self.backend = backend
        self.family = _resolve_family(backend, family)
        if prompt not in PROMPTS:
            raise R1TrackError(f"unknown prompt {prompt!r}; choose one of {', '.join(PROMPTS)}")
        if three_image:
            if prompt not in THREE_IMAGE_VARIANT:
                raise R1TrackError(f"prompt {prompt!r} has no three-image form; use current or direct")
            prompt = THREE_IMAGE_VARIANT[prompt]
        elif PROMPT_IMAGES[prompt] != 2:
            raise R1TrackError(f"prompt {prompt!r} needs three images: add --three-image")
        if not (template_factor > 0 and search_factor > 0 and crop_size >= 28):
            raise R1TrackError("template/search factors must be positive and the crop size at least 28 px")
        if pad not in PADS:
            raise R1TrackError(f"pad must be one of {', '.join(PADS)}")
        if max_scale_change is not None and not max_scale_change > 1:
            raise R1TrackError(f"max_scale_change must be > 1 (a ratio), got {max_scale_change}")
        if scale_smoothing is not None and not 0 < scale_smoothing <= 1:
            raise R1TrackError(f"scale_smoothing must be in (0, 1], got {scale_smoothing}")
        if max_shift is not None and not max_shift > 0:
            raise R1TrackError(f"max_shift must be > 0 (a fraction of the box size), got {max_shift}")
        bounds = None if scale_range is None else np.asarray(scale_range, dtype=object).ravel()
        numbers = bounds is not None and bounds.size == 2 and all(isinstance(v, (int, float)) for v in bounds)
        if bounds is not None and not (numbers and 0 < bounds[0] <= 1 <= bounds[1]):
            raise R1TrackError(f"scale_range must be (lo, hi) with 0 < lo <= 1 <= hi, got {scale_range!r}")
        if not absent_search_scale >= 1:
            raise R1TrackError(f"absent_search_scale must be >= 1, got {absent_search_scale}")
        if absent_search_max is not None and not absent_search_max >= absent_search_scale:
            raise R1TrackError(f"absent_search_max must be >= absent_search_scale, got {absent_search_max}")
        factors = None if calibrate_factors is None else np.atleast_1d(np.asarray(calibrate_factors, dtype=float))
        if factors is not None and not (factors.ndim == 1 and factors.size and (factors > 0).all()):
            raise R1TrackError(f"calibrate_factors must be positive search factors, got {calibrate_factors!r}")
        if template_refresh is not None and template_refresh < 1:
            raise R1TrackError(f"template_refresh must be >= 1 frames, got {template_refresh}")
        self.prompt = prompt
        self.template_factor = float(template_factor)
        self.search_factor = float(search_factor)
        self.crop_size = int(crop_size)
        self.thinking = bool(thinking)
        self.pad = pad
        self.max_scale_change = max_scale_change
        self.scale_smoothing = scale_smoothing
        self.max_shift = max_shift
        self.scale_range = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.template_refresh = template_refresh
        self.three_image = bool(three_image)
        self.absent_search_scale = float(absent_search_scale)
        # None (one step of widening, however many "absent" answers follow) stays None, so run manifests
        # written before the option existed still match
        self.absent_search_max = None if absent_search_max is None else float(absent_search_max)
        self.calibrate_factors = None if factors is None else tuple(float(f) for f in factors)
        self.factor = self.search_factor  # this sequence's search factor (calibrate_factors: chosen at init)
        self.calibration: dict[float, float] = {}  # candidate factor -> mean log answered / true area
        self.name = name or _default_name(backend)
        self.truth: np.ndarray | None = None  # set by runners when wants_ground_truth
        self.box: np.ndarray | None = None
        self.unparsable = self.rejected = 0  # answers without a box, answers whose box was refused
        self.absences = 0
        self.search_crop: Crop | None = None  # the last search region (rollout pairs record it)
        self._absent_run = 0  # "absent" answers in a row: each widens the next search
        self.frame_index = 0
        self.template: np.ndarray | None = None
        self.template_text = ""
        self.template_crop: Crop | None = None
        self._template_box: np.ndarray | None = None
        self._recent: tuple[np.ndarray, str] | None = None  # three-image view: last frame crop, its box
        self._history: list[tuple[bool, np.ndarray]] = []  # (answer usable, box) of the last frames
        self._since_refresh = 0
        self._pending: tuple | None = None  # (search crop, frame size, frame) between prepare and commit

    # ------------------------------------------------------------------ properties the runner reads
    @property
    def wants_ground_truth(self) -> bool:
        """Only diagnostic backends (the oracle) ask for the ground truth."""
        return bool(getattr(self.backend, "wants_ground_truth", False))

    @property
    def failures(self) -> int:
        return self.unparsable + self.rejected

    @property
    def deterministic(self) -> bool:  # type: ignore[override]  # greedy decoding unless the backend says otherwise
        return bool(getattr(self.backend, "deterministic", True))

    # ------------------------------------------------------------------ tracking
    def init(self, image: np.ndarray, box=None, text: str | None = None) -> None:
        image = _as_frame(image)
        size = (image.shape[1], image.shape[0])
        self.frame_index, self.unparsable, self.rejected, self.absences = 0, 0, 0, 0
        self._pending, self._absent_run = None, 0
        if box is None:
            if not text:
                raise ValueError("init needs a box (x, y, w, h) or a text description")
            box = self._ground(image, text)
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"the initial box must be 4 finite numbers (x, y, w, h) with w, h > 0, got {box!r}")
        inside = clip_box(box, size)
        if not is_valid(inside):
            raise ValueError(f"the initial box {box.tolist()} has no area inside the {size[0]}x{size[1]} frame")
        self.box = inside
        self._template_box = box
        self._set_template(image, box)
        self._recent = (self.template, self.template_text)
        self._history, self._since_refresh = [], 0
        self.factor, self.calibration = self.search_factor, {}
        if self.calibrate_factors:
            self._calibrate(image)

    def update(self, image: np.ndarray) -> np.ndarray:
        return self.commit(self.backend.generate([self.prepare(image)])[0])

    def prepare(self, image: np.ndarray) -> Request:
        """The request for the next frame: template(s) and the search crop around the previous box."""
        if self.box is None:
            raise RuntimeError("prepare() called before init()")
        image = _as_frame(image)
        self.frame_index += 1
        widest = self.absent_search_scale if self.absent_search_max is None else self.absent_search_max
        factor = self.factor * min(self.absent_search_scale**self._absent_run, widest)
        crop = self.search_crop = crop_region(self.box, factor, self.crop_size)
        search = extract(image, crop, self.pad)
        if self.three_image:
            images = [self.template, self._recent[0], search]
            texts = [self.template_text, self._recent[1]]
        else:
            images, texts = [self.template, search], [self.template_text]
        meta: dict[str, Any] = {
            "kind": "track",
            "family": self.family.name,
            "image_size": (self.crop_size, self.crop_size),
        }
        truth = self._truth(self.frame_index)
        if truth is not None:
            meta["truth"] = xywh_to_xyxy(crop.to_crop(truth))
        keep_frame = self.three_image or self.template_refresh is not None
        self._pending = (crop, (image.shape[1], image.shape[0]), image if keep_frame else None)
        messages = tracking_messages(texts, self.prompt, self.thinking, n_images=len(images))
        return Request(images=images, messages=messages, meta=meta)

    def commit(self, reply: str) -> np.ndarray:
        """The frame's box from the model's reply to the last ``prepare`` (previous box on failure)."""
        if self._pending is None:
            raise RuntimeError("commit() called without a prepared request")
        crop, size, image = self._pending
        self._pending = None
        model_xyxy = parse_box(reply)
        box = None if model_xyxy is None else self._answer_box(model_xyxy, crop, size)
        ok = box is not None
        absent = not ok and parse_absent(reply)
        self._absent_run = self._absent_run + 1 if absent else 0
        if ok:
            self.box = box
        elif absent:
            self.absences += 1
        elif model_xyxy is None:
            self.unparsable += 1
        else:
            self.rejected += 1
        self._after(image, ok)
        return self.box.copy()

    # ------------------------------------------------------------------ helpers
    def _answer_box(self, model_xyxy: np.ndarray, crop: Crop, size, limits: bool = True) -> np.ndarray | None:
        """The answer in frame pixels, clipped to the frame (``limits``: after the scale and step options)."""
        with np.errstate(all="ignore"):
            crop_xyxy = self.family.decode(model_xyxy, (crop.size, crop.size))
            box = crop.to_frame(xyxy_to_xywh(crop_xyxy))
            if not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
                return None
            if limits and self.max_scale_change is not None:
                box = _limit_scale(box, self.box, self.max_scale_change)
            if limits and self.scale_smoothing is not None:
                box = _smooth_scale(box, self.box, self.scale_smoothing)
            if limits and self.max_shift is not None:
                box = _limit_shift(box, self.box, self.max_shift)
            if limits and self.scale_range is not None:
                box = _limit_size(box, self._template_box, self.scale_range)
            box = clip_box(box, size)
        if not np.isfinite(box).all() or box[2] < 1 or box[3] < 1:
            return None
        return box

    def _after(self, image, ok: bool) -> None:
        """Bookkeeping for the optional three-image view and template refresh."""
        if ok and self.three_image:
            self._recent = self._view(image, self.box)[:2]
        if self.template_refresh is None:
            return
        self._history = (self._history + [(ok, self.box.copy())])[-REFRESH_STREAK:]
        self._since_refresh += 1
        if self._since_refresh >= self.template_refresh and self._stable():
            self._set_template(image, self.box)
            self._since_refresh = 0

    def _stable(self) -> bool:
        if len(self._history) < REFRESH_STREAK or not all(ok for ok, _ in self._history):
            return False
        boxes = np.array([b for _, b in self._history])
        if (iou(boxes[1:], boxes[:-1]) < REFRESH_IOU).any():
            return False
        ratio = (boxes[-1, 2] * boxes[-1, 3]) / (self._template_box[2] * self._template_box[3])
        return 0.5 <= ratio <= 2.0

    def _view(self, image: np.ndarray, box) -> tuple[np.ndarray, str, Crop]:
        """A template-style crop around ``box``, the box written in model coordinates, the crop."""
        crop = crop_region(box, self.template_factor, self.crop_size)
        in_crop = xywh_to_xyxy(crop.to_crop(box))
        text = format_box(self.family.encode(in_crop, (self.crop_size, self.crop_size)))
        return extract(image, crop, self.pad), text, crop

    def _set_template(self, image: np.ndarray, box) -> None:
        self.template, self.template_text, self.template_crop = self._view(image, box)

    def _calibrate(self, image: np.ndarray) -> None:
        """Choose this sequence's search factor: ask the model for the given box in search crops of the
        first frame, shifted as the previous box is after motion, at each candidate factor, and keep the
        factor whose answers have the box's size (the smallest mean |log answered area / true area|)."""
        size = (image.shape[1], image.shape[0])
        messages = tracking_messages([self.template_text], self.prompt, self.thinking, n_images=2)
        meta = {"kind": "track", "family": self.family.name, "image_size": (self.crop_size, self.crop_size)}
        asked = [
            (f, crop_region(self.box, f, self.crop_size, jitter=shift))
            for f in self.calibrate_factors
            for shift in CALIBRATION_SHIFTS
        ]
        # the given box is frame 0's truth: diagnostic backends (the oracle) answer from it
        requests = [
            Request(
                [self.template, extract(image, crop, self.pad)],
                messages,
                {**meta, "truth": xywh_to_xyxy(crop.to_crop(self.box))},
            )
            for _, crop in asked
        ]
        ratios: dict[float, list[float]] = {f: [] for f in self.calibrate_factors}
        for (factor, crop), reply in zip(asked, self.backend.generate(requests)):
            model_xyxy = parse_box(reply)
            box = None if model_xyxy is None else self._answer_box(model_xyxy, crop, size, limits=False)
            if box is not None:
                ratios[factor].append(float(np.log(box[2] * box[3] / (self.box[2] * self.box[3]))))
        self.calibration = {f: float(np.mean(v)) if v else float("inf") for f, v in ratios.items()}
        self.factor = min(self.calibrate_factors, key=lambda f: abs(self.calibration[f]))

    def _truth(self, index: int) -> np.ndarray | None:
        if self.truth is None or index >= len(self.truth):
            return None
        t = np.asarray(self.truth[index], dtype=np.float64)
        return t if np.isfinite(t).all() else None

    def _ground(self, image: np.ndarray, text: str) -> np.ndarray:
        """Box of ``text`` on the whole frame from one grounding request (model coordinates of the
        processor-resized frame -> frame pixels)."""
        size = (image.shape[1], image.shape[0])
        meta: dict[str, Any] = {"kind": "ground", "family": self.family.name, "image_size": size}
        truth = self._truth(0)
        if truth is not None:
            meta["truth"] = xywh_to_xyxy(truth)
        reply = self.backend.generate([Request([image], grounding_messages(text), meta)])[0]
        model_xyxy = parse_grounding(reply)
        if model_xyxy is None:
            raise R1TrackError(
                f"text initialisation failed: the model's reply to {text!r} holds no box: {_short(reply)}"
            )
        box = clip_box(xyxy_to_xywh(self.family.decode(model_xyxy, size)), size)
        if not np.isfinite(box).all() or box[2] < 1 or box[3] < 1:
            raise R1TrackError(
                f"text initialisation failed: the model's box for {text!r} is empty inside the frame: {_short(reply)}"
            )
        return box


def _limit_scale(box: np.ndarray, previous: np.ndarray, ratio: float) -> np.ndarray:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    w = np.clip(box[2], previous[2] / ratio, previous[2] * ratio)
    h = np.clip(box[3], previous[3] / ratio, previous[3] * ratio)
    return np.array([cx - w / 2, cy - h / 2, w, h])


def _smooth_scale(box: np.ndarray, previous: np.ndarray, rate: float) -> np.ndarray:
    centre = box[:2] + box[2:] / 2
    size = previous[2:] + rate * (box[2:] - previous[2:])
    return np.concatenate([centre - size / 2, size])


def _limit_shift(box: np.ndarray, previous: np.ndarray, fraction: float) -> np.ndarray:
    """``box`` moved so its centre is at most ``fraction`` x the previous box's geometric-mean size from
    the previous centre (along the same direction)."""
    step = (box[:2] + box[2:] / 2) - (previous[:2] + previous[2:] / 2)
    limit = fraction * np.sqrt(previous[2] * previous[3])
    distance = float(np.hypot(*step))
    if distance <= limit:
        return box
    return np.concatenate([box[:2] - step * (1 - limit / distance), box[2:]])


def _limit_size(box: np.ndarray, first: np.ndarray, scale_range: tuple[float, float]) -> np.ndarray:
    """``box`` rescaled about its centre so its geometric-mean size is within ``scale_range`` x ``first``'s."""
    size, limit = np.sqrt(box[2] * box[3]), np.sqrt(first[2] * first[3])
    scale = np.clip(size, scale_range[0] * limit, scale_range[1] * limit) / size
    centre = box[:2] + box[2:] / 2
    return np.concatenate([centre - box[2:] * scale / 2, box[2:] * scale])


def _as_frame(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frames must be RGB uint8 arrays (H, W, 3), got {image.dtype} {image.shape}")
    return image


def _short(text, limit: int = 200) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[:limit] + "...'"


def _resolve_family(backend, family) -> Family:
    if family is None:
        family = getattr(backend, "family", None) or "qwen2.5-vl"
    fam = get_family(family)
    # the processor's pixel limits, where the backend knows them (they matter for full-frame grounding)
    return get_family(fam, getattr(backend, "min_pixels", None), getattr(backend, "max_pixels", None))


def _default_name(backend) -> str:
    """Results-folder name: the model's, so two checkpoints never share (and resume from) one folder."""
    from r1track.manifest import fingerprint

    model = getattr(backend, "model_name", None) or getattr(backend, "model", None)
    if isinstance(model, (str, os.PathLike)) and str(model):
        files = fingerprint(model)  # every checkpoint is DIR/model after training: tell them apart
        return "r1track-" + os.path.basename(os.path.normpath(str(model))) + (f"-{files[:8]}" if files else "")
    return "r1track-" + str(getattr(backend, "name", type(backend).__name__.lower()))


# ---------------------------------------------------------------------- building trackers from a model name

# Tracker options a checkpoint may set in its r1track.json (see r1track.nano), and their defaults.
TRACKER_DEFAULTS = {
    "prompt": "current",
    "template_factor": 4.0,
    "search_factor": 4.0,
    "crop_size": 336,
    "max_scale_change": None,
    "scale_smoothing": None,
    "max_shift": None,
    "scale_range": None,
    "absent_search_scale": 1.5,
    "absent_search_max": None,
    "calibrate_factors": None,
}
# MLLMTracker's own keyword options; every other option of ``factory`` configures the backend
TRACKER_OPTIONS = tuple(p for p in inspect.signature(MLLMTracker.__init__).parameters if p not in ("self", "backend"))
NANO_ALIAS = "nano"


def resolve_model(model):
    """``"nano"`` -> the packaged nano checkpoint's folder; anything else unchanged."""
    if isinstance(model, str) and model == NANO_ALIAS:
        from r1track.nano import default_model_path

        return str(default_model_path())
    return model


def checkpoint_settings(model) -> dict:
    """Tracker settings saved beside a local checkpoint (``r1track.json``: crop size, prompt, family...)."""
    if not isinstance(model, (str, os.PathLike)) or not os.path.isdir(model):
        return {}
    from r1track.nano import read_settings

    return read_settings(os.fspath(model))


def tracker_kwargs(options: dict, settings: dict | None = None) -> dict:
    """MLLMTracker options: those given (None: unset), else the checkpoint's ``settings``, else the defaults."""
    given = {k: v for k, v in options.items() if k in TRACKER_OPTIONS and v is not None}
    saved = {k: v for k, v in (settings or {}).items() if k in TRACKER_OPTIONS}
    return {**TRACKER_DEFAULTS, **saved, **given}


def factory(model=None, backend: str = "transformers", **options) -> Callable[[], MLLMTracker]:
    """A factory of trackers sharing one backend (the model is loaded once, here).

    ``options`` are MLLMTracker's (``prompt``, ``crop_size``, ``search_factor``, ``thinking``, ...; unset
    ones come from the checkpoint's ``r1track.json``, else ``TRACKER_DEFAULTS``) and the backend's
    (``device``, ``dtype``, ``max_new_tokens``, ``base_url``, ...); ``family`` goes to both."""
    from r1track.backends import build_backend

    if backend != "oracle" and not model:
        raise R1TrackError(f"a model is required with the {backend} backend")
    model = resolve_model(model)
    kwargs = tracker_kwargs(options, checkpoint_settings(model))
    # fail on bad tracker options before paying for a model load
    MLLMTracker(_NullBackend(), **kwargs)
    backend_options = {
        k: v for k, v in options.items() if v is not None and (k not in TRACKER_OPTIONS or k == "family")
    }
    if model is not None:
        backend_options["model"] = model
    return functools.partial(MLLMTracker, build_backend(backend, **backend_options), **kwargs)


class _NullBackend(Backend):
    """Stand-in used only to validate tracker options before the real backend loads."""

    def generate(self, requests):
        raise RuntimeError("not a model")
