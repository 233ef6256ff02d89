from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1track.parsing import parse_box, parse_grounding

POSITIVE = [
    ("[12,30,80,95]", [12, 30, 80, 95]),
    ("  [12, 30, 80, 95]\n", [12, 30, 80, 95]),
    ("[\n  12.5,\n  30,\n  80.25,\n  95\n]", [12.5, 30, 80.25, 95]),
    ("[-4, -0.5, 1e2, 95]", [-4, -0.5, 100, 95]),
    ("[[12,30,80,95]]", [12, 30, 80, 95]),
    ("<answer>[1,2,3,4]</answer>", [1, 2, 3, 4]),
    ("<think>the box [9,9,9,9] moved</think><answer>[1, 2, 3, 4]</answer>", [1, 2, 3, 4]),
    ("<think>a</think>\n<answer>\n[1,2,3,4]\n</answer>", [1, 2, 3, 4]),
    ("<answer>[5,5,5,5]</answer> then <answer>[1,2,3,4]</answer>", [1, 2, 3, 4]),
    ("<think>thinking [9,9,9,9]</think> [1,2,3,4]", [1, 2, 3, 4]),
    ("<answer>[1,2,3,4]", [1, 2, 3, 4]),  # answer cut off before its closing tag
    ('```json\n[\n\t{"bbox_2d": [135, 114, 283, 274], "label": "dog"}\n]\n```', [135, 114, 283, 274]),
    ('[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"}]', [1, 2, 3, 4]),
    ('{"bbox_2d": [1, 2, 3, 4]}', [1, 2, 3, 4]),
    ('{"bbox": [1, 2, 3, 4], "visible": "yes"}', [1, 2, 3, 4]),
    ('```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "ca', [10, 20, 30, 40]),  # truncated JSON
    ("```\n[7,8,9,10]\n```", [7, 8, 9, 10]),
    ("The target is at [15, 25, 35, 45] in image 2.", [15, 25, 35, 45]),
    ("[1,2,3,4,5] or [6,7,8,9]", [6, 7, 8, 9]),  # a 5-number list is not a box
    ("<|box_start|>(10,20),(30,40)<|box_end|>", [10, 20, 30, 40]),  # Qwen2-VL's native form
    ("[1.5e1,2E0,+3,4.]", [15, 2, 3, 4]),
    ("[80,95,12,30]", [80, 95, 12, 30]),  # inverted corners are returned as written
]

NEGATIVE = [
    "",
    "   ",
    "no box here",
    "[1,2,3]",
    "[1,2,3,4,5]",
    "[NaN, 1, 2, 3]",
    "[Infinity, 1, 2, 3]",
    "[1e999, 1, 2, 3]",
    '["1", "2", "3", "4"]',
    "[true, false, 1, 2]",
    "[null, 1, 2, 3]",
    "{}",
    '{"bbox_2d": [1, 2]}',
    "<think>the box is [1,2,3,4] but",  # reasoning cut off: no answer
    "<answer>nothing</answer>",
    "[" + "1" * 400 + ",1,2,3]",
    "[" * 5000 + "]" * 5000,
]


@pytest.mark.parametrize("text, expected", POSITIVE)
def test_positive_cases(text, expected):
    box = parse_box(text)
    assert box is not None and box.dtype == np.float64 and box.shape == (4,)
    np.testing.assert_array_equal(box, expected)


@pytest.mark.parametrize("text", NEGATIVE)
def test_negative_cases(text):
    assert parse_box(text) is None
    assert parse_box(text, strict=True) is None


def test_strict_is_the_whole_reply_as_a_json_list():
    np.testing.assert_array_equal(parse_box(" [1, 2.5, 3, 4]\n", strict=True), [1, 2.5, 3, 4])
    for text in ["<answer>[1,2,3,4]</answer>", "```json\n[1,2,3,4]\n```", "Box: [1,2,3,4]",
                 '{"bbox_2d": [1,2,3,4]}', "[[1,2,3,4]]", "[1,2,3,4] ok"]:
        assert parse_box(text) is not None
        assert parse_box(text, strict=True) is None


def test_parse_grounding():
    reply = '```json\n[\n  {"bbox_2d": [35, 60, 120, 200], "label": "the red car"}\n]\n```'
    np.testing.assert_array_equal(parse_grounding(reply), [35, 60, 120, 200])
    np.testing.assert_array_equal(parse_grounding("[1,2,3,4]"), [1, 2, 3, 4])
    assert parse_grounding("I cannot see it.") is None
    assert parse_grounding(None) is None


def test_non_strings_give_none():
    for value in [None, 3, b"[1,2,3,4]", [1, 2, 3, 4]]:
        assert parse_box(value) is None


def _check(box):
    assert box is None or (box.shape == (4,) and np.isfinite(box).all())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(
        st.sampled_from(["bbox_2d", "bbox", "label", "box", "x"]), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_random_text_never_raises(text):
    _check(parse_box(text))
    _check(parse_box(text, strict=True))
    _check(parse_grounding(text))


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from(["{}", "```json\n{}\n```", "<answer>{}</answer>", "<think>x</think>{}"]))
def test_fuzz_random_json_never_raises(value, wrapper):
    text = wrapper.replace("{}", json.dumps(value))  # json.dumps writes NaN / Infinity tokens
    _check(parse_box(text))
    _check(parse_box(text, strict=True))
    _check(parse_grounding(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-10**30, 10**30), st.floats(), st.sampled_from(["NaN", "-Infinity", "1e400"])),
                min_size=0, max_size=6), st.integers(0, 3))
def test_fuzz_number_lists(values, depth):
    text = "[" * depth + ",".join(str(v) for v in values) + "]" * depth
    box = parse_box(text)
    _check(box)
    if depth == 1 and len(values) == 4 and all(isinstance(v, int) for v in values):
        np.testing.assert_array_equal(box, [float(v) for v in values])


# Replies of about 1 MB built to make a backtracking parser quadratic (the lazy code-fence pattern on a
# long run of spaces took 20 s at 40 KB); each must return, with the box the reply gives.
MEGABYTE = 1_000_000
ADVERSARIAL = [
    ("```\nthe box is" + " " * MEGABYTE + "[1, 2, 3, 4]\n```", [1, 2, 3, 4]),
    ("```json\n" + "a " * (MEGABYTE // 2), None),
    ("<answer>" + " " * MEGABYTE + "[5,6,7,8]", [5, 6, 7, 8]),
    ("[" + "1" * MEGABYTE + " [1,2,3,4]", [1, 2, 3, 4]),
    ("[1, 2, 3" * (MEGABYTE // 8) + "[9,9,9,9]", [9, 9, 9, 9]),
    ('"bbox_2d": [' * (MEGABYTE // 12), None),
    ("(1 ," * (MEGABYTE // 4), None),
]


@pytest.mark.parametrize("text, expected", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_megabyte_adversarial_replies_return(text, expected):
    assert len(text) >= MEGABYTE * 0.9
    box = parse_box(text)
    if expected is None:
        assert box is None
    else:
        np.testing.assert_array_equal(box, expected)
