"""A diagnostic backend that answers from the ground truth, written as the model family writes boxes.

Run the MLLM tracker with it to check everything around the model: dataset readers, crops, the
family's coordinate encoding, the answer parser and the runner. With ``noise=0`` and
``garbage_rate=0`` its scores are the ceiling the pipeline allows (rounding to integers and crop
geometry lose a little); ``noise`` jitters corners by a Gaussian of that fraction of the box's width
and height; ``garbage_rate`` replaces that fraction of replies with the failures real models produce
(random tokens, cut-off JSON, refusals, empty text) to exercise the failure policy.

Tracking replies are ``[x1,y1,x2,y2]``; grounding replies are Qwen's native JSON in a code fence.
"""

from __future__ import annotations

import numpy as np

from r1track.backends.base import Backend, Request
from r1track.errors import R1TrackError

GARBAGE_KINDS = ("tokens", "truncated", "refusal", "empty")
# no brackets: random words must never spell a parsable box by chance
_WORDS = (
    "the",
    "target",
    "object",
    "is",
    "located",
    "near",
    "box",
    "left",
    "image",
    "<|im_end|>",
    "12",
    "3.5",
    ",",
    "json",
    "bbox_2d",
    ":",
)


class OracleBackend(Backend):
    """Ground truth in, answers out; needs trackers that pass ``meta["truth"]`` (``wants_ground_truth``)."""

    wants_ground_truth = True

    def __init__(self, family: str = "qwen2.5-vl", noise: float = 0.0, garbage_rate: float = 0.0, seed: int = 0):
        from r1track.families import get_family

        if noise < 0 or not 0 <= garbage_rate <= 1:
            raise R1TrackError(f"noise must be >= 0 and garbage_rate in [0, 1], got {noise}, {garbage_rate}")
        self.family = get_family(family).name
        self._family = get_family(family)
        self.noise, self.garbage_rate = float(noise), float(garbage_rate)
        self.model_name = "oracle"
        # With noise or garbage, successive runs draw different jitter (one generator per backend), so
        # runners repeat it like any stochastic tracker; a given seed and request order replay exactly.
        self.deterministic = self.noise == 0 and self.garbage_rate == 0
        self.rng = np.random.default_rng(seed)

    def generate(self, requests: list[Request]) -> list[str]:
        return [self._answer(r) for r in requests]

    def _answer(self, request: Request) -> str:
        from r1track.prompts import format_box

        meta = request.meta or {}
        truth = meta.get("truth")
        if truth is None:
            raise R1TrackError(
                "the oracle backend needs ground truth: use it with a tracker that asks for it "
                "(wants_ground_truth) on a dataset with annotations for every frame"
            )
        if "image_size" not in meta:
            raise R1TrackError("the oracle backend needs meta['image_size'] (w, h of the last image)")
        if self.garbage_rate and self.rng.random() < self.garbage_rate:
            return self._garbage()
        box = np.asarray(truth, dtype=np.float64).reshape(4)
        if self.noise:
            w, h = box[2] - box[0], box[3] - box[1]
            box = box + self.rng.normal(0.0, self.noise, 4) * np.array([w, h, w, h])
        coords = self._family.encode(box, meta["image_size"])
        if meta.get("kind", "track") == "ground":
            values = ", ".join(str(int(v)) for v in _rounded(coords))
            return f'```json\n[\n\t{{"bbox_2d": [{values}], "label": "target"}}\n]\n```'
        return format_box(coords)

    def _garbage(self) -> str:
        kind = GARBAGE_KINDS[self.rng.integers(len(GARBAGE_KINDS))]
        if kind == "tokens":
            return " ".join(self.rng.choice(_WORDS, size=int(self.rng.integers(1, 12))))
        if kind == "truncated":
            return '```json\n[\n\t{"bbox_2d": [' + str(int(self.rng.integers(0, 400)))
        if kind == "refusal":
            return "I cannot see it."
        return ""


def _rounded(values) -> np.ndarray:
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5)  # half up, as prompts.format_box
