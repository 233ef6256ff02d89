"""Rewards: exact values, the reference shaping boundaries, format rules, length penalty, TRL logging."""

from __future__ import annotations

import numpy as np
import pytest

from r1track.errors import R1TrackError
from r1track.training.rewards import (
    REWARDS,
    format_reward,
    get_rewards,
    giou_reward,
    iou_reward,
    r1track_reward,
    shape_giou,
    think_reward,
    track_reward,
)

GT = [0, 0, 100, 100]  # nested predictions [0, 0, 100, k] have IoU = GIoU = k / 100 exactly


def nested(k: int) -> str:
    return f"[0,0,100,{k}]"


def conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    "k, expected",
    [
        (100, 1.5),  # perfect: 1 + 0.5
        (96, 0.96 + 0.5),
        (95, 0.95 + 0.5),  # g == 0.95 -> g + 0.5
        (94, 0.94 + 0.2),
        (76, 0.76 + 0.2),
        (75, 0.75),  # g == 0.75 stays
        (60, 0.6),
        (40, 0.4),  # g == 0.4 stays
        (39, 0.0),  # 0 < g < 0.4 -> 0
        (1, 0.0),
    ],
)
def test_r1track_reward_shaping_boundaries(k, expected):
    assert r1track_reward([nested(k)], [GT]) == [pytest.approx(expected, abs=1e-12)]


def test_r1track_reward_negative_giou_is_kept():
    # disjoint boxes [0,0,10,10] and [20,0,30,10]: union 200, enclosing 300 -> GIoU = -1/3
    assert r1track_reward(["[20,0,30,10]"], [[0, 0, 10, 10]]) == [pytest.approx(-1 / 3)]
    # touching boxes: GIoU 0 -> 0 (not in the (0, 0.4) band, not negative)
    assert r1track_reward(["[10,0,20,10]"], [[0, 0, 10, 10]]) == [0.0]


@pytest.mark.parametrize(
    "reply",
    [
        "The box is [0,0,100,100]",  # not the whole reply
        "```json\n[0,0,100,100]\n```",  # fenced: not strict
        "[0,0,100]",
        "[0,0,100,100,5]",
        "",
        "<answer>[0,0,100,100]</answer>",
        "[100,0,0,100]",  # inverted corners
        "[0,0,0,100]",  # empty box
        "[0,0,NaN,100]",
    ],
)
def test_r1track_reward_rejects(reply):
    assert r1track_reward([reply], [GT]) == [-1.0]


def test_conversational_and_part_lists_and_whitespace():
    parts = [{"role": "assistant", "content": [{"type": "text", "text": " [0,0,100,75]\n"}]}]
    out = r1track_reward([conv("[0,0,100,100]"), parts, " [0, 0, 100, 95] "], [GT, GT, GT])
    assert out == [pytest.approx(1.5), pytest.approx(0.75), pytest.approx(1.45)]


def test_float_answers_and_model_coordinates():
    # answers and solutions live in model coordinates; floats are fine
    assert r1track_reward(["[10.0, 20.5, 110.0, 120.5]"], [[10, 20.5, 110, 120.5]]) == [pytest.approx(1.5)]
    assert r1track_reward(["[0,0,50,100]"], ["[0, 0, 100, 100]"]) == [pytest.approx(0.5)]  # JSON string gt


def test_iou_and_giou_rewards():
    replies = ["[0,0,100,50]", "reasoning... [0,0,100,50]", "no box", "[20,0,30,10]"]
    sols = [GT, GT, GT, [0, 0, 10, 10]]
    assert iou_reward(replies, sols) == [pytest.approx(0.5), pytest.approx(0.5), 0.0, 0.0]
    assert giou_reward(replies, sols) == [pytest.approx(0.5), pytest.approx(0.5), -1.0, pytest.approx(-1 / 3)]


def test_track_reward_prefers_the_right_size():
    import math

    replies = ["[0,0,100,100]", "[0,0,100,50]", "[-50,-50,150,150]", "[50,0,150,100]", "reasoning [0,0,100,100]",
               "[1000,1000,5000,5000]"]
    rewards = track_reward(replies, [GT] * len(replies))
    assert rewards[0] == pytest.approx(1.0)
    assert rewards[1] == pytest.approx(0.5 - math.log(2) / 2)  # half the height: GIoU 0.5, size error ln2 / 2
    assert rewards[2] == pytest.approx(0.25 - math.log(2))  # twice the side, same centre: GIoU 0.25
    assert rewards[3] == pytest.approx(1 / 3)  # the right size half a side off: GIoU 1/3, no size error
    assert rewards[4] == -1.0  # strict parse, as the reference reward
    assert rewards[5] == -1.0  # floored
    assert rewards[2] < rewards[1] < rewards[3]


def test_track_reward_does_not_pay_for_hedging_a_centre_error():
    # centre errors ~ N(0, 0.4 side): the expected GIoU is highest for a box larger than the target, the
    # expected track reward for the target's own size
    offsets = np.random.default_rng(0).normal(0, 40, (200, 2))
    sides = np.linspace(0.7, 1.6, 10)

    def best_side(reward):
        def mean(s):
            half = 50 * s
            replies = [f"[{50 + dx - half},{50 + dy - half},{50 + dx + half},{50 + dy + half}]" for dx, dy in offsets]
            return np.mean(reward(replies, [GT] * len(replies)))
        return max(sides, key=mean)

    assert best_side(giou_reward) >= 1.2
    assert best_side(track_reward) == pytest.approx(1.0)


def test_format_reward():
    replies = ["[1,2,3,4]", " [1, 2, 3, 4]\n", "box: [1,2,3,4]", "[3,2,1,4]", "[1,2,3]", "{}"]
    assert format_reward(replies, [GT] * 6) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_grounding_samples_use_the_grounding_parser():
    reply = '```json\n[\n\t{"bbox_2d": [0, 0, 100, 100], "label": "red car"}\n]\n```'
    kw = {"task": ["ground", "track"]}
    assert r1track_reward([reply, reply], [GT, GT], **kw) == [pytest.approx(1.5), -1.0]
    assert format_reward([reply, reply], [GT, GT], **kw) == [1.0, 0.0]
    assert iou_reward([reply], [GT], task=["ground"]) == [pytest.approx(1.0)]


def think(answer: str, reasoning: str = "the cat moved left") -> str:
    return f"<think>{reasoning}</think><answer>{answer}</answer>"


def test_think_reward_format():
    ok = think(nested(100))
    assert think_reward([ok], [GT]) == [pytest.approx(1.5 + 0.05)]
    assert think_reward([think(nested(40))], [GT]) == [pytest.approx(0.4 + 0.05)]
    assert think_reward([think(nested(39))], [GT]) == [pytest.approx(0.05)]
    # text between </think> and <answer>, and surrounding whitespace, are allowed as by the reference
    assert think_reward(["\n<think>a</think>\nso:\n<answer> [0,0,100,100] </answer>\n"], [GT]) == [
        pytest.approx(1.55)]
    bad = [
        nested(100),  # no tags
        "<answer>[0,0,100,100]</answer>",  # no think
        "<think>a</think>",  # no answer
        "<think>a<think>b</think></think><answer>[0,0,100,100]</answer>",  # nested think
        "<think>a</think><answer>[0,0,100,100]</answer> trailing",
        "<think>a</think><answer>The box is [0,0,100,100]</answer>",  # answer not a bare list
        "<answer>[0,0,100,100]</answer><think>a</think>",
    ]
    assert think_reward(bad, [GT] * len(bad)) == [-1.0] * len(bad)


def test_think_reward_short_replies_are_not_punished():
    # the reference gave -1 below 128 tokens; we do not
    assert think_reward([think(nested(100), reasoning="x")], [GT], completion_ids=[[0] * 10]) == [
        pytest.approx(1.55)]


@pytest.mark.parametrize("n, penalty", [(300, 0.0), (448, 0.0), (480, -0.5), (512, -1.0), (600, -1.0)])
def test_think_reward_length_penalty_with_completion_ids(n, penalty):
    out = think_reward([think(nested(100))], [GT], completion_ids=[list(range(n))])
    assert out == [pytest.approx(1.5 + 0.05 + 0.1 * penalty)]


def test_think_reward_length_from_tokenizer_or_characters():
    class CharTokenizer:  # a stand-in tokenizer: one token per character (outside the project)
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": list(text)}

    reasoning = "r" * (480 - len("<think></think><answer>[0,0,100,100]</answer>"))
    reply = think(nested(100), reasoning)
    assert len(reply) == 480
    assert think_reward([reply], [GT], tokenizer=CharTokenizer()) == [pytest.approx(1.55 - 0.05)]
    # no ids, no tokenizer: ceil(chars / 4) tokens -> 480 chars = 120 tokens, no penalty
    assert think_reward([reply], [GT]) == [pytest.approx(1.55)]
    long_reply = think(nested(100), "r" * (4 * 480 - 45))
    assert len(long_reply) == 4 * 480
    assert think_reward([long_reply], [GT]) == [pytest.approx(1.55 - 0.05)]


def test_shape_giou_function():
    assert [shape_giou(g) for g in (-0.5, 0.0, 0.2, 0.4, 0.75, 0.8, 0.95, 1.0)] == pytest.approx(
        [-0.5, 0.0, 0.0, 0.4, 0.75, 1.0, 1.45, 1.5])


def test_rewards_log_parse_rate_and_mean_iou():
    logged = []
    replies = ["[0,0,100,50]", "garbage", "[0,0,100,100]", "[0,0,100,0]"]
    r1track_reward(replies, [GT] * 4, log_metric=lambda name, value: logged.append((name, value)))
    assert dict(logged) == {
        "rewards/r1track_reward/parse_rate": pytest.approx(0.75),
        "rewards/r1track_reward/mean_iou": pytest.approx((0.5 + 1.0) / 4),
    }
    logged.clear()
    think_reward([think("[0,0,100,50]"), "[0,0,100,50]"], [GT, GT], log_metric=lambda n, v: logged.append((n, v)))
    assert dict(logged) == {"rewards/think_reward/parse_rate": 0.5, "rewards/think_reward/mean_iou": 0.25}


def test_trl_style_call_with_extra_columns():
    # GRPOTrainer passes prompts, completion_ids, every dataset column, trainer_state, log_extra ...
    out = r1track_reward(
        prompts=[[{"role": "user", "content": "x"}]], completions=[conv("[0,0,100,100]")], solution=[GT],
        completion_ids=[[1, 2, 3]], task=["track"], image_size=[[336, 336]], trainer_state=None,
        log_extra=lambda *a: None, log_metric=lambda *a: None, family=["qwen2.5-vl"],
    )
    assert out == [pytest.approx(1.5)]


def test_registry():
    assert get_rewards(["r1track", "format_reward"]) == [r1track_reward, format_reward]
    assert get_rewards("think,iou") == [think_reward, iou_reward]
    assert set(REWARDS) == {"r1track", "think", "iou", "giou", "format", "track"}
    with pytest.raises(R1TrackError, match="unknown reward"):
        get_rewards(["accuracy"])
