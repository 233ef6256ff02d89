"""Rule-based rewards with TRL's signature ``f(completions, solution, **kwargs) -> list[float]``.

``completions`` are plain strings or conversational (a list of ``{"role", "content"}`` messages per
completion, ``content`` a string or a list of ``{"type": "text", "text"}`` parts): the text is used.
``solution`` is the target xyxy in model coordinates (the pair dataset's column); boxes are compared
there, as the reference did. With a ``task`` column, ``"ground"`` samples are read with
``parse_grounding`` (Qwen's native ``bbox_2d`` JSON) instead of as a bare list.

Rewards:
- ``r1track_reward``: the reference no-think reward. The whole reply must be a JSON list of 4 numbers
  (``parse_box(strict=True)``), else -1; ``g = GIoU(pred, gt)``, and any failure (an empty or inverted
  predicted box, non-finite numbers) gives -1; then shaped by ``shape_giou``.
- ``think_reward``: the reference thinking reward without its "fewer than 128 tokens -> -1" rule. The
  reply must be ``<think>...</think>...<answer>...</answer>`` (no nested tags; surrounding whitespace
  allowed), else -1; the answer must be a JSON list (strict), else -1; then
  ``shape_giou(g) + 0.05 * 1 + 0.1 * length_penalty`` with the penalty going linearly from 0 at 448
  tokens to -1 at 512 (and staying -1 beyond). Tokens: TRL's ``completion_ids`` when given (exact),
  else a ``tokenizer`` keyword (``len(tokenizer(text, add_special_tokens=False).input_ids)``), else
  ``ceil(len(text) / 4)`` -- about 4 characters per token for English with Qwen's BPE.
- ``iou_reward``: IoU with a lenient parse (``parse_box``), 0 when unparsable or degenerate.
- ``giou_reward``: GIoU with a lenient parse, -1 when unparsable or degenerate.
- ``format_reward``: 1 when the strict parse gives a box with positive width and height, else 0.
- ``track_reward``: ours, for the tracking loop. Strict parse as the reference (-1 on failure), then
  ``GIoU - size_error`` with ``size_error = (|ln(w/w_gt)| + |ln(h/h_gt)|) / 2``, floored at -1.
  Per-frame IoU-type rewards pay a box larger than the target whenever the centre is uncertain, and in
  tracking a larger box widens the next search crop, so boxes grow (what GRPO did to the nano model:
  benchmarks/README.md); with the size term the true size has the best expected reward
  (tests/test_rewards.py).
Lenient parsing in the plain IoU/GIoU rewards measures localisation alone; pair them with
``format_reward`` to also ask for the bare-list answer.

Absent targets: an empty ``solution`` (closed-loop and missing-target pairs: the target is absent from
the search crop) makes ``[]`` the right answer. Every reward gives it its best value there (1.5 for
``r1track``, 1 for the others, the best thinking score for ``think``) and 0 to any other reply; for a
present target ``[]`` is a failed answer like any reply without a box. Absent rows are left out of the
logged parse rate and IoU.

Logging: TRL 1.16's GRPOTrainer passes a ``log_metric(name, value)`` callable to reward functions
(averaged per logging step, across processes). Each reward logs ``rewards/<fn>/parse_rate`` (share of
replies its own parse rule accepted) and ``rewards/<fn>/mean_iou`` (IoU of the parsed box, 0 for an
unparsable reply). Outside TRL (no ``log_metric``) nothing is logged.
"""

from __future__ import annotations

import json
import math
import re
from typing import Callable

import numpy as np

from r1track.boxes import giou, iou, xyxy_to_xywh
from r1track.errors import R1TrackError
from r1track.parsing import parse_absent, parse_box, parse_grounding

LENGTH_FREE = 448  # tokens without length penalty
LENGTH_MAX = 512  # tokens at which the penalty reaches -1
FORMAT_WEIGHT = 0.05
LENGTH_WEIGHT = 0.1

# <think>reasoning</think> [text without tags] <answer>answer</answer>: the reference's format rule
_THINK_FORMAT = re.compile(
    r"<think>((?:(?!<think>|</think>).)*)</think>"
    r"(?:(?!<think>|</think>|<answer>|</answer>).)*"
    r"<answer>((?:(?!<answer>|</answer>).)*)</answer>",
    re.DOTALL,
)


def completion_text(completion) -> str:
    """The text of a completion: a string, one message dict, or a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
        return ""
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(m) for m in completion)
    return ""


def shape_giou(g: float) -> float:
    """The reference shaping: (0, 0.4) -> 0; (0.75, 0.95) -> g + 0.2; [0.95, ..) -> g + 0.5; else g."""
    if 0 < g < 0.4:
        return 0.0
    if 0.75 < g < 0.95:
        return g + 0.2
    if g >= 0.95:
        return g + 0.5
    return g


def length_penalty(n_tokens: int) -> float:
    """0 up to 448 tokens, then linear down to -1 at 512 tokens, -1 beyond."""
    if n_tokens <= LENGTH_FREE:
        return 0.0
    return max(-1.0, (LENGTH_FREE - n_tokens) / (LENGTH_MAX - LENGTH_FREE))


def _solution(value) -> np.ndarray | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    try:
        box = np.asarray(value, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        return None
    return box if np.isfinite(box).all() else None


def _proper(box) -> bool:
    return box is not None and bool(np.isfinite(box).all()) and box[2] > box[0] and box[3] > box[1]


def _parse(text: str, task: str | None, strict: bool) -> np.ndarray | None:
    if task == "ground":
        return parse_grounding(text)
    return parse_box(text, strict=strict)


def _overlaps(pred, gt) -> tuple[float, float] | None:
    """(IoU, GIoU) of two xyxy boxes, or None when either is unusable."""
    if not _proper(pred) or gt is None:
        return None
    a, b = xyxy_to_xywh(pred), xyxy_to_xywh(gt)
    i, g = float(iou(a, b)), float(giou(a, b))
    if not (math.isfinite(i) and math.isfinite(g)):
        return None
    return i, g


def _tasks(kwargs, n: int) -> list:
    tasks = kwargs.get("task")
    return list(tasks) if tasks is not None else [None] * n


def _log(kwargs, name: str, parsed: list[bool], ious: list[float]) -> None:
    log_metric: Callable | None = kwargs.get("log_metric")
    if callable(log_metric) and parsed:
        log_metric(f"rewards/{name}/parse_rate", float(np.mean(parsed)))
        log_metric(f"rewards/{name}/mean_iou", float(np.mean(ious)))


def size_error(pred, gt) -> float:
    """Mean absolute log ratio of width and height of two proper xyxy boxes (0 for the same size)."""
    (w, h), (w_gt, h_gt) = pred[2:] - pred[:2], gt[2:] - gt[:2]
    return (abs(math.log(w / w_gt)) + abs(math.log(h / h_gt))) / 2


def is_absent(solution) -> bool:
    """An empty solution: the target is absent from the search image (rollout pairs), ``[]`` is right."""
    if isinstance(solution, str):
        return solution.strip() == "[]"
    return solution is not None and len(solution) == 0


def _absent_reward(text: str, strict: bool, best: float) -> float:
    """Absent target: ``best`` for the answer ``[]``, 0 for any other reply (a box there is a false lock)."""
    return best if parse_absent(text, strict) else 0.0


def _score_all(name: str, completions, solution, kwargs, strict: bool, score, best: float = 1.0) -> list[float]:
    """Parse each reply, compute overlaps, ``score(overlaps or None, pred, gt) -> reward``; log the stats.
    Absent targets (empty solutions) score ``_absent_reward(best)``."""
    rewards, parsed, ious = [], [], []
    for c, sol, task in zip(completions, solution, _tasks(kwargs, len(completions)), strict=True):
        if is_absent(sol):
            rewards.append(_absent_reward(completion_text(c), strict, best))
            continue
        pred, gt = _parse(completion_text(c), task, strict), _solution(sol)
        ov = _overlaps(pred, gt)
        parsed.append(pred is not None)
        ious.append(ov[0] if ov else 0.0)
        rewards.append(float(score(ov, pred, gt)))
    _log(kwargs, name, parsed, ious)
    return rewards


def r1track_reward(completions, solution, **kwargs) -> list[float]:
    """The reference no-think reward: strict JSON list, shaped GIoU, -1 on any failure."""
    return _score_all(
        "r1track_reward",
        completions,
        solution,
        kwargs,
        True,
        lambda ov, *_: -1.0 if ov is None else shape_giou(ov[1]),
        best=shape_giou(1.0),
    )


def iou_reward(completions, solution, **kwargs) -> list[float]:
    """Plain IoU (lenient parse); 0 when unparsable."""
    return _score_all("iou_reward", completions, solution, kwargs, False, lambda ov, *_: 0.0 if ov is None else ov[0])


def giou_reward(completions, solution, **kwargs) -> list[float]:
    """Plain GIoU (lenient parse); -1 when unparsable."""
    return _score_all("giou_reward", completions, solution, kwargs, False, lambda ov, *_: -1.0 if ov is None else ov[1])


def track_reward(completions, solution, **kwargs) -> list[float]:
    """GIoU minus the size error (strict parse, -1 on failure, floored at -1); see the module docstring."""
    return _score_all(
        "track_reward",
        completions,
        solution,
        kwargs,
        True,
        lambda ov, pred, gt: (
            -1.0 if ov is None or gt[2] <= gt[0] or gt[3] <= gt[1] else max(-1.0, ov[1] - size_error(pred, gt))
        ),
    )


def format_reward(completions, solution=None, **kwargs) -> list[float]:
    """1 when the strict parse (grounding: the grounding parse) gives a proper box, else 0."""
    solution = solution if solution is not None else [None] * len(completions)
    rewards, parsed, ious = [], [], []
    for c, sol, task in zip(completions, solution, _tasks(kwargs, len(completions)), strict=True):
        if is_absent(sol):
            rewards.append(_absent_reward(completion_text(c), True, 1.0))
            continue
        pred = _parse(completion_text(c), task, strict=True)
        ok = _proper(pred)
        ov = _overlaps(pred, _solution(sol)) if sol is not None else None
        parsed.append(pred is not None)
        ious.append(ov[0] if ov else 0.0)
        rewards.append(1.0 if ok else 0.0)
    _log(kwargs, "format_reward", parsed, ious)
    return rewards


def count_tokens(text: str, ids=None, tokenizer=None) -> int:
    """Tokens of a reply: its ids when known, else the tokenizer's count, else ceil(chars / 4)."""
    if ids is not None:
        return len(ids)
    if tokenizer is not None:
        tok = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
        return len(tok(text, add_special_tokens=False)["input_ids"])
    return math.ceil(len(text) / 4)


def think_reward(completions, solution, **kwargs) -> list[float]:
    """The reference thinking reward, without the 128-token minimum (see the module docstring)."""
    ids_list = kwargs.get("completion_ids")
    tokenizer = kwargs.get("tokenizer")
    rewards, parsed, ious = [], [], []
    tasks = _tasks(kwargs, len(completions))
    for k, (c, sol, task) in enumerate(zip(completions, solution, tasks, strict=True)):
        text = completion_text(c)
        m = _THINK_FORMAT.fullmatch(text.strip())
        n = count_tokens(text, ids_list[k] if ids_list is not None else None, tokenizer)
        if is_absent(sol):
            best = shape_giou(1.0) + FORMAT_WEIGHT * 1.0 + LENGTH_WEIGHT * length_penalty(n)
            rewards.append(_absent_reward(m.group(2), True, best) if m else -1.0)
            continue
        pred = _parse(m.group(2), task, strict=True) if m else None
        ov = _overlaps(pred, _solution(sol))
        parsed.append(pred is not None)
        ious.append(ov[0] if ov else 0.0)
        if pred is None:
            rewards.append(-1.0)
            continue
        g = ov[1] if ov else -1.0
        rewards.append(shape_giou(g) + FORMAT_WEIGHT * 1.0 + LENGTH_WEIGHT * length_penalty(n))
    _log(kwargs, "think_reward", parsed, ious)
    return rewards


REWARDS: dict[str, Callable[..., list[float]]] = {
    "r1track": r1track_reward,
    "think": think_reward,
    "iou": iou_reward,
    "giou": giou_reward,
    "format": format_reward,
    "track": track_reward,
}


def get_rewards(names) -> list[Callable[..., list[float]]]:
    """Reward functions by name (``"r1track"`` or ``"r1track_reward"``; a string may hold several, comma
    separated); unknown names raise R1TrackError listing the known ones."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for name in names:
        key = str(name).strip().removesuffix("_reward")
        if key not in REWARDS:
            raise R1TrackError(f"unknown reward {name!r}; known: {', '.join(REWARDS)}")
        out.append(REWARDS[key])
    return out
