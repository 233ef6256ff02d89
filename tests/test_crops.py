from __future__ import annotations

import math

import numpy as np
import pytest

from r1track.boxes import is_valid, xywh_to_xyxy
from r1track.crops import Crop, clip_box, crop_region, extract


def test_crop_region_follows_the_recipe():
    crop = crop_region([100, 50, 40, 10], factor=4.0, size=336)
    side = math.ceil(math.sqrt(40 * 10) * 4.0)  # 80
    assert crop.side == side == 80
    assert (crop.x1, crop.y1) == (120 - 40, 55 - 40)
    assert crop.scale == pytest.approx(336 / 80)
    # the box centre is the crop centre
    x, y, w, h = crop.to_crop([100, 50, 40, 10])
    assert x + w / 2 == pytest.approx(168) and y + h / 2 == pytest.approx(168)


def test_crop_region_jitter_shifts_by_fraction_of_side():
    a = crop_region([100, 100, 30, 30], 4.0, 336)
    b = crop_region([100, 100, 30, 30], 4.0, 336, jitter=(0.1, -0.2))
    assert b.side == a.side == 120
    assert b.x1 - a.x1 == 12 and b.y1 - a.y1 == -24


def test_crop_region_rejects_nan_and_survives_empty_boxes():
    with pytest.raises(ValueError):
        crop_region([np.nan, 0, 10, 10], 4.0, 336)
    assert crop_region([5, 5, 0, 10], 4.0, 336).side == 1


@pytest.mark.parametrize("crop", [Crop(-37, 12, 150, 336), Crop(3.25, -7.5, 97.3, 112), Crop(0, 0, 1, 448)])
def test_to_crop_and_to_frame_are_inverses(crop):
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(-100, 500, (50, 2)), rng.uniform(0.1, 300, (50, 2))], axis=1)
    np.testing.assert_allclose(crop.to_frame(crop.to_crop(boxes)), boxes, rtol=0, atol=1e-9)
    np.testing.assert_allclose(crop.to_crop(crop.to_frame(boxes)), boxes, rtol=0, atol=1e-9)
    assert crop.to_crop(boxes[0]).shape == (4,)


def test_crop_is_frozen_and_validated():
    crop = Crop(0, 0, 10, 20)
    with pytest.raises(AttributeError):
        crop.x1 = 3
    with pytest.raises(ValueError):
        Crop(0, 0, 0, 20)
    assert crop.as_list() == [0, 0, 10, 20]


def _frame_with_rectangle(w=640, h=480, box=(200, 150, 60, 40)):
    frame = np.full((h, w, 3), 40, np.uint8)
    x, y, bw, bh = box
    frame[y : y + bh, x : x + bw] = (250, 20, 120)
    return frame


@pytest.mark.parametrize("size", [336, 112, 448])
def test_drawn_rectangle_lands_where_to_crop_says(size):
    box = np.array([200.0, 150.0, 60.0, 40.0])
    frame = _frame_with_rectangle(box=(200, 150, 60, 40))
    crop = crop_region(box, 4.0, size)
    out = extract(frame, crop)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8
    x1, y1, x2, y2 = xywh_to_xyxy(crop.to_crop(box))
    red = out[..., 0] > 145  # the rectangle's red channel is 250, the background 40
    ys, xs = np.nonzero(red)
    # pixels whose centre lies inside the mapped box are red, those outside are not (1 px of blur slack)
    assert xs.min() == pytest.approx(x1, abs=1) and xs.max() + 1 == pytest.approx(x2, abs=1)
    assert ys.min() == pytest.approx(y1, abs=1) and ys.max() + 1 == pytest.approx(y2, abs=1)
    inner = out[int(y1) + 2 : int(y2) - 2, int(x1) + 2 : int(x2) - 2]
    assert (inner == (250, 20, 120)).all()


def test_unscaled_crop_is_an_exact_slice():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = extract(frame, Crop(30, 20, 50, 50))
    np.testing.assert_array_equal(out, frame[20:70, 30:80])


def test_non_integer_crop_matches_the_same_geometry():
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[80:120, 60:100] = 255
    crop = Crop(10.5, 20.25, 150.0, 150)  # scale 1: the square moves by the fractional offset
    out = extract(frame, crop)
    x1, y1, x2, y2 = xywh_to_xyxy(crop.to_crop([60, 80, 40, 40]))
    cols = np.nonzero(out[..., 0].max(0) > 127)[0]
    rows = np.nonzero(out[..., 0].max(1) > 127)[0]
    assert cols.min() == pytest.approx(x1, abs=0.51) and cols.max() + 1 == pytest.approx(x2, abs=0.51)
    assert rows.min() == pytest.approx(y1, abs=0.51) and rows.max() + 1 == pytest.approx(y2, abs=0.51)


@pytest.mark.parametrize("crop", [Crop(-50, -30, 100, 100), Crop(-50.5, -30.5, 100.0, 100)])
def test_padding_constant_and_mean(crop):
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 200, 100, 50
    frame[:30] = (0, 0, 0)  # the top half is black: the mean differs from every pixel
    mean = frame.reshape(-1, 3).mean(0)
    black = extract(frame, crop, pad="constant")
    grey = extract(frame, crop, pad="mean")
    # the top-left quarter of the crop lies outside the frame
    assert (black[:25, :25] == 0).all()
    np.testing.assert_allclose(grey[:25, :25].reshape(-1, 3), np.broadcast_to(mean, (625, 3)), atol=1)
    with pytest.raises(ValueError):
        extract(frame, crop, pad="reflect")


def test_crop_entirely_outside_the_frame_is_all_padding():
    frame = np.full((50, 50, 3), 90, np.uint8)
    out = extract(frame, Crop(500, 500, 40, 336), pad="mean")
    assert out.shape == (336, 336, 3) and (out == 90).all()
    assert (extract(frame, Crop(-100, 0, 40, 336)) == 0).all()


def test_clip_box_keeps_boxes_inside():
    boxes = np.array([[-10, -10, 30, 30], [600, 400, 100, 200], [700, 10, 5, 5]], float)
    out = clip_box(boxes, (640, 480))
    np.testing.assert_allclose(out[0], [0, 0, 20, 20])
    np.testing.assert_allclose(out[1], [600, 400, 40, 80])
    assert not is_valid(out[2])


def test_huge_crop_costs_the_output_size_and_shows_the_frame_where_it_lies():
    import tracemalloc

    frame = np.full((150, 200, 3), 200, np.uint8)
    crop = Crop(-3900, -3925, 8000, 320)  # a 4000-px box's search area; the frame is 8 px at the centre
    tracemalloc.start()
    try:
        out = extract(frame, crop)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * out.nbytes  # slicing and padding the 8000 x 8000 region would take 192 MB
    x1, y1, x2, y2 = xywh_to_xyxy(crop.to_crop([0, 0, 200, 150]))  # the frame inside the crop
    ys, xs = np.nonzero(out[..., 0] > 100)
    assert xs.min() == pytest.approx(x1, abs=1) and xs.max() + 1 == pytest.approx(x2, abs=1)
    assert ys.min() == pytest.approx(y1, abs=1) and ys.max() + 1 == pytest.approx(y2, abs=1)
    assert (out[:100] == 0).all() and (out[-100:] == 0).all()


@pytest.mark.parametrize("crop", [Crop(-5e8, -5e8, 2e9, 336), Crop(-1e12, 3.5, 1e12 + 50, 112),
                                  Crop(1e9, 1e9, 1e9, 64)])
def test_absurd_crops_are_padding_and_frame_not_an_opencv_error(crop):
    frame = np.full((60, 80, 3), 90, np.uint8)
    out = extract(frame, crop, pad="mean")
    assert out.shape == (crop.size, crop.size, 3) and (out == 90).all()


def test_crop_partly_outside_matches_a_full_warp():
    import cv2

    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    for crop in [Crop(-30, 50, 75, 112), Crop(100.5, -20.25, 60.0, 96), Crop(-200, -200, 600, 64)]:
        s = crop.scale
        m = np.array([[1 / s, 0, crop.x1 + 0.5 / s - 0.5], [0, 1 / s, crop.y1 + 0.5 / s - 0.5]])
        full = cv2.warpAffine(frame, m, (crop.size, crop.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        diff = np.abs(extract(frame, crop).astype(int) - full.astype(int))
        assert diff.max() <= 1
