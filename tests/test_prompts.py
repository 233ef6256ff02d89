from __future__ import annotations

import re

import pytest

from conftest import shared
from r1track.prompts import (
    GROUNDING_PROMPT,
    PROMPT_IMAGES,
    PROMPTS,
    THINK_PREFIX,
    format_box,
    grounding_messages,
    tracking_messages,
)

# The reference strings, typed from the paper's released code (and checked against the shared
# reference file below when it is present).
CURRENT = (
    "Given two images, you need to:\n1. Analyze and Identify the target object marked by bounding box "
    "[100,151,227,222] in <image_1>;\n2. Re-locate this target in <image_2>;\n3. Return [x_min, y_min, "
    "x_max, y_max] coordinates of the target in <image_2>."
)
OLD = (
    "Please identify the target specified by the bounding box [100,151,227,222] in the first image and "
    "locate it in the second image. Return the coordinates in [x_min,y_min,x_max,y_max] format."
)
THINK = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "\n The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in "
    "<answer> </answer> tags."
)


def _reference_strings() -> list[str]:
    """Backquoted strings of the shared reference, with its \\n escapes made real newlines."""
    found = []
    reference = shared("reference/r1track.md", "the reference implementation's prompt text")
    for line in reference.read_text().splitlines():  # inline code never spans lines there
        found += [s.replace("\\n", "\n") for s in re.findall(r"`([^`]+)`", line)]
    return found


def _text(messages):
    return messages[0]["content"][-1]["text"]


def test_reference_prompts_verbatim():
    box = "[100,151,227,222]"
    assert _text(tracking_messages(box, "current")) == CURRENT
    assert _text(tracking_messages(box, "old")) == OLD
    assert THINK_PREFIX == THINK
    # thinking: the sentence is prepended to the user text with one space, as the reference did
    assert _text(tracking_messages(box, "old", thinking=True)) == THINK + " " + OLD
    assert _text(grounding_messages("the red car")) == "Please return the coordinates of the red car in JSON format."


def test_prompts_equal_the_shared_reference_text():
    ref = _reference_strings()
    assert PROMPTS["current"] in ref
    assert PROMPTS["old"] in ref
    assert THINK_PREFIX in ref
    assert GROUNDING_PROMPT in ref


@pytest.mark.parametrize("variant", sorted(PROMPTS))
@pytest.mark.parametrize("thinking", [False, True])
def test_message_structure(variant, thinking):
    n = PROMPT_IMAGES[variant]
    boxes = ["[1,2,3,4]", "[5,6,7,8]"][: n - 1]
    messages = tracking_messages(boxes, variant, thinking=thinking, n_images=n)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    content = messages[0]["content"]
    assert content[:n] == [{"type": "image"}] * n
    assert content[n]["type"] == "text" and len(content) == n + 1
    text = content[n]["text"]
    assert "<image>" not in text  # the reference inference quirk is not copied
    for b in boxes:
        assert b in text
    assert "{" not in text and "}" not in text
    assert text.startswith(THINK) == thinking


def test_three_image_prompt_mentions_three_images():
    text = _text(tracking_messages(["[1,2,3,4]", "[5,6,7,8]"], "three", n_images=3))
    assert "<image_3>" in text and text.index("[1,2,3,4]") < text.index("[5,6,7,8]")


def test_bad_arguments():
    with pytest.raises(ValueError):
        tracking_messages("[1,2,3,4]", "current", n_images=3)
    with pytest.raises(ValueError):
        tracking_messages("[1,2,3,4]", "three", n_images=3)  # needs two boxes
    with pytest.raises(ValueError):
        tracking_messages("[1,2,3,4]", "nope")


def test_grounding_messages_structure():
    m = grounding_messages("  a dog ")
    assert m[0]["content"][0] == {"type": "image"} and len(m[0]["content"]) == 2
    assert "a dog in JSON" in m[0]["content"][1]["text"]


@pytest.mark.parametrize(
    "box, text",
    [
        ([100, 151, 227, 222], "[100,151,227,222]"),
        ([99.5, 150.49, 226.51, 0.4], "[100,150,227,0]"),
        ([-3.2, -0.5, 1e3, 7], "[-3,0,1000,7]"),
    ],
)
def test_format_box(box, text):
    assert format_box(box) == text


def test_format_box_rejects_non_finite():
    with pytest.raises(ValueError):
        format_box([1, 2, float("nan"), 4])
    with pytest.raises(ValueError):
        format_box([1, 2, 3])
