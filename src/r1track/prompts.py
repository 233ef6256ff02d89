"""Prompts as chat messages in TRL's conversational format, shared by tracking and training.

Reference prompts (verbatim; released R1-Track checkpoints expect them):
- ``current``: the prompt of the 100k models (2 images).
- ``old``: the prompt of the 5k models (2 images).
- thinking: ``THINK_PREFIX`` prepended to the user text, joined by one space as the reference did.
- grounding (text initialisation): ``GROUNDING_PROMPT`` on the full first frame.

Our variants:
- ``direct``: the ``current`` task asking for the JSON list only, no reasoning (matches the strict
  reward's rule that the whole reply is a JSON list).
- ``three``: three images -- (1) the template crop of the first frame with its box, (2) a crop of the
  most recent frame with the box the tracker predicted there, (3) the search crop. The recent view
  shows the target's current appearance; the first view keeps the identity anchored.
- ``three-direct``: ``three`` with a JSON-only answer.
- ``compact``: the ``current`` task in one short sentence, for models trained from scratch (the nano
  model, whose training steps are mostly spent on text tokens): under half the ``current`` prompt's
  tokens with the nano tokenizer.

Images are ``{"type": "image"}`` placeholders, one per image, in order, before the text; unlike the
reference inference script no literal ``<image>`` text is sent (training never saw it).
"""

from __future__ import annotations

import math
from typing import Sequence

THINK_PREFIX = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final "
    "answer. \n The reasoning process MUST BE enclosed within <think> </think> tags. The final answer "
    "MUST BE put in <answer> </answer> tags."
)

GROUNDING_PROMPT = "Please return the coordinates of {description} in JSON format."

PROMPTS = {
    "current": (
        "Given two images, you need to:\n"
        "1. Analyze and Identify the target object marked by bounding box {box} in <image_1>;\n"
        "2. Re-locate this target in <image_2>;\n"
        "3. Return [x_min, y_min, x_max, y_max] coordinates of the target in <image_2>."
    ),
    "old": (
        "Please identify the target specified by the bounding box {box} in the first image and locate it "
        "in the second image. Return the coordinates in [x_min,y_min,x_max,y_max] format."
    ),
    "direct": (
        "Given two images, you need to:\n"
        "1. Analyze and Identify the target object marked by bounding box {box} in <image_1>;\n"
        "2. Re-locate this target in <image_2>;\n"
        "3. Answer with only the coordinates of the target in <image_2> as a JSON list "
        "[x_min,y_min,x_max,y_max] of integers, without any other text."
    ),
    "three": (
        "Given three images, you need to:\n"
        "1. Analyze and Identify the target object marked by bounding box {box} in <image_1>;\n"
        "2. The same target, in a recent frame, is marked by bounding box {box2} in <image_2>;\n"
        "3. Re-locate this target in <image_3>;\n"
        "4. Return [x_min, y_min, x_max, y_max] coordinates of the target in <image_3>."
    ),
    "three-direct": (
        "Given three images, you need to:\n"
        "1. Analyze and Identify the target object marked by bounding box {box} in <image_1>;\n"
        "2. The same target, in a recent frame, is marked by bounding box {box2} in <image_2>;\n"
        "3. Re-locate this target in <image_3>;\n"
        "4. Answer with only the coordinates of the target in <image_3> as a JSON list "
        "[x_min,y_min,x_max,y_max] of integers, without any other text."
    ),
    "compact": "Re-locate the target marked by bounding box {box} in <image_1> in <image_2>.",
}

# images per query for each variant (one box per image but the last)
PROMPT_IMAGES = {"current": 2, "old": 2, "direct": 2, "three": 3, "three-direct": 3, "compact": 2}
# the three-image counterpart of a two-image variant
THREE_IMAGE_VARIANT = {"current": "three", "direct": "three-direct", "three": "three", "three-direct": "three-direct"}


ABSENT_ANSWER = "[]"  # the answer for a target absent from the search image (parsing.parse_absent)


def format_box(xyxy) -> str:
    """``"[100,151,227,222]"``: integers (rounded half up), no spaces -- the form answers take."""
    values = [float(v) for v in xyxy]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"format_box needs 4 finite numbers, got {list(xyxy)!r}")
    return "[" + ",".join(str(math.floor(v + 0.5)) for v in values) + "]"


def format_answer(xyxy) -> str:
    """The answer a pair teaches: ``format_box(xyxy)``, or ``ABSENT_ANSWER`` for an empty box (the target
    is not in the search image)."""
    return format_box(xyxy) if len(xyxy) else ABSENT_ANSWER


def with_thinking(text: str, thinking: bool) -> str:
    return f"{THINK_PREFIX.strip()} {text}" if thinking else text


def _user(n_images: int, text: str) -> list[dict]:
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def tracking_text(box_text: str | Sequence[str], variant: str = "current", thinking: bool = False) -> str:
    """The user text of a tracking query; ``box_text`` is one box string per image but the last."""
    if variant not in PROMPTS:
        raise ValueError(f"unknown prompt variant {variant!r}; known: {', '.join(PROMPTS)}")
    boxes = [box_text] if isinstance(box_text, str) else list(box_text)
    if len(boxes) != PROMPT_IMAGES[variant] - 1:
        raise ValueError(f"prompt {variant!r} needs {PROMPT_IMAGES[variant] - 1} box(es), got {len(boxes)}")
    fields = {"box": boxes[0]} | {f"box{i + 1}": b for i, b in enumerate(boxes[1:], start=1)}
    return with_thinking(PROMPTS[variant].format(**fields), thinking)


def tracking_messages(
    box_text: str | Sequence[str], variant: str = "current", thinking: bool = False, n_images: int = 2
) -> list[dict]:
    """Chat messages of one tracking query (template image(s), then the search image, then the text)."""
    if variant in PROMPT_IMAGES and PROMPT_IMAGES[variant] != n_images:
        raise ValueError(f"prompt {variant!r} is for {PROMPT_IMAGES[variant]} images, not {n_images}")
    return _user(n_images, tracking_text(box_text, variant, thinking))


def grounding_messages(description: str) -> list[dict]:
    """Chat messages asking for the box of ``description`` in one (full-frame) image."""
    return _user(1, GROUNDING_PROMPT.format(description=description.strip()))
