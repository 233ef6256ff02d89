"""Scoring with the official toolkits' rules: GOT-10k (val) and one-pass evaluation (OPE).

Everything but the ``score_*`` entry points is a pure, vectorised function over numpy arrays.

GOT-10k (matches ``got10k.experiments.ExperimentGOT10k.report`` of got10k 0.1.3 to rounding):
- frame 0 is dropped; only frames with cover label > 0 are scored (absence, cut_by_image unused);
- beyond the toolkit: a frame without a finite ground-truth box (``nan,nan,nan,nan``, the UAV123
  convention for an absent target) is not scored either (the toolkit's AO would be NaN), and where a
  dataset has no cover labels its absent frames (``Sequence.absent``) are not scored; a split whose
  boxes after the first are all NaN (GOT-10k test) cannot be scored locally;
- both boxes are bounded to the sequence resolution (W, H) of meta_info.ini (``meta["meta_resolution"]``
  from the GOT-10k reader, else ``meta["resolution"]``) -- the toolkit uses that single resolution even
  where the video changes size, so ``meta["resolutions"]`` is deliberately ignored:
  x = clip(x, 0, W), then w = clip(w, 0, W - x), same for y/h;
- IoU = inter / (union + eps) clipped to [0, 1], eps = float64 machine epsilon;
- IoUs of all scored frames of all runs of all sequences are concatenated: AO = mean (frame-weighted,
  each run counts), SR = mean(IoU > t) with strict >, success curve at linspace(0, 1, 101);
- speed = mean(1 / t) over every time > 0 and not NaN (frame 0 included when > 0). Where the toolkit
  writes -1 (no usable time) or NaN (a sequence without scored frames), we write None.

One-pass (OTB, LaSOT, UAV123, TNL2K, TrackingNet with ground truth), the rule set we follow:
- frame 0's prediction is replaced by the ground truth;
- an invalid prediction (not finite, w <= 0 or h <= 0) is replaced by the previous prediction (LaSOT
  toolkit rule); after a run of invalid ones that is the last valid box;
- every frame counts in the denominator: frames whose target is absent (``Sequence.absent``) or whose
  GT is invalid (not finite, w <= 0 or h <= 0) are failures for all three curves;
- success curve at linspace(0, 1, 21) with strict >, AUC = mean of the curve; precision curve at
  0..50 px with <=, precision = value at 20 px; normalised precision curve at linspace(0, 0.5, 51)
  with <= on centre errors divided by the GT width/height, value at 0.20; centre = x + (w - 1) / 2;
- curves are computed per sequence, then averaged over sequences.
Known divergences of other toolkits (we do not follow them): the MATLAB toolkits drop sequences whose
whole success curve is zero; pytracking treats GT boxes with x or y = 0 as invalid; got10k's LaSOT
experiment reports the mean of the normalised-precision curve over 0..0.5 instead of its value at
0.20; TrackingNet's published scorer rounds boxes to integers, uses >= and trapezoid areas (its server
is canonical). The same UAV123 results score 66.1 (pytracking), 68.1 (pysot) and 70.3 (got10k) AUC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from r1track import results
from r1track.errors import R1TrackError

GOT10K_THRESHOLDS = np.linspace(0, 1, 101)
OPE_IOU_THRESHOLDS = np.linspace(0, 1, 21)
OPE_PIXEL_THRESHOLDS = np.arange(51, dtype=np.float64)
OPE_NORM_THRESHOLDS = np.linspace(0, 0.5, 51)
PRECISION_PIXELS = 20  # index into OPE_PIXEL_THRESHOLDS
NORM_PRECISION_INDEX = 20  # OPE_NORM_THRESHOLDS[20] == 0.20
EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------- shared curve helpers


def fraction_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """mean(values > t) for every threshold t (strict), via one sort instead of an (N, T) matrix."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if len(v) == 0:
        return np.full(len(thresholds), np.nan)
    return (len(v) - np.searchsorted(v, thresholds, side="right")) / len(v)


def fraction_at_most(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """mean(values <= t) for every threshold t; NaN and inf values never pass."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())  # NaN sorts last
    if len(v) == 0:
        return np.full(len(thresholds), np.nan)
    return np.searchsorted(v, thresholds, side="right") / len(v)


def mean_fps(times: np.ndarray) -> float | None:
    """mean(1 / t) over times that are > 0 and not NaN (the toolkit's speed); None if there are none."""
    t = np.asarray(times, dtype=np.float64).ravel()
    t = t[t > 0]  # NaN compares False, so this also drops NaN
    return float(np.mean(1.0 / t)) if len(t) else None


def _float(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


# ---------------------------------------------------------------- GOT-10k


def bound_to_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """The toolkit's bounding: x = clip(x, 0, W), then w = clip(w, 0, W - x) (same for y, h).

    Unlike ``boxes.clip_to_image`` a box leaving on the left/top is shifted, not cropped.
    """
    b = np.array(boxes, dtype=np.float64)
    b[..., 0] = np.clip(b[..., 0], 0, width)
    b[..., 1] = np.clip(b[..., 1], 0, height)
    b[..., 2] = np.clip(b[..., 2], 0, width - b[..., 0])
    b[..., 3] = np.clip(b[..., 3], 0, height - b[..., 1])
    return b


def got10k_iou(pred: np.ndarray, gt: np.ndarray, resolution: tuple[float, float]) -> np.ndarray:
    """Bounded IoU of xywh boxes, inter / (union + eps) clipped to [0, 1], as the got10k toolkit."""
    a = bound_to_image(pred, *resolution)
    b = bound_to_image(gt, *resolution)
    x1 = np.maximum(a[..., 0], b[..., 0])
    y1 = np.maximum(a[..., 1], b[..., 1])
    x2 = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.clip(inter / (union + EPS), 0.0, 1.0)


def got10k_summary(ious: np.ndarray, times: np.ndarray | None = None, curve: bool = True) -> dict:
    """AO, SR0.5, SR0.75 (and the 101-point success curve) of concatenated IoUs (+ speed from times)."""
    ious = np.asarray(ious, dtype=np.float64).ravel()
    out: dict[str, Any] = {
        "ao": _float(np.mean(ious)) if len(ious) else None,
        "sr50": _float(np.mean(ious > 0.5)) if len(ious) else None,
        "sr75": _float(np.mean(ious > GOT10K_THRESHOLDS[75])) if len(ious) else None,
        "speed_fps": mean_fps(times) if times is not None else None,
    }
    if curve:
        out["success_curve"] = [_float(c) for c in fraction_above(ious, GOT10K_THRESHOLDS)]
    return out


def got10k_sequence_ious(
    runs: list[np.ndarray],
    gt: np.ndarray,
    cover: np.ndarray | None,
    resolution: tuple[float, float],
    absent: np.ndarray | None = None,
) -> np.ndarray:
    """Scored IoUs of every run of one sequence, runs concatenated: frame 0 dropped, cover > 0 kept."""
    keep = _scored(cover, gt, absent)
    pred = np.concatenate([np.asarray(r, dtype=np.float64)[keep] for r in runs])
    return got10k_iou(pred, np.tile(gt[keep], (len(runs), 1)), resolution)


def _scored(cover: np.ndarray | None, gt: np.ndarray, absent: np.ndarray | None = None) -> np.ndarray:
    """Frames the toolkit scores: not frame 0, and cover label > 0 where known (else not absent where
    known); and, beyond the toolkit, only frames with a finite ground-truth box."""
    n = len(gt)
    if cover is not None:
        keep = np.asarray(cover).reshape(-1) > 0
        if len(keep) != n:
            raise ValueError(f"{len(keep)} cover labels for {n} frames")
    else:
        keep = np.ones(n, dtype=bool) if absent is None else ~np.asarray(absent, dtype=bool).reshape(-1)
    keep &= np.isfinite(gt).all(axis=1)
    keep[0] = False
    return keep


def _has_gt_after_first(seq) -> bool:
    """Some frame after the first has a box: NaN boxes elsewhere are absent frames, not a test split."""
    return seq.meta.get("split") != "test" and len(seq.gt) > 1 and bool(np.isfinite(seq.gt[1:]).all(axis=1).any())


def _resolution(seq) -> tuple[float, float]:
    # the toolkit bounds with meta_info.ini's resolution, which the GOT-10k reader keeps as
    # "meta_resolution" (its "resolution" is the first frame's size); the two normally agree
    res = seq.meta.get("meta_resolution") or seq.meta.get("resolution")
    if res is None:  # the toolkit always has meta_info.ini; elsewhere the first frame tells
        h, w = seq.frame(0).shape[:2]
        return float(w), float(h)
    return float(res[0]), float(res[1])


def _cover(seq) -> np.ndarray | None:
    if seq.meta.get("cover") is not None:
        return np.asarray(seq.meta["cover"])
    if seq.visible_ratio is not None:
        return np.asarray(seq.visible_ratio)
    return None


def _got10k_ious(sequences, runs: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """IoUs of every scored (run, frame) of every sequence in one vectorised pass, in the toolkit's
    concatenation order (sequence by sequence, run after run), with the sequence index of each IoU
    and the number of scored frames of each sequence."""
    n_frames = np.array([len(s.gt) for s in sequences])
    n_rows = n_frames * np.array([len(r) for r in runs])
    row_seq = np.repeat(np.arange(len(sequences)), n_rows)
    # row i of sequence s holds frame (i - first row of s) mod N_s of that sequence
    first_row, first_gt = np.cumsum(n_rows) - n_rows, np.cumsum(n_frames) - n_frames
    gt_row = first_gt[row_seq] + (np.arange(n_rows.sum()) - first_row[row_seq]) % n_frames[row_seq]
    scored = np.concatenate([_scored(_cover(s), s.gt, s.absent) for s in sequences])
    keep = scored[gt_row]
    pred = np.concatenate([r for seq_runs in runs for r in seq_runs])[keep]
    gt = np.concatenate([s.gt for s in sequences])[gt_row[keep]]
    bound = np.array([_resolution(s) for s in sequences])[row_seq[keep]]
    frames = np.bincount(np.repeat(np.arange(len(sequences)), n_frames), scored, len(sequences))
    return got10k_iou(pred, gt, (bound[:, 0], bound[:, 1])), row_seq[keep], frames.astype(int).tolist()


def score_got10k(sequences, tracker_dir: str | Path) -> dict:
    """Score one tracker's GOT-10k-layout results over ``sequences`` (the toolkit's ``report``).

    Returns ``{"overall": {ao, sr50, sr75, speed_fps, success_curve, num_frames, num_sequences},
    "sequences": {name: {ao, sr50, sr75, speed_fps, length}}, "object_classes": {...},
    "motion_classes": {...}}``. ``num_frames`` counts scored frames (cover > 0, frame 0 excluded) once,
    although AO weighs every run of a frame; ``length`` is the toolkit's N - 1.
    """
    tracker_dir = Path(tracker_dir)
    no_gt = [s.name for s in sequences if not _has_gt_after_first(s)]
    if no_gt:
        raise R1TrackError(
            f"{len(no_gt)} sequences ({', '.join(no_gt[:3])}{', ...' if len(no_gt) > 3 else ''}) have "
            "ground truth for the first frame only: this split (GOT-10k test?) cannot be scored locally; "
            "pack the results with `r1track pack` and submit them to the evaluation server"
        )
    missing = [s.name for s in sequences if not (tracker_dir / s.name).is_dir()]
    if missing:
        raise R1TrackError(
            f"{tracker_dir}: no results for {len(missing)} of {len(sequences)} sequences "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )

    parsed = results.read_got10k_many(tracker_dir, [(s.name, len(s.gt)) for s in sequences])
    ious, seq_of, frames = _got10k_ious(sequences, [runs for runs, _ in parsed])
    times = [np.zeros(0) if t is None else t.ravel() for _, t in parsed]
    n_seqs = len(sequences)
    count = np.bincount(seq_of, None, n_seqs).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ao = np.bincount(seq_of, ious, n_seqs) / count
        sr50 = np.bincount(seq_of, ious > 0.5, n_seqs) / count
        sr75 = np.bincount(seq_of, ious > GOT10K_THRESHOLDS[75], n_seqs) / count
        all_times = np.concatenate(times)
        timed = all_times > 0  # NaN compares False
        time_seq = np.repeat(np.arange(n_seqs), [len(t) for t in times])[timed]
        fps = np.bincount(time_seq, 1.0 / all_times[timed], n_seqs) / np.bincount(time_seq, None, n_seqs)
    per_seq = {
        seq.name: {
            "ao": _float(ao[k]),
            "sr50": _float(sr50[k]),
            "sr75": _float(sr75[k]),
            "speed_fps": _float(fps[k]),
            "length": len(seq.gt) - 1,
        }
        for k, seq in enumerate(sequences)
    }
    overall = got10k_summary(ious, all_times)
    overall["num_frames"] = int(sum(frames))
    overall["num_sequences"] = n_seqs

    def grouped(key: str) -> dict:
        members: dict[str, list[int]] = {}
        for k, seq in enumerate(sequences):
            if seq.meta.get(key) is not None:
                members.setdefault(str(seq.meta[key]), []).append(k)
        out = {}
        for name, ks in sorted(members.items()):
            s = got10k_summary(ious[np.isin(seq_of, ks)], curve=False)
            out[name] = {
                "ao": s["ao"],
                "sr50": s["sr50"],
                "sr75": s["sr75"],
                "num_frames": int(sum(frames[k] for k in ks)),
                "num_sequences": len(ks),
            }
        return out

    return {
        "overall": overall,
        "sequences": per_seq,
        "object_classes": grouped("object_class"),
        "motion_classes": grouped("motion_class"),
    }


# ---------------------------------------------------------------- one-pass evaluation


def fill_invalid(pred: np.ndarray) -> np.ndarray:
    """Replace every invalid box (not finite, w <= 0 or h <= 0) by the last valid one before it.

    Leading invalid boxes are kept as they are (frame 0 is normally the ground truth).
    """
    pred = np.asarray(pred, dtype=np.float64)
    ok = np.isfinite(pred).all(1) & (pred[:, 2] > 0) & (pred[:, 3] > 0)
    src = np.where(ok, np.arange(len(pred)), 0)
    np.maximum.accumulate(src, out=src)
    return pred[src]


def centre(boxes: np.ndarray) -> np.ndarray:
    """The toolkits' centre of an xywh box: x + (w - 1) / 2 (1-based pixel convention)."""
    b = np.asarray(boxes, dtype=np.float64)
    return b[..., :2] + (b[..., 2:] - 1) / 2


def ope_errors(
    pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (IoU, centre error px, normalised centre error) after the one-pass rules.

    Frames that count as failures get IoU -1 and errors +inf, so they fail every threshold.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.array(pred, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    pred[0] = gt[0]
    pred = fill_invalid(pred)
    valid = np.isfinite(gt).all(1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if absent is not None:
        valid &= ~np.asarray(absent, dtype=bool)
    g = np.where(valid[:, None], gt, 1.0)  # keeps the arithmetic below finite on failure frames
    p = np.where(valid[:, None], pred, 1.0)
    x1 = np.maximum(p[:, 0], g[:, 0])
    y1 = np.maximum(p[:, 1], g[:, 1])
    x2 = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2])
    y2 = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    diff = centre(p) - centre(g)
    err = np.hypot(diff[:, 0], diff[:, 1])
    nerr = np.hypot(diff[:, 0] / g[:, 2], diff[:, 1] / g[:, 3])
    iou = np.where(valid & np.isfinite(iou), iou, -1.0)
    err = np.where(valid & np.isfinite(err), err, np.inf)
    nerr = np.where(valid & np.isfinite(nerr), nerr, np.inf)
    return iou, err, nerr


def ope_curves(pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None) -> dict:
    """One sequence's success (21), precision (51) and normalised precision (51) curves."""
    iou, err, nerr = ope_errors(pred, gt, absent)
    return {
        "success_curve": fraction_above(iou, OPE_IOU_THRESHOLDS),
        "precision_curve": fraction_at_most(err, OPE_PIXEL_THRESHOLDS),
        "norm_precision_curve": fraction_at_most(nerr, OPE_NORM_THRESHOLDS),
    }


def ope_summary(curves: list[dict]) -> dict:
    """Average per-sequence curves over sequences and read AUC, precision and normalised precision."""
    succ = np.mean([c["success_curve"] for c in curves], axis=0)
    prec = np.mean([c["precision_curve"] for c in curves], axis=0)
    norm = np.mean([c["norm_precision_curve"] for c in curves], axis=0)
    return {
        "auc": float(np.mean(succ)),
        "precision": float(prec[PRECISION_PIXELS]),
        "norm_precision": float(norm[NORM_PRECISION_INDEX]),
        "success_curve": succ.tolist(),
        "precision_curve": prec.tolist(),
        "norm_precision_curve": norm.tolist(),
        "num_sequences": len(curves),
    }


def _truncates(seq) -> bool:
    return str(seq.meta.get("dataset", "")).lower().startswith("lasot")


def score_ope(sequences, tracker_dir: str | Path) -> dict:
    """Score one tracker's one-pass results (``<tracker_dir>/<seq>.txt``) over ``sequences``.

    Returns ``{"overall": {auc, precision, norm_precision, success_curve, precision_curve,
    norm_precision_curve, num_sequences, speed_fps (when time files exist)}, "sequences": {name:
    {auc, precision, norm_precision, length, speed_fps}}, "attributes": {attr: {auc, precision,
    norm_precision, success_curve, num_sequences}}}``.
    """
    tracker_dir = Path(tracker_dir)
    missing = [s.name for s in sequences if not results.ope_file(tracker_dir, s.name).is_file()]
    if missing:
        raise R1TrackError(
            f"{tracker_dir}: no results for {len(missing)} of {len(sequences)} sequences "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )
    per_seq, curves, all_times, by_attr = {}, {}, [], {}  # type: ignore[var-annotated]
    for seq in sequences:
        boxes, times = results.read_ope(tracker_dir, seq.name, len(seq.gt), truncate=_truncates(seq))
        c = ope_curves(boxes, seq.gt, seq.absent)
        curves[seq.name] = c
        per_seq[seq.name] = {
            "auc": float(np.mean(c["success_curve"])),
            "precision": float(c["precision_curve"][PRECISION_PIXELS]),
            "norm_precision": float(c["norm_precision_curve"][NORM_PRECISION_INDEX]),
            "length": len(seq.gt),
            "speed_fps": mean_fps(times) if times is not None else None,
        }
        if times is not None:
            all_times.append(times)
        for attr in seq.meta.get("attributes") or ():
            by_attr.setdefault(str(attr), []).append(c)
    overall = ope_summary(list(curves.values()))
    if all_times:
        overall["speed_fps"] = mean_fps(np.concatenate(all_times))
    attributes = {}
    for attr, cs in sorted(by_attr.items()):
        s = ope_summary(cs)
        attributes[attr] = {k: s[k] for k in ("auc", "precision", "norm_precision", "success_curve", "num_sequences")}
    return {"overall": overall, "sequences": per_seq, "attributes": attributes}
