"""MLLMTracker through the real path: oracle backend (answers from the ground truth, written with the
family's encoding), the runner, synthetic and real OTB sequences.

Quantisation: answers are integers, so each corner may be off by half a model unit -- 0.5 crop pixel
for qwen2.5-vl (side/336 frame pixels at 336-px crops), 0.5/1000 of the crop side for the normalised
families. The geometry tests assert exactly that bound per frame and coordinate; the AO ceiling it
implies is ~0.987 for qwen2.5-vl at factor 4 (boxes are ~84 crop pixels across), ~0.995 normalised.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared
from r1track import datasets
from r1track.backends.base import Backend, Request
from r1track.backends.oracle import OracleBackend
from r1track.boxes import iou, is_valid, xywh_to_xyxy
from r1track.crops import crop_region, extract
from r1track.errors import R1TrackError
from r1track.evaluation import track_sequence
from r1track.families import get_family
from r1track.prompts import THINK_PREFIX, format_box
from r1track.trackers import tracker_factory
from r1track.trackers.mllm import MLLMTracker


class ScriptedModel(Backend):
    """Stands in for a model that gives exact replies the oracle never writes (inverted corners, NaN
    tokens, boxes off the frame): the model is outside the project, like an HTTP peer."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[Request] = []

    def generate(self, requests):
        self.requests += requests
        return [self.replies.pop(0) for _ in requests]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from r1track.synth import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, sequences=3, frames=30, seed=1, split="val", progress=False)
    return datasets.load("got10k", root, "val")


@pytest.fixture(scope="module")
def otb():
    return datasets.load("otb", shared("data/otb", "real OTB sequences: odd sizes and grey frames"))


def _frame_ok(box, size):
    w, h = size
    return is_valid(box) and box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= w + 1e-9 and box[1] + box[3] <= h + 1e-9


def _check_quantisation(boxes, seq, family, crop_size=336, factor=4.0):
    """Every corner within half a model unit of the truth (the only loss an oracle run may have)."""
    fam = get_family(family)
    w, h = seq.meta["resolution"]
    for i in range(1, len(seq)):
        side = crop_region(boxes[i - 1], factor, crop_size).side
        unit = side / 1000 if fam.normalised else side / crop_size  # frame pixels per model unit
        truth = np.clip(xywh_to_xyxy(seq.gt[i]), 0, [w, h, w, h])
        err = np.abs(xywh_to_xyxy(boxes[i]) - truth)
        assert (err <= 0.5 * unit + 1e-6).all(), (seq.name, i, err, unit)


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen2-vl", "qwen3-vl"])
def test_oracle_on_synthetic_sequences(synthetic, family):
    for seq in synthetic:
        tracker = MLLMTracker(OracleBackend(family=family), family=family)
        boxes, _ = track_sequence(tracker, seq)
        assert tracker.failures == 0
        _check_quantisation(boxes, seq, family)
        ao = iou(boxes[1:], seq.gt[1:]).mean()
        assert ao >= (0.98 if family == "qwen2.5-vl" else 0.99), (seq.name, ao)


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen2-vl"])
def test_oracle_on_otb_sequences(otb, family):
    for seq in otb:
        tracker = MLLMTracker(OracleBackend(family=family))
        boxes, _ = track_sequence(tracker, seq)
        _check_quantisation(boxes, seq, family)
        ao = iou(boxes[1:], seq.gt[1:]).mean()
        assert ao >= (0.98 if family == "qwen2.5-vl" else 0.99), (seq.name, ao)


def test_oracle_at_448_px_and_other_factors(synthetic):
    seq = synthetic[0]
    tracker = MLLMTracker(OracleBackend(), crop_size=448, search_factor=3.0, template_factor=2.0)
    boxes, _ = track_sequence(tracker, seq)
    _check_quantisation(boxes, seq, "qwen2.5-vl", crop_size=448, factor=3.0)
    assert iou(boxes[1:], seq.gt[1:]).mean() >= 0.99


@pytest.mark.parametrize("noise, garbage", [(0.3, 0.0), (0.0, 0.5), (1.0, 0.3)])
def test_noisy_and_garbage_answers_always_give_valid_boxes(synthetic, noise, garbage):
    for seq in synthetic:
        tracker = MLLMTracker(OracleBackend(noise=noise, garbage_rate=garbage, seed=3))
        boxes, _ = track_sequence(tracker, seq)
        for box in boxes[1:]:
            assert _frame_ok(box, seq.meta["resolution"]), box
        if garbage:
            assert 0 < tracker.failures < len(seq)
    assert not tracker.deterministic


def test_lockstep_batching_matches_sequential_tracking(synthetic, tmp_path):
    from r1track import evaluation, results

    backend = OracleBackend()
    counts = evaluation.run(
        lambda: MLLMTracker(backend), synthetic, tmp_path / "batched", "ope", batch_size=3, progress=False
    )
    assert counts.batched
    for seq in synthetic:
        sequential, _ = track_sequence(MLLMTracker(OracleBackend()), seq)
        batched, _ = results.read_ope(tmp_path / "batched", seq.name, len(seq))
        np.testing.assert_allclose(batched, sequential, atol=1e-3)


def _scene(size=(321, 243), n=6):
    """Frames whose size is not a multiple of 28, a red rectangle moving right."""
    w, h = size
    frames, gt = [], []
    for i in range(n):
        f = np.full((h, w, 3), 60, np.uint8)
        x, y, bw, bh = 90 + 5 * i, 70, 57, 41
        f[y : y + bh, x : x + bw] = (230, 30, 30)
        frames.append(f)
        gt.append([x, y, bw, bh])
    return frames, np.array(gt, float)


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen2-vl"])
def test_text_initialisation_end_to_end(family):
    frames, gt = _scene()
    tracker = MLLMTracker(OracleBackend(family=family))
    tracker.truth = gt
    boxes = tracker.track(frames, text="the red box")
    # grounding answers integers in the processor-resized frame (308x252 for 321x243): half a unit
    model_w, model_h = get_family(family).model_size((321, 243))
    unit = (321 / 1000, 243 / 1000) if family == "qwen2-vl" else (321 / model_w, 243 / model_h)
    err = np.abs(xywh_to_xyxy(boxes[0]) - xywh_to_xyxy(gt[0]))
    assert (err <= 0.5 * np.array(unit * 2) + 1e-9).all(), err
    assert iou(boxes, gt).mean() >= 0.97
    assert tracker.failures == 0


def test_text_initialisation_request_and_failure():
    frames, gt = _scene()
    model = ScriptedModel(['```json\n[{"bbox_2d": [84, 66, 137, 104], "label": "box"}]\n```'])
    tracker = MLLMTracker(model)
    tracker.init(frames[0], text="the red box")
    request = model.requests[0]
    assert request.meta["kind"] == "ground" and request.meta["image_size"] == (321, 243)
    assert len(request.images) == 1 and request.images[0].shape == (243, 321, 3)
    assert request.messages[0]["content"][-1]["text"] == "Please return the coordinates of the red box in JSON format."
    # decoded from the 308x252 resized frame back to frame pixels
    np.testing.assert_allclose(tracker.box, [84 * 321 / 308, 66 * 243 / 252, 53 * 321 / 308, 38 * 243 / 252])

    with pytest.raises(R1TrackError, match="text initialisation failed"):
        MLLMTracker(ScriptedModel(["I cannot find it."])).init(frames[0], text="a unicorn")
    with pytest.raises(R1TrackError, match="empty inside the frame"):
        MLLMTracker(ScriptedModel(['[{"bbox_2d": [900, 900, 950, 950]}]'])).init(frames[0], text="x")
    with pytest.raises(R1TrackError, match="text initialisation failed"):
        tracker = MLLMTracker(OracleBackend(garbage_rate=1.0))
        tracker.truth = gt
        tracker.init(frames[0], text="the red box")


def test_request_contents_and_template_box():
    frame = np.zeros((480, 640, 3), np.uint8)
    model = ScriptedModel(["[84,147,252,189]"])
    tracker = MLLMTracker(model, thinking=True)
    tracker.init(frame, [100, 50, 40, 10])
    # side = ceil(sqrt(400) * 4) = 80 around centre (120, 55); scale 4.2
    assert tracker.template_text == "[84,147,252,189]"
    request = tracker.prepare(frame)
    assert len(request.images) == 2 and all(im.shape == (336, 336, 3) for im in request.images)
    content = request.messages[0]["content"]
    assert content[:2] == [{"type": "image"}] * 2 and "[84,147,252,189]" in content[2]["text"]
    assert content[2]["text"].startswith(THINK_PREFIX)
    assert request.meta == {"kind": "track", "family": "qwen2.5-vl", "image_size": (336, 336)}
    np.testing.assert_allclose(
        tracker.commit("<think>same</think><answer>[84,147,252,189]</answer>"), [100, 50, 40, 10]
    )
    assert not tracker.wants_ground_truth and tracker.deterministic

    normalised = MLLMTracker(ScriptedModel([]), family="qwen2-vl")
    normalised.init(frame, [100, 50, 40, 10])
    assert normalised.template_text == format_box(np.array([84, 147, 252, 189]) / 336 * 1000) == "[250,438,750,563]"


def test_truth_is_mapped_into_the_search_crop():
    frames, gt = _scene(n=3)
    tracker = MLLMTracker(OracleBackend())
    tracker.truth = gt
    assert tracker.wants_ground_truth
    tracker.init(frames[0], gt[0])
    request = tracker.prepare(frames[1])
    crop = crop_region(gt[0], 4.0, 336)
    np.testing.assert_allclose(request.meta["truth"], xywh_to_xyxy(crop.to_crop(gt[1])))
    # the red rectangle is where the truth says in the search image
    x1, y1, x2, y2 = request.meta["truth"]
    search = request.images[1]
    assert (search[int(y1) + 2 : int(y2) - 2, int(x1) + 2 : int(x2) - 2, 0] > 200).all()
    assert search[int(y2) + 3, int(x1) + 3, 0] < 100


def test_failure_policy_keeps_the_previous_box():
    frame = np.zeros((240, 320, 3), np.uint8)
    init = np.array([100.0, 80.0, 40.0, 40.0])  # side 160, crop x1 = 40, y1 = 20, scale 2.1
    replies = [
        "nothing here",  # unparsable
        "[200,200,100,100]",  # inverted corners
        "[100,100,100.4,180]",  # narrower than 1 px in the frame
        "[NaN,1,2,3]",
        "[5000,5000,6000,6000]",  # entirely off the frame
        "[-2000,-2000,-1000,-1000]",
        "[126,126,210,210]",  # a good answer: the same box
        "[-100,126,210,210]",  # partly left of the frame: clipped
    ]
    tracker = MLLMTracker(ScriptedModel(replies))
    tracker.init(frame, init)
    outs = [tracker.update(frame) for _ in replies]
    for out in outs[:6]:
        np.testing.assert_allclose(out, init)
    assert tracker.failures == 6
    np.testing.assert_allclose(outs[6], [40 + 126 / 2.1, 20 + 126 / 2.1, 84 / 2.1, 84 / 2.1])
    assert outs[7][0] == 0 and _frame_ok(outs[7], (320, 240))
    assert tracker.failures == 6


@pytest.mark.parametrize("option", [{"max_scale_change": 1.5}, {"scale_smoothing": 0.25}])
def test_scale_options_damp_a_3x_answer(option):
    frame = np.zeros((480, 640, 3), np.uint8)
    # crop side 160 around (120, 120): crop x1 = y1 = 40, scale 2.1; the answer is 3x larger (40 -> 120 px):
    # clamped to 1.5 x 40, or moved a quarter of the way (40 + 0.25 * 80); the centre is the answer's
    tracker = MLLMTracker(ScriptedModel(["[42,42,294,294]"]), **option)
    tracker.init(frame, [100, 100, 40, 40])
    out = tracker.update(frame)
    np.testing.assert_allclose(out[2:], [60, 60])
    np.testing.assert_allclose(out[:2] + out[2:] / 2, [40 + 168 / 2.1, 40 + 168 / 2.1])


def test_max_shift_clamps_a_jump_along_its_direction():
    frame = np.zeros((480, 640, 3), np.uint8)
    # crop side 160 around (120, 120): x1 = y1 = 40, scale 2.1; the answer (same size) is centred at
    # (40 + 294 / 2.1, 40 + 210 / 2.1) = (180, 140): a step of (60, 20) from (120, 120), length 63.2 > 0.5 * 40
    tracker = MLLMTracker(ScriptedModel(["[252,168,336,252]", "[126,126,210,210]"]), max_shift=0.5)
    tracker.init(frame, [100, 100, 40, 40])
    out = tracker.update(frame)
    step = out[:2] + out[2:] / 2 - 120
    np.testing.assert_allclose(np.hypot(*step), 20)
    np.testing.assert_allclose(step / np.hypot(*step), np.array([60, 20]) / np.hypot(60, 20))
    np.testing.assert_allclose(out[2:], [40, 40])
    # a step within the limit is kept as answered: the crop centred on the box (corner rounded to a pixel)
    previous = out
    np.testing.assert_allclose(tracker.update(frame), previous, atol=0.5)
    with pytest.raises(R1TrackError, match="max_shift"):
        MLLMTracker(ScriptedModel([]), max_shift=0)


def test_scale_range_bounds_the_size_against_the_first_frame():
    frame = np.zeros((480, 640, 3), np.uint8)
    # the search crop is 4x the box; an answer of the crop's central 42 of 336 px is half the box (a shrink
    # no per-frame limit of 1.5 would stop), the whole crop 4x the box; centres stay at (120, 120)
    half, whole = "[147,147,189,189]", "[0,0,336,336]"
    tracker = MLLMTracker(ScriptedModel([half, half, half, whole, whole]), scale_range=(0.3, 2))
    tracker.init(frame, [100, 100, 40, 40])
    sizes = [tracker.update(frame) for _ in range(5)]
    np.testing.assert_allclose([b[2] for b in sizes], [20, 12, 12, 48, 80], atol=0.5)
    for box in sizes:
        np.testing.assert_allclose(box[:2] + box[2:] / 2, [120, 120], atol=0.5)
        assert box[2] == box[3]
    for bad in [(0, 2), (1.2, 2), (0.5, 0.9), (0.5,), 0.5, ("a", 2)]:
        with pytest.raises(R1TrackError, match="scale_range"):
            MLLMTracker(ScriptedModel([]), scale_range=bad)


@pytest.mark.parametrize("option", [{"max_scale_change": 0.5}, {"scale_smoothing": 0}, {"scale_smoothing": 1.5}])
def test_scale_options_reject_bad_values(option):
    with pytest.raises(R1TrackError):
        MLLMTracker(ScriptedModel([]), **option)


def test_three_image_prompt_uses_the_recent_frame(synthetic):
    seq = synthetic[1]
    tracker = MLLMTracker(OracleBackend(), three_image=True)
    assert tracker.prompt == "three"
    tracker.truth = seq.gt
    tracker.init(seq.frame(0), seq.gt[0])
    first = tracker.prepare(seq.frame(1))
    assert len(first.images) == 3 and first.messages[0]["content"][:3] == [{"type": "image"}] * 3
    np.testing.assert_array_equal(first.images[1], first.images[0])  # no recent frame yet: the template
    tracker.commit(format_box(first.meta["truth"]))
    second = tracker.prepare(seq.frame(2))
    assert not np.array_equal(second.images[1], second.images[0])
    text = second.messages[0]["content"][-1]["text"]
    assert tracker.template_text in text and "<image_3>" in text
    boxes, _ = track_sequence(MLLMTracker(OracleBackend(), three_image=True), seq)
    assert iou(boxes[1:], seq.gt[1:]).mean() >= 0.98
    with pytest.raises(R1TrackError):
        MLLMTracker(OracleBackend(), prompt="old", three_image=True)
    with pytest.raises(R1TrackError):
        MLLMTracker(OracleBackend(), prompt="three")


def test_template_refresh_only_when_stable(synthetic):
    seq = synthetic[2]
    tracker = MLLMTracker(OracleBackend(), template_refresh=5)
    tracker.truth = seq.gt
    tracker.init(seq.frame(0), seq.gt[0])
    first_template = tracker.template.copy()
    for i in range(1, 4):  # fewer than template_refresh frames: no refresh yet
        tracker.update(seq.frame(i))
    np.testing.assert_array_equal(tracker.template, first_template)
    for i in range(4, 8):
        tracker.update(seq.frame(i))
    assert not np.array_equal(tracker.template, first_template)

    unstable = MLLMTracker(OracleBackend(garbage_rate=1.0), template_refresh=1)
    unstable.truth = seq.gt
    unstable.init(seq.frame(0), seq.gt[0])
    first_template = unstable.template.copy()
    for i in range(1, 8):
        unstable.update(seq.frame(i))
    np.testing.assert_array_equal(unstable.template, first_template)  # failures are never confident


def test_bad_use_is_a_clear_error():
    frame = np.zeros((100, 100, 3), np.uint8)
    tracker = MLLMTracker(ScriptedModel([]))
    with pytest.raises(RuntimeError):
        tracker.update(frame)
    with pytest.raises(ValueError):
        tracker.init(frame)
    with pytest.raises(ValueError, match="no area inside"):
        tracker.init(frame, [200, 200, 10, 10])
    with pytest.raises(ValueError, match="RGB uint8"):
        tracker.init(frame.astype(np.float32), [10, 10, 10, 10])
    tracker.init(frame, [10, 10, 10, 10])
    with pytest.raises(RuntimeError):
        tracker.commit("[1,2,3,4]")
    for bad in [dict(prompt="nope"), dict(pad="reflect"), dict(crop_size=0), dict(template_refresh=0)]:
        with pytest.raises(R1TrackError):
            MLLMTracker(ScriptedModel([]), **bad)


def test_tracker_factory_shares_one_backend(synthetic):
    factory = tracker_factory(backend="oracle", family="qwen2-vl", noise=0.0)
    a, b = factory(), factory()
    assert a is not b and a.backend is b.backend
    assert a.family.name == "qwen2-vl" and a.name == "r1track-oracle"
    boxes, _ = track_sequence(a, synthetic[0])
    assert iou(boxes[1:], synthetic[0].gt[1:]).mean() >= 0.99

    with pytest.raises(R1TrackError, match="a model is required"):
        tracker_factory(backend="transformers")
    with pytest.raises(R1TrackError):  # bad tracker options fail before any model loads
        tracker_factory(backend="oracle", crop_size=0)
    with pytest.raises(R1TrackError, match="does not take"):
        tracker_factory(backend="oracle", base_url="http://localhost:1")


def test_search_crop_follows_the_previous_box():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    model = ScriptedModel(["[0,0,336,336]", "[1,2,3,4]"])
    tracker = MLLMTracker(model, search_factor=4.0, pad="mean")
    tracker.init(frame, [300, 200, 30, 30])
    # the answer is the whole first search crop: side 120 around the box centre (315, 215)
    np.testing.assert_allclose(tracker.update(frame), [255, 155, 120, 120])
    tracker.update(frame)
    expected = extract(frame, crop_region([255, 155, 120, 120], 4.0, 336), pad="mean")  # side 480
    np.testing.assert_array_equal(model.requests[1].images[1], expected)
    np.testing.assert_array_equal(model.requests[1].images[0], model.requests[0].images[0])  # template kept


class CropSized(Backend):
    """Stands in for a model whose answers are centred on the target but sized by the crop: a square of
    ``1 / k`` of the search image's side (the size prior benchmarks/README.md measures for nano models)."""

    def __init__(self, k: float):
        self.k, self.requests = k, []

    def generate(self, requests):
        self.requests += requests
        replies = []
        for r in requests:
            cx, cy = np.add(r.meta["truth"][:2], r.meta["truth"][2:]) / 2
            half = r.meta["image_size"][0] / self.k / 2
            replies.append(format_box([cx - half, cy - half, cx + half, cy + half]))
        return replies


@pytest.mark.parametrize("k", [3.0, 4.0, 5.0])
def test_calibration_picks_the_factor_whose_answers_have_the_boxs_size(k):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    model = CropSized(k)
    # the answers are measured as given: a scale limit clamps tracked answers, not calibration's
    tracker = MLLMTracker(model, crop_size=112, calibrate_factors=[3, 4, 5], max_scale_change=1.1)
    tracker.truth = np.array([[300, 200, 40, 40]] * 2)  # as a runner sets it for a diagnostic backend
    tracker.init(frame, [300, 200, 40, 40])
    assert tracker.factor == k and tracker.search_factor == 4.0
    # a square of side f * 40 / k for the 40-px box at factor f: log area ratio 2 log(f / k), up to rounding
    for f, ratio in tracker.calibration.items():
        assert ratio == pytest.approx(2 * np.log(f / k), abs=0.06)
    # 5 shifted crops per factor, one batch, before any frame is tracked; each shows the template box's truth
    assert len(model.requests) == 15
    assert {r.images[1].shape for r in model.requests} == {(112, 112, 3)}
    assert len({tuple(r.meta["truth"]) for r in model.requests[:5]}) == 5  # the target shifted in each crop
    tracker.update(frame)
    assert tracker.search_crop.side == np.ceil(40 * k)
    assert len(model.requests) == 16


def test_no_calibration_by_default_and_bad_factors_refused():
    frame = np.zeros((240, 320, 3), np.uint8)
    model = CropSized(3.0)
    tracker = MLLMTracker(model, crop_size=112, search_factor=4.5)
    tracker.init(frame, [100, 80, 40, 40])
    assert (tracker.factor, tracker.calibration, model.requests) == (4.5, {}, [])
    for bad in [(), (0, 4), (-3,)]:
        with pytest.raises(R1TrackError, match="calibrate_factors"):
            MLLMTracker(model, calibrate_factors=bad)
