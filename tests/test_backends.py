"""Backends: the transformers backend on a tiny real-architecture checkpoint, vLLM message conversion,
the oracle backend, and the registry."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from r1track.backends import BACKENDS, Request, build_backend
from r1track.backends.oracle import OracleBackend
from r1track.errors import R1TrackError
from r1track.families import get_family
from r1track.parsing import parse_box, parse_grounding
from r1track.prompts import format_box, grounding_messages, tracking_messages


def _request(images, text="Track [10,20,30,40]", truth=None, kind="track", image_size=None):
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": text}]
    meta = {"kind": kind, "family": "qwen2.5-vl"}
    if images:
        meta["image_size"] = image_size or (images[-1].shape[1], images[-1].shape[0])
    if truth is not None:
        meta["truth"] = np.asarray(truth, dtype=np.float64)
    return Request(list(images), [{"role": "user", "content": content}], meta)


def _images(rng, *shapes):
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


# ---------------------------------------------------------------- registry


def test_registry_names_and_clear_errors():
    assert set(BACKENDS) == {"transformers", "vllm", "openai", "oracle"}
    with pytest.raises(R1TrackError, match="unknown backend 'llama'"):
        build_backend("llama")
    with pytest.raises(R1TrackError, match="does not take device"):
        build_backend("oracle", device="cuda")
    backend = build_backend("oracle", family="qwen2-vl", noise=0.1)
    assert isinstance(backend, OracleBackend) and backend.family == "qwen2-vl"


# ---------------------------------------------------------------- transformers backend


@pytest.fixture(scope="module")
def tiny_backend(tiny_dir):
    return build_backend("transformers", model=str(tiny_dir), device="cpu", max_new_tokens=6)


def test_batched_generation_equals_one_by_one(tiny_backend):
    """Left padding: requests of different lengths and image sizes answer alone as in a batch."""
    rng = np.random.default_rng(0)
    requests = [
        _request(_images(rng, (112, 112), (336, 336)), "Track [1,2,3,4]"),
        _request(_images(rng, (56, 84), (168, 224)), "Track [5,6,7,8] " + "with many more words " * 6),
        _request(_images(rng, (336, 336), (112, 224), (224, 112)), "Three images [9,9,9,9]"),
        _request(_images(rng, (200, 150)), "One image, please."),
    ]
    alone = [tiny_backend.generate([r])[0] for r in requests]
    together = tiny_backend.generate(requests)
    assert together == alone
    assert len(set(alone)) == len(alone)  # the random model's answers depend on the input
    assert all(isinstance(t, str) and "<|im_end|>" not in t for t in together)


def test_chunked_batches_and_loaded_pair_give_the_same_replies(tiny_backend, tiny_dir):
    from r1track.backends.transformers import TransformersBackend

    rng = np.random.default_rng(1)
    requests = [_request(_images(rng, (112, 112), (112 + 28 * i, 112)), f"Box [{i},0,1,1]") for i in range(3)]
    expected = tiny_backend.generate(requests)
    model, processor = tiny_backend.model, tiny_backend.processor
    model.train()  # as inside a trainer: the backend evaluates in eval mode and restores the mode
    pair = TransformersBackend(model, processor=processor, max_new_tokens=6, max_batch_size=2)
    assert pair.generate(requests) == expected
    assert model.training
    model.eval()


def test_transformers_backend_reads_family_and_pixel_limits(tiny_backend):
    assert tiny_backend.family == "qwen2.5-vl"
    assert (tiny_backend.min_pixels, tiny_backend.max_pixels) == (3136, 12845056)
    assert tiny_backend.deterministic and tiny_backend.model.device.type == "cpu"
    assert tiny_backend.generate([]) == []


def test_transformers_backend_rejects_bad_requests_and_paths(tiny_backend, tmp_path):
    rng = np.random.default_rng(2)
    bad = _request(_images(rng, (112, 112), (112, 112)))
    bad.images.pop()
    with pytest.raises(R1TrackError, match="1 image.*2 image placeholder"):
        tiny_backend.generate([bad])
    with pytest.raises(R1TrackError, match="not a checkpoint directory"):
        build_backend("transformers", model=str(tmp_path))
    with pytest.raises(R1TrackError, match="needs its processor"):
        build_backend("transformers", model=tiny_backend.model)


def test_mllm_tracker_runs_on_the_tiny_model(tiny_backend):
    """The real chain: crops -> prompt -> batched generation -> parser -> boxes inside the frame."""
    from r1track.trackers.mllm import MLLMTracker

    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    tracker = MLLMTracker(tiny_backend, crop_size=112)
    tracker.init(frames[0], np.array([50.0, 40.0, 30.0, 20.0]))
    for frame in frames[1:]:
        box = tracker.update(frame)
        assert np.isfinite(box).all() and box[2] >= 1 and box[3] >= 1
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= 160 and box[1] + box[3] <= 120


# ---------------------------------------------------------------- vllm backend (no engine here)


def test_vllm_message_conversion_keeps_images_in_order():
    from r1track.backends.vllm import to_vllm_messages

    rng = np.random.default_rng(4)
    images = _images(rng, (30, 40), (50, 20))
    messages = tracking_messages("[1,2,3,4]")
    converted = to_vllm_messages(Request(images, messages, {}))
    parts = converted[0]["content"]
    assert [p["type"] for p in parts] == ["image_pil", "image_pil", "text"]
    for part, image in zip(parts, images):
        assert np.array_equal(np.asarray(part["image_pil"]), image)
    assert parts[2]["text"] == messages[0]["content"][2]["text"]
    assert converted[0]["role"] == "user"
    with pytest.raises(R1TrackError, match="placeholder"):
        to_vllm_messages(Request(images[:1], messages, {}))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_missing_is_a_clear_error():
    with pytest.raises(R1TrackError, match=r"pip install r1track\[vllm\]"):
        build_backend("vllm", model="Qwen/Qwen2.5-VL-3B-Instruct")


# ---------------------------------------------------------------- oracle backend


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen2-vl", "qwen3-vl"])
def test_oracle_answers_the_truth_in_family_coordinates(family):
    oracle = OracleBackend(family=family)
    truth = np.array([40.0, 60.5, 200.0, 180.0])
    image = np.zeros((336, 336, 3), np.uint8)
    reply = oracle.generate([_request([image, image], truth=truth)])[0]
    model_xyxy = get_family(family).encode(truth, (336, 336))
    assert reply == format_box(model_xyxy)
    decoded = get_family(family).decode(parse_box(reply, strict=True), (336, 336))
    assert np.abs(decoded - truth).max() <= 0.5 * 336 / (336 if family == "qwen2.5-vl" else 1000) + 1e-9


def test_oracle_grounding_reply_is_qwen_json():
    oracle = OracleBackend("qwen2.5-vl")
    frame = np.zeros((243, 321, 3), np.uint8)  # processor-resized to 308x252: coordinates scale
    truth = np.array([10.0, 20.0, 110.0, 220.0])
    request = Request([frame], grounding_messages("the red car"), {"kind": "ground", "image_size": (321, 243),
                                                                    "truth": truth})
    reply = oracle.generate([request])[0]
    assert reply.startswith("```json\n[") and '"bbox_2d"' in reply and '"label": "target"' in reply
    expected = np.floor(get_family("qwen2.5-vl").encode(truth, (321, 243)) + 0.5)
    assert np.array_equal(parse_grounding(reply), expected)


def test_oracle_noise_and_garbage_are_seeded_and_calibrated():
    image = np.zeros((336, 336, 3), np.uint8)
    truth = np.array([100.0, 100.0, 200.0, 150.0])
    requests = [_request([image, image], truth=truth) for _ in range(400)]

    noisy = OracleBackend(noise=0.1, seed=7)
    boxes = np.array([parse_box(r) for r in noisy.generate(requests)])
    spread = boxes.std(axis=0) / np.array([100, 50, 100, 50])  # relative to width / height
    assert np.all(np.abs(spread - 0.1) < 0.02)
    again = OracleBackend(noise=0.1, seed=7).generate(requests[:20])
    assert again == OracleBackend(noise=0.1, seed=7).generate(requests[:20])
    assert not noisy.deterministic

    garbage = OracleBackend(garbage_rate=0.3, seed=1).generate(requests)
    failed = [parse_box(g) is None for g in garbage]
    assert 0.22 < np.mean(failed) < 0.38
    assert all(parse_box(g) is None for g in OracleBackend(garbage_rate=1.0, seed=2).generate(requests[:100]))
    assert {g for g in garbage if parse_box(g) is None} >= {"", "I cannot see it."}


def test_oracle_needs_ground_truth():
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(R1TrackError, match="the oracle backend needs ground truth"):
        OracleBackend().generate([_request([image, image])])
    assert OracleBackend.wants_ground_truth


def test_oracle_drives_the_mllm_tracker_to_the_truth():
    """End to end through crops, family encoding and the parser: the pipeline's ceiling is near IoU 1."""
    from r1track.boxes import iou
    from r1track.trackers.mllm import MLLMTracker

    rng = np.random.default_rng(5)
    n = 12
    gt = np.array([[60 + 7 * t, 50 + 3 * t, 40 + t, 30 + 0.5 * t] for t in range(n)], dtype=np.float64)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(n)]
    for family in ("qwen2.5-vl", "qwen2-vl"):
        tracker = MLLMTracker(OracleBackend(family=family))
        assert tracker.wants_ground_truth
        tracker.truth = gt
        tracker.init(frames[0], gt[0])
        boxes = np.array([tracker.update(f) for f in frames[1:]])
        assert iou(boxes, gt[1:]).min() > 0.9, family
        assert tracker.failures == 0
