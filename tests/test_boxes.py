"""Box geometry: conversions, IoU, GIoU, clipping, on hand-computed values and broadcasting."""

from __future__ import annotations

import numpy as np
import pytest

from r1track import boxes as B


def test_conversions_round_trip_and_values():
    xywh = np.array([[10.0, 20.0, 30.0, 40.0], [-5.5, 0.0, 1.0, 2.5]])
    np.testing.assert_array_equal(B.xywh_to_xyxy(xywh), [[10, 20, 40, 60], [-5.5, 0, -4.5, 2.5]])
    np.testing.assert_array_equal(B.xywh_to_cxcywh(xywh[0]), [25, 40, 30, 40])
    np.testing.assert_allclose(B.xyxy_to_xywh(B.xywh_to_xyxy(xywh)), xywh)
    np.testing.assert_allclose(B.cxcywh_to_xywh(B.xywh_to_cxcywh(xywh)), xywh)
    with pytest.raises(ValueError, match="last dimension of 4"):
        B.xywh_to_xyxy([1, 2, 3])


def test_iou_and_giou_hand_computed():
    a = [0, 0, 10, 10]
    assert B.iou(a, a) == 1.0 and B.giou(a, a) == 1.0
    # half overlap: inter 50, union 150
    assert B.iou(a, [5, 0, 10, 10]) == pytest.approx(1 / 3)
    assert B.giou(a, [5, 0, 10, 10]) == pytest.approx(1 / 3)  # enclosing box = union
    # disjoint: IoU 0; enclosing 30x10 = 300, union 200 -> GIoU = -100/300
    assert B.iou(a, [20, 0, 10, 10]) == 0.0
    assert B.giou(a, [20, 0, 10, 10]) == pytest.approx(-1 / 3)
    # nested: IoU = GIoU = area ratio
    assert B.giou(a, [0, 0, 5, 5]) == pytest.approx(0.25) == B.iou(a, [0, 0, 5, 5])


def test_degenerate_and_nan_boxes():
    assert B.iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # empty union
    assert B.giou([3, 3, 0, 0], [3, 3, 0, 0]) == 0.0
    assert np.isnan(B.iou([np.nan, 0, 1, 1], [0, 0, 1, 1]))
    assert np.isnan(B.giou([0, 0, 1, 1], [0, np.nan, 1, 1]))
    assert B.is_valid([[0, 0, 1, 1], [0, 0, 0, 1], [np.inf, 0, 1, 1]]).tolist() == [True, False, False]


def test_broadcasting_over_frames():
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 0, 10, 10]], dtype=float)
    out = B.iou(pred, [0, 0, 10, 10])
    assert out.shape == (3,) and out.tolist() == pytest.approx([1, 1 / 3, 0])
    assert B.centre_distance(pred, [0, 0, 10, 10]).tolist() == pytest.approx([0, 5, 20])


def test_clip_to_image_intersects_with_the_frame():
    clipped = B.clip_to_image([[-5, -5, 20, 20], [90, 40, 30, 30], [200, 200, 5, 5]], 100, 50)
    np.testing.assert_array_equal(clipped, [[0, 0, 15, 15], [90, 40, 10, 10], [100, 50, 0, 0]])
