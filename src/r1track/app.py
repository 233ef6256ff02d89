"""`r1track app`: track a video in the browser, offline, from a box drawn on its first frame or a sentence.

A Gradio page served on localhost: upload a video (or pick a synthetic sample generated at start, with
ground truth), click two opposite corners of the target on the first frame (or type a description),
pick the model and the main options, run with a progress bar, watch the annotated video and download
the boxes (``r1track track``'s format) and the video; on a sample the clip's AO and a per-frame IoU plot.

Tracking runs ``r1track.track.track_video`` with a tracker built from the same options as
``r1track track`` (one code path, the same boxes). Limits: uploads above ``--max-mb`` and frames wider or
taller than ``MAX_SIDE`` are refused, videos longer than ``--max-frames`` are cut (the page says so).
Tracking jobs queue one at a time (one model in memory); Gradio's analytics and share links stay off.

``App`` holds the handlers: plain methods on paths, strings and arrays that raise ``R1TrackError`` with
the message the page shows, so they are tested without a browser; ``r1track.app_page`` wires them to
Gradio.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from r1track.boxes import is_valid
from r1track.crops import clip_box
from r1track.errors import R1TrackError
from r1track.video import draw_box

MAX_SIDE = 4096  # frames larger than 4K on a side are refused (decoding and drawing cost)
SAMPLE_SEED, SAMPLE_SEQUENCES, SAMPLE_FRAMES = 2026, 3, 40
BASELINES = ("csrt", "kcf")  # weight-free choices offered next to the models (box start only)
CORNER = (255, 0, 255)  # RGB of the drawn corner and box (magenta: the tracked box is green)


@dataclass(frozen=True)
class Clip:
    """The video the page works on: a file or a sample's frame folder."""

    path: str
    name: str
    frames: int  # frames in the source
    used: int  # frames that will be tracked (cut at the limit)
    size: tuple[int, int]  # (W, H)
    sample: str | None = None  # sample name: ground truth available


@dataclass(frozen=True)
class Outcome:
    """What a tracking run shows: the annotated video, the files to download, a summary, the IoU plot."""

    video: str
    files: list[str]
    summary: str
    boxes: np.ndarray
    ious: np.ndarray | None = None  # per frame, NaN where not scored (samples only)


class App:
    """The page's handlers. ``args``: the parsed ``r1track app`` options (model and backend options as
    ``r1track track``'s); ``workdir``: where samples and run outputs go."""

    def __init__(self, args: argparse.Namespace, workdir: str | Path):
        self.args = args
        self.workdir = Path(workdir)
        self.max_frames = int(args.max_frames)
        self.max_bytes = int(args.max_mb * 1024 * 1024)
        self.samples = _make_samples(self.workdir / "samples")
        self._factory_key: tuple | None = None
        self._factory: Callable | None = None

    # ------------------------------------------------------------------ choosing the clip
    def open_video(self, path: str | None) -> tuple[Clip, np.ndarray, str]:
        """An uploaded file -> the clip, its first frame and a one-line description (or R1TrackError)."""
        if not path:
            from r1track.datasets.folder import VIDEO_EXTENSIONS

            raise R1TrackError(f"no file: upload a video ({' '.join(VIDEO_EXTENSIONS)}) or pick a sample")
        name = Path(path).name
        size = os.path.getsize(path)
        if size == 0:
            raise R1TrackError(f"{name} is empty")
        if size > self.max_bytes:
            raise R1TrackError(
                f"{name} is {size / 2**20:.0f} MB; this app takes videos up to "
                f"{self.max_bytes / 2**20:.0f} MB (r1track track has no limit)"
            )
        return self._open(path, name, sample=None)

    def open_sample(self, name: str | None) -> tuple[Clip, np.ndarray, str]:
        if name not in self.samples:
            raise R1TrackError(f"no sample {name!r}; choose one of {', '.join(self.samples)}")
        clip, first, message = self._open(str(self.samples[name].frames[0].parent), name, sample=name)
        return clip, first, f'{message}; ground truth known; description: "{self.samples[name].language}"'

    def _open(self, path: str, name: str, sample: str | None) -> tuple[Clip, np.ndarray, str]:
        from r1track.datasets.folder import open_frames
        from r1track.track import iter_frames

        frames, (w, h) = open_frames(path)
        if max(w, h) > MAX_SIDE:
            raise R1TrackError(f"{name}: frames of {w}x{h} are too large (at most {MAX_SIDE} px on a side)")
        try:
            first = next(iter_frames(frames, 1))
        except (StopIteration, R1TrackError) as e:
            raise R1TrackError(f"{name}: the first frame cannot be decoded ({e or 'no frames'})") from None
        used = min(len(frames), self.max_frames)
        clip = Clip(path, name, len(frames), used, (w, h), sample)
        cut = f"; only the first {used} will be tracked (limit {self.max_frames})" if used < len(frames) else ""
        return clip, first, f"{name}: {len(frames)} frames of {w}x{h}{cut}"

    # ------------------------------------------------------------------ drawing the box
    def click(self, first: np.ndarray, corner: tuple[int, int] | None, point) -> tuple[np.ndarray, tuple | None, str]:
        """A click at ``point`` (x, y pixels) on the first frame: the first click marks a corner, the
        second the opposite one. Returns the frame to show, the pending corner and the box text."""
        x, y = int(point[0]), int(point[1])
        if corner is None:
            shown = first.copy()
            cv2.circle(shown, (x, y), 4, CORNER, -1)
            return shown, (x, y), ""
        box = np.array([min(x, corner[0]), min(y, corner[1]), abs(x - corner[0]), abs(y - corner[1])], float)
        if box[2] < 2 or box[3] < 2:
            raise R1TrackError("the two corners are too close: click two opposite corners of the target")
        return draw_box(first, box, CORNER), None, format_box_text(box)

    def typed(self, first: np.ndarray, box_text: str) -> np.ndarray:
        """The first frame with a typed box drawn (unchanged while the text is not a box yet)."""
        from r1track.track import parse_box_arg

        try:
            return draw_box(first, parse_box_arg(box_text), CORNER)
        except R1TrackError:
            return first

    # ------------------------------------------------------------------ tracking
    def track(
        self,
        clip: Clip | None,
        box_text: str,
        description: str,
        model: str,
        crop_size=None,
        search_factor=None,
        thinking: bool = False,
        on_frame: Callable[[int, int], None] | None = None,
    ) -> Outcome:
        """Track ``clip`` from the box (``x,y,w,h``) or, without one, the description."""
        from r1track.datasets.folder import open_frames
        from r1track.track import summary, track_video

        if clip is None:
            raise R1TrackError("no video yet: upload one or pick a sample")
        box, text = self._start(box_text, description, model)
        if box is not None and not is_valid(clip_box(box, clip.size)):
            raise R1TrackError(f"the box {box_text.strip()} lies outside the {clip.size[0]}x{clip.size[1]} frame")
        tracker = self._tracker_factory(model, crop_size, search_factor, thinking)()
        frames, _ = open_frames(clip.path)
        out = Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir))
        stem = Path(clip.name).stem
        boxes_out, video_out = out / f"{stem}_boxes.txt", out / f"{stem}_tracked.webm"
        try:
            boxes, times = track_video(
                frames,
                tracker,
                box,
                text,
                boxes_out=boxes_out,
                video_out=video_out,
                max_frames=clip.used,
                on_frame=on_frame,
            )
        except ValueError as e:  # the tracker refuses the initial box (e.g. outside the frame)
            raise R1TrackError(str(e)) from None
        lines = [summary(boxes, times, tracker)]
        if clip.used < clip.frames:
            lines.append(f"cut: the first {clip.used} of {clip.frames} frames (limit {self.max_frames})")
        ious = None
        if clip.sample is not None:
            ious, ao = _sample_ious(self.samples[clip.sample], boxes)
            lines.append(f"AO {ao:.3f} against the sample's ground truth")
        return Outcome(str(video_out), [str(boxes_out), str(video_out)], "; ".join(lines), boxes, ious)

    def _start(self, box_text: str, description: str, model: str):
        from r1track.track import parse_box_arg

        box_text, description = (box_text or "").strip(), (description or "").strip()
        if box_text:
            try:
                return parse_box_arg(box_text), None
            except R1TrackError:
                raise R1TrackError(f"the box must be x,y,w,h (4 numbers, w and h > 0), got {box_text!r}") from None
        if not description:
            raise R1TrackError("no target: click two opposite corners of it on the first frame, or describe it")
        if model in BASELINES:
            raise R1TrackError(f"{model} cannot start from a description: draw the box, or pick a model")
        return None, description

    def _tracker_factory(self, model: str, crop_size, search_factor, thinking: bool) -> Callable:
        """``r1track.trackers.tracker_factory`` for these options over the command line's, as ``r1track
        track`` builds it; the last one is kept (its model loaded once)."""
        from r1track.cli import tracker_factory_from_args

        model = (model or "").strip() or self.args.model or "nano"
        key = (model, crop_size or None, search_factor or None, bool(thinking))
        if key != self._factory_key:
            self.close()
            args = copy.copy(self.args)
            args.model, args.thinking = model, bool(thinking)
            args.crop_size = int(crop_size) if crop_size else None
            args.search_factor = float(search_factor) if search_factor else None
            try:
                self._factory = tracker_factory_from_args(args, model if model in BASELINES else "mllm")
            except (OSError, ValueError) as e:  # a path or hub id that does not hold a usable model
                raise R1TrackError(f"cannot load model {model!r}: {e}") from None
            self._factory_key = key
        return self._factory

    def close(self) -> None:
        """Free the loaded model, if any."""
        backend = next(iter(getattr(self._factory, "args", ())), None)  # MLLM factories: partial(cls, backend)
        if hasattr(backend, "close"):
            backend.close()
        self._factory, self._factory_key = None, None


def format_box_text(box) -> str:
    return ",".join(f"{v:g}" for v in np.asarray(box, dtype=float))


def _make_samples(out: Path) -> dict:
    """Synthetic sample clips with ground truth, generated (not shipped): name -> Sequence."""
    from r1track import datasets, synth

    synth.generate(out, SAMPLE_SEQUENCES, SAMPLE_FRAMES, SAMPLE_SEED, split="val", progress=False)
    return {seq.name: seq for seq in datasets.load("got10k", out, "val")}


def _sample_ious(seq, boxes: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-frame IoU (NaN where GOT-10k does not score: frame 0, target hidden) and the clip's AO."""
    from r1track.metrics import got10k_iou, got10k_sequence_ious

    n = len(boxes)
    gt, cover = seq.gt[:n], np.asarray(seq.meta["cover"])[:n]
    ious = got10k_iou(boxes, gt, seq.meta["resolution"])
    ious[0] = np.nan
    ious[cover == 0] = np.nan
    return ious, float(np.mean(got10k_sequence_ious([boxes], gt, cover, seq.meta["resolution"])))


def iou_figure(ious: np.ndarray):
    """Per-frame IoU, its mean over the scored frames (the AO) in the title."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(np.arange(len(ious)), ious, marker=".", lw=1)
    ax.set(xlabel="frame", ylabel="IoU", ylim=(0, 1.02))
    ax.set_title(f"AO {np.nanmean(ious):.3f}", loc="right")
    ax.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from r1track.cli import add_tracker_arguments

    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--max-frames", type=int, default=300, help="frames tracked at most per video (cut above)")
    parser.add_argument("--max-mb", type=float, default=200, help="largest upload accepted, in MB")
    add_tracker_arguments(parser.add_argument_group("tracker (as r1track track; --model default: nano)"))


def run(args: argparse.Namespace) -> int:
    # before gradio is imported: no telemetry, no version check
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.max_frames < 1 or args.max_mb <= 0:
        raise R1TrackError("--max-frames and --max-mb must be positive")
    args.model = args.model or "nano"
    workdir = Path(tempfile.mkdtemp(prefix="r1track-app-"))
    signal.signal(signal.SIGTERM, _stop)  # a terminated server still removes its working folder
    app = App(args, workdir)
    try:
        from r1track.app_page import build_page

        page = build_page(app)
        print(f"r1track app: http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
        page.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            inbrowser=False,
            ssr_mode=False,
            max_file_size=app.max_bytes,
            allowed_paths=[str(workdir)],
            quiet=True,
        )
    finally:
        app.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _stop(signum, frame):
    raise SystemExit(0)
