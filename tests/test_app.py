"""``r1track app``'s handlers without a browser: opening files (bad, empty, huge, long), drawing the box,
tracking from a box or a description with the packaged nano model (the boxes equal ``r1track track``'s),
and the sample's AO. The page itself is driven by a real browser in ``test_app_browser.py``."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from r1track import app as app_module
from r1track.app import App
from r1track.cli import main
from r1track.errors import R1TrackError
from r1track.track import parse_box_arg
from r1track.video import write_annotated


def _app(tmp_path, *options) -> App:
    parser = argparse.ArgumentParser()
    app_module.add_arguments(parser)
    return App(parser.parse_args(["--device", "cpu", *options]), tmp_path / "work")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return _app(tmp_path_factory.mktemp("app"), "--max-frames", "12")


@pytest.fixture(scope="module")
def clip(app, tmp_path_factory):
    """A sample's first 20 frames as an MP4 upload, and the sample."""
    seq = next(iter(app.samples.values()))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    frames = [seq.frame(i) for i in range(20)]
    write_annotated(frames, np.full((20, 4), np.nan), path, fps=10)
    return path, seq


def _boxes_file(path) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in open(path).read().splitlines()])


def test_samples_are_generated_with_ground_truth(app):
    assert len(app.samples) == app_module.SAMPLE_SEQUENCES
    name, seq = next(iter(app.samples.items()))
    clip, first, message = app.open_sample(name)
    assert clip.sample == name and clip.frames == app_module.SAMPLE_FRAMES and clip.used == 12
    assert first.shape == (clip.size[1], clip.size[0], 3) and first.dtype == np.uint8
    assert seq.language in message and "only the first 12 will be tracked" in message
    with pytest.raises(R1TrackError, match="no sample"):
        app.open_sample("nope")


def test_bad_files_are_refused_with_a_message(app, tmp_path):
    with pytest.raises(R1TrackError, match="no file"):
        app.open_video(None)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(R1TrackError, match="empty.mp4 is empty"):
        app.open_video(str(empty))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    with pytest.raises(R1TrackError, match="garbage.mp4.*cannot be opened"):
        app.open_video(str(garbage))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(R1TrackError, match="not a video file"):
        app.open_video(str(text))


def test_a_huge_file_is_refused_before_decoding(tmp_path, clip):
    small = _app(tmp_path, "--max-mb", "0.001")  # 1 kB: the clip is larger
    with pytest.raises(R1TrackError, match=r"clip.mp4 is \d+ MB; this app takes videos up to"):
        small.open_video(str(clip[0]))


def test_a_long_video_is_cut_at_the_limit(app, clip):
    opened, first, message = app.open_video(str(clip[0]))
    assert (opened.frames, opened.used) == (20, 12)
    assert "20 frames" in message and "only the first 12" in message
    out = app.track(opened, "10,10,30,30", "", "csrt")
    assert len(out.boxes) == 12 and "cut: the first 12 of 20 frames" in out.summary
    assert len(open(out.files[0]).read().splitlines()) == 12
    cap = cv2.VideoCapture(out.video)
    assert out.video.endswith(".webm")
    decoded = sum(1 for _ in iter(lambda: cap.read()[0], False))
    assert decoded == 12


def test_two_clicks_draw_the_box(app, clip):
    _, first, _ = app.open_video(str(clip[0]))
    shown, corner, text = app.click(first, None, (50, 40))
    assert corner == (50, 40) and text == "" and not np.array_equal(shown, first)
    shown, corner, text = app.click(first, corner, (20, 90))
    assert corner is None and text == "20,40,30,50"
    np.testing.assert_array_equal(parse_box_arg(text), [20, 40, 30, 50])
    assert (shown != first).any(axis=2).sum() > 100  # the rectangle is drawn
    with pytest.raises(R1TrackError, match="too close"):
        app.click(first, (5, 5), (6, 40))
    # a typed box is drawn the same way; text that is not a box yet leaves the frame as it is
    np.testing.assert_array_equal(app.typed(first, "20,40,30,50"), shown)
    assert app.typed(first, "20,40,") is first


def test_tracking_needs_a_clip_and_a_target(app, clip):
    opened, _, _ = app.open_video(str(clip[0]))
    with pytest.raises(R1TrackError, match="no video yet"):
        app.track(None, "1,2,3,4", "", "nano")
    with pytest.raises(R1TrackError, match="no target"):
        app.track(opened, "", "  ", "nano")
    with pytest.raises(R1TrackError, match="the box must be x,y,w,h"):
        app.track(opened, "1,2,3", "", "nano")
    with pytest.raises(R1TrackError, match="csrt cannot start from a description"):
        app.track(opened, "", "the red circle", "csrt")
    with pytest.raises(R1TrackError, match=r"lies outside the \d+x\d+ frame"):
        app.track(opened, "1000,1000,5,5", "", "csrt")


@pytest.mark.slow
def test_nano_from_a_description_on_a_sample_equals_the_track_command(app, tmp_path):
    pytest.importorskip("transformers")
    name, seq = next(iter(app.samples.items()))
    opened, _, _ = app.open_sample(name)
    seen = []
    out = app.track(opened, "", seq.language, "nano", on_frame=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 12) for i in range(12)]
    ref = tmp_path / "ref.txt"
    folder = seq.frames[0].parent
    assert (
        main(["track", str(folder), "--text", seq.language, "--model", "nano", "--device", "cpu", "--out", str(ref)])
        == 0
    )
    np.testing.assert_array_equal(_boxes_file(out.files[0])[:12], _boxes_file(ref)[:12])
    # the sample's score: per-frame IoU (frame 0 not scored) whose mean over scored frames is the AO
    assert out.ious is not None and len(out.ious) == 12 and np.isnan(out.ious[0])
    ao = float(out.summary.rsplit("AO ", 1)[1].split()[0])
    assert ao == pytest.approx(np.nanmean(out.ious), abs=5e-4)
    assert app_module.iou_figure(out.ious).axes[0].lines  # the plot has the curve


def test_the_page_queues_tracking_one_job_at_a_time(app):
    pytest.importorskip("gradio")
    from r1track.app_page import build_page

    events = {fn.name: fn for fn in build_page(app).fns.values()}
    assert events["run"].concurrency_limit == 1  # a second user's job waits in the queue
    assert {"upload", "pick", "select", "typed"} <= set(events)


def test_frames_beyond_the_size_limit_are_refused(app, tmp_path):
    wide = tmp_path / "wide.avi"  # MJPG takes any frame size
    write_annotated([np.zeros((16, app_module.MAX_SIDE + 8, 3), np.uint8)], np.full((1, 4), np.nan), wide)
    with pytest.raises(R1TrackError, match=rf"wide.avi: frames of {app_module.MAX_SIDE + 8}x16 are too large"):
        app.open_video(str(wide))
