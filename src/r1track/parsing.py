"""Read a box out of a model reply. Never raises: anything unusable gives ``None``.

``parse_box(text)`` (lenient) accepts, in this order of preference:
1. the part inside the last ``<answer>...</answer>`` when the reply has answer tags; otherwise the
   text after the last ``</think>`` (a reply whose ``<think>`` never closes was cut off mid-reasoning:
   ``None``, since boxes inside reasoning are not answers);
2. with any Markdown code fence removed, the text as JSON: a list of 4 numbers, a list whose first item
   is such a list, or Qwen's grounding form -- a dict with ``bbox_2d`` (also ``bbox``/``box``) or a list
   of such dicts (the first is taken);
3. failing that, the first ``"bbox_2d": [a,b,c,d]`` in the text (Qwen's JSON is often cut off), then
   the first bracketed list of exactly 4 numbers, then Qwen2-VL's native ``(x1,y1),(x2,y2)``.
Numbers may be ints or floats, signed, with spaces and newlines around them; non-finite values
(``NaN``, ``Infinity``, overflowing literals) make a candidate unusable.

Inverted corners (x1 > x2 or y1 > y2) are returned as written, not swapped: the answer format says
``[x_min,y_min,x_max,y_max]``, so an inverted box is a wrong answer; swapping it would hide the error
from rewards and metrics. The tracker rejects such a degenerate box and keeps its previous one.

``parse_box(text, strict=True)`` is the reference reward's rule: the whole reply must be a JSON list
of 4 numbers (surrounding whitespace allowed), nothing else.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

# Replies have no length cap (a server may send megabytes), so every pattern runs in linear time:
# possessive quantifiers (``*+``, ``++``) never backtrack into a run of digits or spaces, and the code
# fence is found with ``str.find`` (a lazy ``(.*?)\s*`` is quadratic in a long run of spaces).
# Possessive matching finds the same boxes: a number or a space run is never followed by more of itself.
_NUM = r"[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+"
_LIST4 = re.compile(rf"\[\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\]")
_BBOX_KEY = re.compile(r"[\"']?(?:bbox_2d|bbox|box)[\"']?\s*+:\s*+")
_POINTS = re.compile(rf"\(\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\)\s*+,?+\s*+\(\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\)")
_FENCE_OPEN = re.compile(r"```[a-zA-Z]*+\s*+")
_FENCE = "```"
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)
_KEYS = ("bbox_2d", "bbox", "box")


def _box(values) -> np.ndarray | None:
    """4 finite numbers (not bools, not strings) as a float64 array, else None."""
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        try:
            f = float(v)
        except OverflowError:  # an integer too large for a float
            return None
        if not math.isfinite(f):
            return None
        out.append(f)
    return np.array(out, dtype=np.float64)


def _box_from_groups(groups) -> np.ndarray | None:
    return _box([float(g) for g in groups])  # regex numbers always parse; overflow gives inf


def _from_json(obj, depth: int = 0) -> np.ndarray | None:
    if depth > 3:
        return None
    if isinstance(obj, dict):
        for key in _KEYS:
            if key in obj:
                return _from_json(obj[key], depth + 1)
        return None
    if isinstance(obj, list):
        box = _box(obj)
        if box is not None:
            return box
        if obj and isinstance(obj[0], (list, dict)):
            return _from_json(obj[0], depth + 1)
    return None


def _answer_part(text: str) -> str | None:
    answers = _ANSWER.findall(text)
    if answers:
        return answers[-1]
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        return None
    return text


def _unfence(text: str) -> str:
    """The inside of the first Markdown code fence (to its closing fence or the end), else the text."""
    m = _FENCE_OPEN.search(text)
    if m is None:
        return text
    end = text.find(_FENCE, m.end())
    return text[m.end() : None if end < 0 else end].rstrip()


def _loads(text: str):
    try:
        return json.loads(text)
    except Exception:  # JSONDecodeError, RecursionError on deep nesting, ...
        return None


def _first_match(pattern: re.Pattern, text: str) -> np.ndarray | None:
    for m in pattern.finditer(text):
        box = _box_from_groups(m.groups())
        if box is not None:
            return box
    return None


def _first_keyed(text: str) -> np.ndarray | None:
    for m in _BBOX_KEY.finditer(text):
        lm = _LIST4.match(text, m.end())
        if lm:
            box = _box_from_groups(lm.groups())
            if box is not None:
                return box
    return None


def _parse(text: str) -> np.ndarray | None:
    part = _answer_part(text)
    if part is None:
        return None
    body = _unfence(part).strip()
    box = _from_json(_loads(body))
    if box is None:
        box = _first_keyed(body)
    if box is None:
        box = _first_match(_LIST4, body)
    if box is None:
        box = _first_match(_POINTS, body)
    return box


def parse_box(text, strict: bool = False) -> np.ndarray | None:
    """The box (xyxy float64, shape (4,)) a reply gives, in the model's coordinates, or None."""
    if not isinstance(text, str):
        return None
    try:
        if strict:
            obj = _loads(text)
            return _box(obj) if isinstance(obj, list) else None
        return _parse(text)
    except Exception:  # the parser must never take the tracker down
        return None


def parse_grounding(text) -> np.ndarray | None:
    """The first ``bbox_2d`` box of a Qwen grounding reply (or a plain box list), or None.

    The same rules as ``parse_box``: Qwen's grounding JSON is one of the forms it accepts, and a
    grounding model that answers with a bare list or its native point pair should still work."""
    if not isinstance(text, str):
        return None
    try:
        return _parse(text)
    except Exception:
        return None


def parse_absent(text, strict: bool = False) -> bool:
    """True when the reply says the target is not in the search image: its answer is the empty list
    ``[]`` (r1track's convention; rollout pairs teach it for absent and out-of-crop targets). Strict: the
    whole reply must be ``[]`` (the reward rule); lenient: the answer part, as ``parse_box`` reads it."""
    if not isinstance(text, str):
        return False
    if strict:
        return _EMPTY.fullmatch(text.strip()) is not None
    part = _answer_part(text)
    return part is not None and _EMPTY.fullmatch(_unfence(part).strip()) is not None


_EMPTY = re.compile(r"\[\s*\]")
