from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1track.errors import R1TrackError
from r1track.families import FAMILIES, detect_family, get_family, smart_resize


@pytest.mark.parametrize("side", [112, 224, 336, 448])
def test_smart_resize_keeps_multiples_of_28(side):
    assert smart_resize(side, side) == (side, side)
    assert get_family("qwen2.5-vl").model_size((side, side)) == (side, side)


@pytest.mark.parametrize(
    "h, w, expected",
    [
        (243, 321, (252, 308)),  # rounded to the nearest multiple of 28
        (480, 640, (476, 644)),
        (1080, 1920, (1092, 1932)),  # under the released 12,845,056-pixel limit: only rounded
        (4000, 6000, (2912, 4368)),  # above it: scaled down, floored
        (20, 20, (56, 56)),  # below 56*56 pixels: scaled up, ceiled
        (10, 1000, (28, 560)),
    ],
)
def test_smart_resize_known_values(h, w, expected):
    assert smart_resize(h, w) == expected


def test_smart_resize_with_transformers_class_default_limit():
    # transformers' own default max (28*28*1280) scales a 1080p frame down
    assert smart_resize(1080, 1920, max_pixels=28 * 28 * 1280) == (728, 1316)


@settings(max_examples=200, deadline=None)
@given(st.integers(20, 3000), st.integers(20, 3000))
def test_smart_resize_matches_transformers(h, w):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as upstream

    assert smart_resize(h, w, 28, 3136, 28 * 28 * 1280) == upstream(h, w, 28, 3136, 28 * 28 * 1280)
    assert smart_resize(h, w) == upstream(h, w, 28, 3136, 12845056)
    assert smart_resize(h, w, 32, 65536, 16777216) == upstream(h, w, 32, 65536, 16777216)


def test_qwen25_encodes_absolute_pixels_of_the_resized_image():
    fam = get_family("qwen2.5-vl")
    box = np.array([32.1, 24.3, 160.5, 121.5])
    np.testing.assert_allclose(fam.encode(box, (321, 243)), box * np.array([308 / 321, 252 / 243] * 2))
    # on a 336 crop, crop pixels are model coordinates
    np.testing.assert_array_equal(fam.encode(box, (336, 336)), box)


@pytest.mark.parametrize("name", ["qwen2-vl", "qwen3-vl"])
def test_normalised_families(name):
    fam = get_family(name)
    assert fam.normalised
    np.testing.assert_allclose(fam.encode([0, 0, 321, 243], (321, 243)), [0, 0, 1000, 1000])
    np.testing.assert_allclose(fam.encode([168, 84, 336, 336], (336, 336)), [500, 250, 1000, 1000])
    # normalised coordinates do not depend on the processor's resize
    np.testing.assert_allclose(fam.encode([10, 10, 20, 20], (100, 50)),
                               fam.with_pixels(max_pixels=28 * 28 * 4).encode([10, 10, 20, 20], (100, 50)))


@pytest.mark.parametrize("name", sorted(FAMILIES))
@settings(max_examples=50, deadline=None)
@given(
    size=st.tuples(st.integers(28, 2000), st.integers(28, 2000)),
    box=st.lists(st.floats(-500, 3000, allow_nan=False), min_size=4, max_size=4),
)
def test_encode_decode_round_trip(name, size, box):
    fam = get_family(name)
    np.testing.assert_allclose(fam.decode(fam.encode(box, size), size), box, rtol=1e-12, atol=1e-9)
    boxes = np.array([box, box])
    assert fam.encode(boxes, size).shape == (2, 4)


def test_get_family_aliases_and_pixel_overrides():
    assert get_family("Qwen2_5_VL").name == "qwen2.5-vl"
    fam = get_family("qwen2.5-vl", max_pixels=12845056)
    assert fam.model_size((1920, 1080)) == (1932, 1092)
    assert get_family(fam) is fam
    with pytest.raises(R1TrackError, match="unknown model family"):
        get_family("llava")


def test_detect_family():
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig

    assert detect_family(Qwen2_5_VLConfig()) == "qwen2.5-vl"
    assert detect_family(Qwen2VLConfig()) == "qwen2-vl"
    assert detect_family({"model_type": "qwen3_vl"}) == "qwen3-vl"
    assert detect_family({"model_type": "qwen3_vl_moe"}) == "qwen3-vl"
    assert detect_family({"model_type": "llava"}, override="qwen2-vl") == "qwen2-vl"
    with pytest.raises(R1TrackError, match="--family"):
        detect_family({"model_type": "llava"})
