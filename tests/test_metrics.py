"""Scoring rules: the GOT-10k golden fixture of benchmarks.md and one hand-computed case per one-pass rule."""

from __future__ import annotations

import numpy as np
import pytest

from r1track import metrics, results
from r1track.datasets.base import Sequence
from r1track.errors import DataError, R1TrackError


def seq(name, gt, **meta_and_fields):
    fields = {k: meta_and_fields.pop(k) for k in ("absent", "visible_ratio") if k in meta_and_fields}
    gt = np.asarray(gt, dtype=np.float64)
    return Sequence(name, [f"{i:08d}.jpg" for i in range(len(gt))], gt, meta=meta_and_fields, **fields)


# ---------------------------------------------------------------- GOT-10k golden fixture


def golden(tmp_path):
    """benchmarks.md: resolution 64x48, cover 8 unless said, times 0.05 s with frame 0 at 0 s."""
    gt_a = np.tile([10, 10, 20, 20], (6, 1))
    pred_a = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [20, 10, 20, 20], [-10, 10, 20, 20],
                       [15, 10, 20, 20], [10, 10, 20, 20]], dtype=float)
    gt_b = np.tile([0, 0, 40, 20], (5, 1))
    pred_b = np.array([[0, 0, 40, 20], [0, 0, 20, 20], [0, 0, 30, 20], [50, 0, 40, 20], [0, 0, 0, 0]],
                      dtype=float)
    cover_a = np.array([8, 8, 8, 8, 8, 0])
    seqs = [seq("A", gt_a, resolution=(64, 48), cover=cover_a, object_class="cat", motion_class="run"),
            seq("B", gt_b, resolution=(64, 48), cover=np.full(5, 8), object_class="dog",
                motion_class="run")]
    for s, pred in zip(seqs, [pred_a, pred_b]):
        times = np.full(len(pred), 0.05)
        times[0] = 0
        results.write_got10k(tmp_path, s.name, [pred], [times])
    return seqs


def test_got10k_golden_fixture(tmp_path):
    report = metrics.score_got10k(golden(tmp_path), tmp_path)
    o = report["overall"]
    assert o["ao"] == pytest.approx(0.4395833333, abs=1e-9)
    assert o["sr50"] == pytest.approx(0.375, abs=1e-12)
    assert o["sr75"] == pytest.approx(0.125, abs=1e-12)
    assert o["speed_fps"] == pytest.approx(20.0, abs=1e-9)
    assert len(o["success_curve"]) == 101 and o["success_curve"][0] == pytest.approx(6 / 8)
    assert o["num_frames"] == 8 and o["num_sequences"] == 2
    a, b = report["sequences"]["A"], report["sequences"]["B"]
    assert a["ao"] == pytest.approx(0.566667, abs=1e-6) and b["ao"] == pytest.approx(0.3125, abs=1e-9)
    assert a["sr50"] == 0.5 and b["sr50"] == 0.25
    assert a["length"] == 5 and b["length"] == 4
    # groups are frame-weighted over their sequences
    assert report["object_classes"]["cat"]["ao"] == pytest.approx(a["ao"])
    assert report["motion_classes"]["run"]["ao"] == pytest.approx(o["ao"])
    assert report["motion_classes"]["run"]["num_sequences"] == 2


def test_got10k_bounding_shifts_box_leaving_left():
    # -10,10,20,20 bounded to x=0 keeps w=20 (shifted, not cropped) -> same IoU as 20,10,20,20 vs GT
    gt = np.array([[10, 10, 20, 20]], float)
    left = metrics.got10k_iou(np.array([[-10, 10, 20, 20]], float), gt, (64, 48))
    assert left[0] == pytest.approx(1 / 3)
    assert metrics.bound_to_image(np.array([60, 40, 30, 30.0]), 64, 48).tolist() == [60, 40, 4, 8]


def test_got10k_three_runs_are_all_concatenated(tmp_path):
    gt = np.tile([0, 0, 10, 10], (3, 1)).astype(float)
    s = seq("S", gt, resolution=(100, 100), cover=np.full(3, 8))
    perfect, half = gt.copy(), gt.copy()
    half[1:, 2] = 5  # IoU 0.5 on frames 1, 2
    results.write_got10k(tmp_path, "S", [perfect, half, half], [np.zeros(3)] * 3)
    report = metrics.score_got10k([s], tmp_path)
    assert report["overall"]["ao"] == pytest.approx((2 * 1 + 4 * 0.5) / 6, abs=1e-12)
    assert report["overall"]["speed_fps"] is None  # all times 0: the toolkit's -1, never a number
    assert report["overall"]["num_frames"] == 2


def test_got10k_sequence_without_visible_frames_reports_none(tmp_path):
    gt = np.tile([0, 0, 10, 10], (3, 1)).astype(float)
    results.write_got10k(tmp_path, "S", [gt], [np.full(3, 0.1)])
    report = metrics.score_got10k([seq("S", gt, resolution=(50, 50), cover=np.zeros(3))], tmp_path)
    assert report["sequences"]["S"]["ao"] is None and report["sequences"]["S"]["sr50"] is None


def test_got10k_test_split_cannot_be_scored(tmp_path):
    gt = np.full((4, 4), np.nan)
    gt[0] = [1, 2, 3, 4]
    with pytest.raises(R1TrackError, match="cannot be scored locally"):
        metrics.score_got10k([seq("T", gt, resolution=(50, 50))], tmp_path)


def test_got10k_missing_and_nan_results_are_clear_errors(tmp_path):
    seqs = golden(tmp_path)
    (tmp_path / "B" / "B_001.txt").write_text("0,0,40,20\nnan,0,1,1\n0,0,1,1\n0,0,1,1\n0,0,1,1\n")
    with pytest.raises(DataError, match=r"B_001.txt:2: value is not finite"):
        metrics.score_got10k(seqs, tmp_path)
    seqs.append(seq("C", np.ones((3, 4)), resolution=(9, 9)))
    with pytest.raises(R1TrackError, match="no results for 1 of 3 sequences"):
        metrics.score_got10k(seqs, tmp_path)


# ---------------------------------------------------------------- one-pass rules, hand-computed


def test_thresholds_are_the_toolkits():
    assert metrics.OPE_IOU_THRESHOLDS[10] == 0.5 and len(metrics.OPE_IOU_THRESHOLDS) == 21
    assert metrics.OPE_PIXEL_THRESHOLDS[20] == 20 and len(metrics.OPE_PIXEL_THRESHOLDS) == 51
    assert metrics.OPE_NORM_THRESHOLDS[20] == pytest.approx(0.2) and metrics.OPE_NORM_THRESHOLDS[-1] == 0.5


def test_ope_success_is_strict():
    gt = np.tile([0, 0, 20, 10], (2, 1)).astype(float)
    pred = np.array([[0, 0, 20, 10], [0, 0, 10, 10]], float)  # frame 1 IoU exactly 0.5
    c = metrics.ope_curves(pred, gt)["success_curve"]
    assert c[9] == 1.0 and c[10] == 0.5  # 0.5 > 0.5 fails
    assert c[20] == 0.0  # IoU 1 is not > 1
    assert np.mean(c) == pytest.approx(15 / 21)


def test_ope_every_frame_is_in_the_denominator():
    gt = np.tile([5, 5, 10, 10], (5, 1)).astype(float)
    gt[3] = np.nan  # invalid ground truth
    absent = np.array([False, False, True, False, False])
    pred = np.tile([5, 5, 10, 10], (5, 1)).astype(float)  # perfect everywhere
    c = metrics.ope_curves(pred, gt, absent)
    assert c["success_curve"][0] == pytest.approx(3 / 5)
    assert c["precision_curve"][20] == pytest.approx(3 / 5)
    assert c["norm_precision_curve"][20] == pytest.approx(3 / 5)


def test_ope_frame0_prediction_is_replaced_by_ground_truth():
    gt = np.tile([10, 10, 10, 10], (2, 1)).astype(float)
    pred = np.array([[500, 500, 3, 3], [10, 10, 10, 10]], float)
    c = metrics.ope_curves(pred, gt)
    assert c["success_curve"][0] == 1.0 and c["precision_curve"][0] == 1.0


def test_ope_invalid_prediction_is_replaced_by_the_previous_one():
    gt = np.tile([0, 0, 20, 10], (5, 1)).astype(float)
    pred = np.array([[0, 0, 20, 10], [0, 0, 10, 10], [np.nan] * 4, [0, 0, 0, 10], [3, 3, 20, -1]],
                    float)
    c = metrics.ope_curves(pred, gt)["success_curve"]
    assert c[9] == 1.0  # frames 2-4 carry frame 1's IoU of 0.5: all pass 0.45
    assert c[10] == pytest.approx(1 / 5)
    assert metrics.fill_invalid(pred)[2:].tolist() == [[0, 0, 10, 10]] * 3


def test_ope_precision_at_20_px_is_inclusive():
    gt = np.tile([10, 10, 20, 20], (3, 1)).astype(float)
    pred = np.array([[10, 10, 20, 20], [30, 10, 20, 20], [30.5, 10, 20, 20]], float)  # 0, 20, 20.5 px
    p = metrics.ope_curves(pred, gt)["precision_curve"]
    assert p[19] == pytest.approx(1 / 3) and p[20] == pytest.approx(2 / 3) and p[21] == 1.0


def test_ope_normalised_precision_divides_by_gt_size():
    gt = np.tile([0, 0, 100, 50], (3, 1)).astype(float)
    # frame 1: 10 px right, 15 px down -> 18.0 px, normalised sqrt(0.1^2 + 0.3^2) = 0.316
    # frame 2: 15 px right, 5 px down -> 15.8 px, normalised sqrt(0.15^2 + 0.1^2) = 0.180
    pred = np.array([[0, 0, 100, 50], [10, 15, 100, 50], [15, 5, 100, 50]], float)
    c = metrics.ope_curves(pred, gt)
    assert c["precision_curve"][20] == 1.0
    assert c["norm_precision_curve"][20] == pytest.approx(2 / 3)
    assert c["norm_precision_curve"][31] == pytest.approx(2 / 3) and c["norm_precision_curve"][32] == 1.0


def test_ope_centre_uses_w_minus_1_over_2():
    assert metrics.centre(np.array([10, 20, 5, 7.0])).tolist() == [12.0, 23.0]


def test_score_ope_averages_curves_over_sequences_and_attributes(tmp_path):
    gt1 = np.tile([0, 0, 20, 10], (2, 1)).astype(float)
    gt2 = np.tile([0, 0, 20, 10], (4, 1)).astype(float)
    p1 = np.array([[0, 0, 20, 10], [0, 0, 10, 10]], float)  # AUC 15/21
    p2 = gt2.copy()  # AUC 20/21
    s1 = seq("one", gt1, attributes=["OCC", "FM"])
    s2 = seq("two", gt2, attributes=["OCC"])
    results.write_ope(tmp_path, "one", p1, times=[0.0, 0.1])
    results.write_ope(tmp_path, "two", p2, times=[0.0, 0.2, 0.2, 0.2])
    r = metrics.score_ope([s1, s2], tmp_path)
    assert r["sequences"]["one"]["auc"] == pytest.approx(15 / 21)
    assert r["overall"]["auc"] == pytest.approx((15 / 21 + 20 / 21) / 2)  # per sequence, not per frame
    assert r["overall"]["precision"] == 1.0 and r["overall"]["num_sequences"] == 2
    assert r["overall"]["speed_fps"] == pytest.approx((10 + 3 * 5) / 4)
    assert len(r["overall"]["precision_curve"]) == 51 and len(r["overall"]["norm_precision_curve"]) == 51
    assert r["attributes"]["FM"]["auc"] == pytest.approx(15 / 21)
    assert r["attributes"]["OCC"]["num_sequences"] == 2


def test_score_ope_lasot_truncates_longer_results(tmp_path):
    gt = np.tile([0, 0, 20, 10], (3, 1)).astype(float)
    results.write_ope(tmp_path, "monkey-17", np.tile([0, 0, 20, 10], (5, 1)).astype(float))
    r = metrics.score_ope([seq("monkey-17", gt, dataset="lasot")], tmp_path)
    assert r["sequences"]["monkey-17"]["auc"] == pytest.approx(20 / 21)
    with pytest.raises(DataError, match="has 5 rows, expected 3"):
        metrics.score_ope([seq("monkey-17", gt, dataset="otb")], tmp_path)
