"""Pair builder: boxes and images follow the recorded crops, options do what they say, determinism, I/O."""

from __future__ import annotations

import json
import math
import re
import zlib

import cv2
import numpy as np
import pytest

from r1track.cli import main
from r1track.crops import Crop, extract
from r1track.datasets.base import Sequence
from r1track.errors import R1TrackError
from r1track.families import smart_resize
from r1track.parsing import parse_box, parse_grounding
from r1track.training.pairs import (
    BAD_GOT10K_TRAIN,
    PairOptions,
    build_pairs,
    load_pairs,
    write_pairs,
)

W, H = 64, 48
BOX_RE = re.compile(r"bounding box (\[[-\d,]+\])")


def make_sequence(root, name, boxes, absent=None, visible=None, language=None) -> Sequence:
    """Frames of W x H noise with the target drawn as a bright rectangle; PNG so pixels are exact."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    paths = []
    for i, (x, y, w, h) in enumerate(boxes):
        img = rng.integers(0, 120, size=(H, W, 3), dtype=np.uint8)
        if np.isfinite([x, y, w, h]).all():
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), (255, 200, 40 * (i % 6)), -1)
        path = folder / f"{i:08d}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return Sequence(name, paths, np.array(boxes, dtype=np.float64),
                    absent=None if absent is None else np.array(absent, dtype=bool),
                    visible_ratio=None if visible is None else np.array(visible, dtype=np.float64),
                    language=language)


def moving_boxes(n, w=14.0, h=10.0, x0=8.0, y0=10.0):
    return [[x0 + 2.5 * i, y0 + 1.5 * i, w + 0.3 * i, h + 0.2 * i] for i in range(n)]


@pytest.fixture()
def seqs(tmp_path):
    return [
        make_sequence(tmp_path, "GOT-10k_Train_000001", moving_boxes(8)),
        make_sequence(tmp_path, "GOT-10k_Train_000002", moving_boxes(8, w=30.0, h=6.0), language="the red car"),
        make_sequence(tmp_path, "GOT-10k_Train_008628", moving_boxes(6, w=9.0, h=20.0)),
    ]


def png(**kw) -> PairOptions:
    return PairOptions(image_format="png", sizes=kw.pop("sizes", (112,)), **kw)


def by_name(seqs):
    return {s.name: s for s in seqs}


def expected_box(frame_xywh, crop_list, scale=1.0, clip=False):
    """Independent projection: frame xywh -> crop xyxy (clipped on request), times the family scale,
    truncated toward zero."""
    x1, y1, side, size = crop_list
    x, y, w, h = frame_xywh
    s = size / side
    xyxy = [(x - x1) * s, (y - y1) * s, (x + w - x1) * s, (y + h - y1) * s]
    if clip:
        xyxy = [min(max(v, 0.0), size) for v in xyxy]
    return [float(math.trunc(v * scale)) for v in xyxy]


def prompt_text(row) -> str:
    return row["prompt"][0]["content"][-1]["text"]


def test_boxes_and_images_follow_the_recorded_crops(seqs):
    ds = build_pairs(seqs, 12, seed=3, options=png(sizes=(112, 224)), progress=False)
    assert len(ds) == 12
    names = by_name(seqs)
    sizes = set()
    for row in ds:
        seq = names[row["sequence"]]
        assert row["task"] == "track" and row["family"] == "qwen2.5-vl"
        assert len(row["images"]) == len(row["crops"]) == len(row["frame_ids"]) == len(row["frame_boxes"]) == 2
        t, s = row["frame_ids"]
        assert t != s
        size = int(row["crops"][0][3])
        sizes.add(size)
        assert row["image_size"] == [size, size]
        for f, fb, crop, im in zip(row["frame_ids"], row["frame_boxes"], row["crops"], row["images"]):
            assert fb == seq.gt[f].tolist()
            assert float(crop[2]).is_integer() and float(crop[0]).is_integer()  # whole-pixel crops
            ratio = crop[2] / math.sqrt(fb[2] * fb[3])
            assert 2 - 1e-9 <= ratio <= 8 + 1 / math.sqrt(fb[2] * fb[3]) + 1e-9  # factor ~ U(2, 8), ceiled
            centre_shift = np.array([crop[0] + crop[2] / 2 - (fb[0] + fb[2] / 2),
                                     crop[1] + crop[2] / 2 - (fb[1] + fb[3] / 2)]) / crop[2]
            assert np.all(np.abs(centre_shift) <= 0.2 + 1 / crop[2])  # jitter within 0.2 side (+ rounding)
            crop_obj = Crop(crop[0], crop[1], crop[2], int(crop[3]))
            assert np.array_equal(np.asarray(im), extract(seq.frame(f), crop_obj, "constant"))
        template_box = json.loads(BOX_RE.search(prompt_text(row)).group(1))
        assert template_box == expected_box(row["frame_boxes"][0], row["crops"][0])
        assert row["solution"] == expected_box(row["frame_boxes"][1], row["crops"][1])
        assert row["completion"] == [{"role": "assistant", "content": [
            {"type": "text", "text": "[" + ",".join(str(int(v)) for v in row["solution"]) + "]"}]}]
        assert parse_box(row["completion"][0]["content"][0]["text"], strict=True).tolist() == row["solution"]
    assert sizes == {112, 224}


def test_reference_defaults(seqs):
    ds = build_pairs(seqs, 6, seed=0, progress=False)  # PairOptions(): the reference recipe
    names = ds["sequence"]
    assert sorted(names[:3]) == sorted(s.name for s in seqs)  # one sample per video per pass
    assert sorted(names[3:]) == sorted(s.name for s in seqs)
    for row in ds:
        assert [im.size for im in row["images"]] == [(336, 336), (336, 336)]
        assert row["images"][0].format == "JPEG"
        assert prompt_text(row).startswith("Given two images")
        assert row["prompt"][0]["content"][:2] == [{"type": "image", "text": None}] * 2


def test_other_family_encodes_normalised(seqs):
    ds = build_pairs(seqs, 4, seed=1, options=png(family="qwen2-vl"), progress=False)
    for row in ds:
        assert row["family"] == "qwen2-vl"
        assert row["solution"] == expected_box(row["frame_boxes"][1], row["crops"][1], scale=1000 / 112)


def test_boxes_are_not_clipped_by_default_and_clipped_on_request(tmp_path):
    # a 40 x 5 box: its crop side is as small as 29 px, so the box sticks out of the crop
    seq = make_sequence(tmp_path, "wide", moving_boxes(6, w=40.0, h=5.0, x0=4.0))
    raw = build_pairs([seq], 20, seed=0, options=png(), progress=False)
    outside = [b for b in raw["solution"] if min(b) < 0 or max(b) > 112]
    assert outside, "the reference recipe lets boxes leave the crop"
    clipped = build_pairs([seq], 20, seed=0, options=png(clip_boxes=True), progress=False)
    assert clipped["crops"] == raw["crops"]  # same draws, only the boxes differ
    for row in clipped:
        template = json.loads(BOX_RE.search(prompt_text(row)).group(1))
        assert template == expected_box(row["frame_boxes"][0], row["crops"][0], clip=True)
        assert row["solution"] == expected_box(row["frame_boxes"][1], row["crops"][1], clip=True)
        assert min(row["solution"]) >= 0 and max(row["solution"]) <= 112


def test_skip_absent(tmp_path):
    absent = [False, False, True, True, False, False, False, False]
    visible = [1.0, 0.5, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]  # frame 4: visible_ratio 0 without the flag
    seq = make_sequence(tmp_path, "occluded", moving_boxes(8), absent=absent, visible=visible)
    hidden = {2, 3, 4}
    drawn = {f for ids in build_pairs([seq], 40, 0, png(), progress=False)["frame_ids"] for f in ids}
    assert drawn & hidden, "the reference recipe keeps absent frames"
    drawn = {f for ids in build_pairs([seq], 40, 0, png(skip_absent=True), progress=False)["frame_ids"]
             for f in ids}
    assert not drawn & hidden and drawn == set(range(8)) - hidden


def test_unusable_boxes_are_never_drawn_and_min_box_size(tmp_path):
    boxes = moving_boxes(8)
    boxes[1] = [10.0, 10.0, 12.0, 0.0]  # GOT-10k 004419-style h = 0
    boxes[2] = [np.nan] * 4
    boxes[3] = [10.0, 10.0, 3.0, 12.0]  # tiny
    seq = make_sequence(tmp_path, "bad_boxes", boxes)
    drawn = {f for ids in build_pairs([seq], 40, 0, png(), progress=False)["frame_ids"] for f in ids}
    assert 3 in drawn and not drawn & {1, 2}
    drawn = {f for ids in build_pairs([seq], 40, 0, png(min_box_size=4), progress=False)["frame_ids"]
             for f in ids}
    assert not drawn & {1, 2, 3}


def test_max_gap_and_template_first(tmp_path):
    seq = make_sequence(tmp_path, "long", moving_boxes(12))
    ids = build_pairs([seq], 40, 0, png(), progress=False)["frame_ids"]
    assert any(t > s for t, s in ids) and max(abs(t - s) for t, s in ids) > 2
    ids = build_pairs([seq], 40, 0, png(max_gap=2, template_first=True), progress=False)["frame_ids"]
    assert all(0 < s - t <= 2 for t, s in ids)


def test_previous_rate_crops_around_the_previous_frames_box(tmp_path):
    boxes = moving_boxes(10)
    boxes[4] = [np.nan] * 4  # unusable: frame 5's previous usable frame is 3
    seq = make_sequence(tmp_path, "moving", boxes)

    def previous_box(s):  # the box of the usable frame before s (None for the first usable frame)
        before = [f for f in range(s) if f != 4]
        return np.array(boxes[before[-1]]) if before else None

    ds = build_pairs([seq], 60, 0, png(previous_rate=1.0, jitter=0.4), progress=False)
    firsts = 0
    for row in ds:
        s = row["frame_ids"][-1]
        crop = row["crops"][-1]
        p = previous_box(s)
        if p is None:  # the first usable frame keeps a jittered crop
            firsts += 1
            continue
        factor_side = math.sqrt(p[2] * p[3])
        assert 2 - 1e-9 <= crop[2] / factor_side <= 8 + 1 / factor_side + 1e-9
        centre = np.array([crop[0], crop[1]]) + crop[2] / 2
        assert np.all(np.abs(centre - (p[:2] + p[2:] / 2)) <= 1.0)  # no jitter: whole-pixel rounding only
        assert row["solution"] == expected_box(boxes[s], crop)  # the answer is the search frame's box
    assert 0 < firsts < len(ds)
    half = build_pairs([seq], 60, 0, png(previous_rate=0.5, jitter=0.4), progress=False)
    centred = 0
    for ids, c in zip(half["frame_ids"], half["crops"]):
        p = previous_box(ids[-1])
        centred += p is not None and bool(np.all(np.abs(np.array(c[-1][:2]) + c[-1][2] / 2 - p[:2] - p[2:] / 2) <= 1))
    assert 15 <= centred <= 45


def test_tracker_factor_cuts_templates_and_previous_crops_as_the_tracker_does(tmp_path):
    boxes = moving_boxes(10)
    seq = make_sequence(tmp_path, "moving", boxes)

    def centred_at(crop, box, factor):  # the tracker's crop: side ceil(sqrt(wh) * factor), centred
        box = np.asarray(box)
        centre = np.array(crop[:2]) + crop[2] / 2
        return crop[2] == math.ceil(math.sqrt(box[2] * box[3]) * factor) and np.all(
            np.abs(centre - box[:2] - box[2:] / 2) <= 1.0
        )

    ds = build_pairs([seq], 60, 0, png(tracker_factor=4.0, previous_rate=1.0, jitter=0.4), progress=False)
    for (t, s), (template, search) in zip(ds["frame_ids"], ds["crops"]):
        assert centred_at(template, boxes[t], 4.0)
        assert centred_at(search, boxes[s - 1], 4.0) if s > 0 else not centred_at(search, boxes[s], 4.0)
    jittered = build_pairs([seq], 60, 0, png(tracker_factor=4.0, jitter=0.4), progress=False)
    assert all(centred_at(c[0], boxes[ids[0]], 4.0) for ids, c in zip(jittered["frame_ids"], jittered["crops"]))
    assert len({c[1][2] for c in jittered["crops"]}) > 10  # search crops keep their drawn factor and jitter
    assert not any(centred_at(c[1], boxes[ids[1]], 4.0) for ids, c in zip(jittered["frame_ids"], jittered["crops"]))
    with pytest.raises(R1TrackError, match="tracker_factor must be > 0"):
        PairOptions(tracker_factor=0.0)


def test_drop_videos_by_suffix(seqs):
    ds = build_pairs(seqs, 6, 0, png(drop_videos=BAD_GOT10K_TRAIN), progress=False)
    assert "GOT-10k_Train_008628" not in set(ds["sequence"])
    assert set(ds["sequence"]) == {"GOT-10k_Train_000001", "GOT-10k_Train_000002"}


def raw_images(ds):
    from datasets import Image, List

    return [[im["bytes"] for im in row] for row in ds.cast_column("images", List(Image(decode=False)))["images"]]


def test_same_seed_same_dataset_other_seed_differs(seqs):
    opts = png(sizes=(112, 224), three_image_rate=0.5, grounding_rate=0.3)
    a = build_pairs(seqs, 8, 5, opts, progress=False)
    b = build_pairs(seqs, 8, 5, opts, progress=False)
    c = build_pairs(seqs, 8, 6, opts, progress=False)
    columns = [k for k in a.column_names if k != "images"]
    assert all(a[k] == b[k] for k in columns) and raw_images(a) == raw_images(b)
    assert a["crops"] != c["crops"] and raw_images(a) != raw_images(c)
    # sample i depends on (seed, i) only: a longer run starts with the same samples
    longer = build_pairs(seqs, 10, 5, opts, progress=False)
    assert longer["crops"][:8] == a["crops"] and raw_images(longer)[:8] == raw_images(a)


def test_parallel_build_is_identical(seqs):
    serial = build_pairs(seqs, 5, 2, png(), progress=False)
    parallel = build_pairs(seqs, 5, 2, png(), num_proc=2, progress=False)
    assert serial["crops"] == parallel["crops"] and raw_images(serial) == raw_images(parallel)


def test_grounding_samples(seqs):
    ds = build_pairs(seqs, 9, 0, png(grounding_rate=1.0), progress=False)
    names = by_name(seqs)
    ground = [r for r in ds if r["task"] == "ground"]
    assert {r["sequence"] for r in ground} == {"GOT-10k_Train_000002"}  # the only one with a description
    assert all(r["task"] == "track" for r in ds if r["sequence"] != "GOT-10k_Train_000002")
    rh, rw = smart_resize(H, W)
    assert (rw, rh) != (W, H)  # the frame is resized by the processor: coordinates scale
    for row in ground:
        seq = names[row["sequence"]]
        (f,) = row["frame_ids"]
        assert [c["type"] for c in row["prompt"][0]["content"]] == ["image", "text"]
        assert "the red car" in prompt_text(row)
        assert np.array_equal(np.asarray(row["images"][0]), seq.frame(f))
        assert row["image_size"] == [W, H]
        x, y, w, h = seq.gt[f]
        want = [math.trunc(v) for v in (x * rw / W, y * rh / H, (x + w) * rw / W, (y + h) * rh / H)]
        assert row["solution"] == want
        assert parse_grounding(row["completion"][0]["content"][0]["text"]).tolist() == want
        assert row["crops"] == [[0.0, 0.0, float(W), float(W)]]
    thinking = build_pairs(seqs, 3, 0, png(grounding_rate=1.0, thinking=True), progress=False)
    texts = {row["task"]: prompt_text(row) for row in thinking}
    assert set(texts) == {"track", "ground"}
    assert all(t.startswith("You FIRST think") and "<answer>" in t for t in texts.values())


def test_three_image_samples(seqs):
    opts = png(three_image_rate=1.0, recent_gap=2, template_first=True)
    ds = build_pairs(seqs, 9, 0, opts, progress=False)
    three = [row for row in ds if len(row["images"]) == 3]
    # a search frame with fewer than two earlier frames leaves no room: the sample stays two-image
    assert all(row["frame_ids"][-1] <= 1 for row in ds if len(row["images"]) == 2)
    assert len(three) >= 7
    for row in three:
        assert len(row["crops"]) == len(row["frame_boxes"]) == 3
        content = row["prompt"][0]["content"]
        assert [c["type"] for c in content] == ["image"] * 3 + ["text"]
        text = content[-1]["text"]
        assert text.startswith("Given three images") and "<image_3>" in text
        t, r, s = row["frame_ids"]
        assert t < r < s and s - r <= 2
        boxes = [json.loads(b) for b in BOX_RE.findall(text)]
        assert boxes == [expected_box(row["frame_boxes"][k], row["crops"][k]) for k in (0, 1)]
        assert row["solution"] == expected_box(row["frame_boxes"][2], row["crops"][2])


def test_balance_aspect(tmp_path):
    square = make_sequence(tmp_path, "square", [[10.0 + i, 10.0, 12.0, 12.0] for i in range(20)])
    boxes = [[10.0 + i, 10.0, 12.0, 12.0] for i in range(20)]
    boxes[5] = boxes[6] = [20.0, 4.0, 8.0, 32.0]  # tall: aspect 1/4
    mixed = make_sequence(tmp_path, "mixed", boxes)

    def tall_share(**kw):
        ds = build_pairs([square, mixed], 60, 0, png(**kw), progress=False)
        return np.mean([fb[-1][3] > 2 * fb[-1][2] for fb in ds["frame_boxes"]])

    assert tall_share() < 0.2
    assert 0.3 < tall_share(balance_aspect=True) < 0.7


def test_write_and_load_round_trip(seqs, tmp_path):
    out = tmp_path / "pairs"
    opts = png(three_image_rate=0.5, grounding_rate=0.5)
    info = write_pairs(seqs, out, 7, 4, opts, progress=False)
    assert (out / "data.parquet").is_file() and not list(out.glob(".*partial"))
    saved = json.loads((out / "pairs.json").read_text())
    assert saved["counts"]["samples"] == 7 == info["counts"]["samples"]
    assert saved["options"]["three_image_rate"] == 0.5 and saved["seed"] == 4
    loaded = load_pairs(out, cache_dir=str(tmp_path / "hf"))
    memory = build_pairs(seqs, 7, 4, opts, progress=False)
    assert loaded.features == memory.features
    for k in memory.column_names:
        if k != "images":
            assert loaded[k] == memory[k], k
    assert raw_images(loaded) == raw_images(memory)
    assert np.array_equal(np.asarray(loaded[0]["images"][0]), np.asarray(memory[0]["images"][0]))
    with pytest.raises(R1TrackError, match="--overwrite"):
        write_pairs(seqs, out, 3, 4, opts, progress=False)
    write_pairs(seqs, out, 3, 4, opts, overwrite=True, progress=False)
    assert len(load_pairs(out / "data.parquet", cache_dir=str(tmp_path / "hf"))) == 3


def test_several_pair_datasets_load_as_one_in_order(seqs, tmp_path):
    first, second = tmp_path / "round1", tmp_path / "round2"
    write_pairs(seqs, first, 3, 1, png(), progress=False)
    write_pairs(seqs, second, 2, 2, png(), progress=False)
    cache = str(tmp_path / "hf")
    both = load_pairs([first, second / "data.parquet"], cache_dir=cache)
    parts = [load_pairs(first, cache_dir=cache), load_pairs(second, cache_dir=cache)]
    assert len(both) == 5
    assert list(both["frame_boxes"]) == [*parts[0]["frame_boxes"], *parts[1]["frame_boxes"]]
    assert raw_images(both) == raw_images(parts[0]) + raw_images(parts[1])
    from r1track.errors import DataError

    with pytest.raises(DataError, match="nowhere"):
        load_pairs([first, tmp_path / "nowhere"])
    import pyarrow as pa
    import pyarrow.parquet as pq

    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"prompt": ["x"]}), foreign)
    with pytest.raises(DataError, match="foreign.parquet.*columns differ from those of"):
        load_pairs([first, foreign], cache_dir=cache)


def test_bad_inputs(seqs, tmp_path):
    with pytest.raises(R1TrackError, match="factor_range"):
        PairOptions(factor_range=(8, 2))
    with pytest.raises(R1TrackError, match="three-image"):
        PairOptions(prompt="old", three_image_rate=0.5)
    with pytest.raises(R1TrackError, match="unknown model family"):
        PairOptions(family="llava")
    one_frame = make_sequence(tmp_path, "single", moving_boxes(1))
    with pytest.raises(R1TrackError, match="two usable frames"):
        build_pairs([one_frame], 2, 0, png(), progress=False)
    from r1track.errors import DataError

    with pytest.raises(DataError, match="no pair dataset"):
        load_pairs(tmp_path / "nowhere")


def test_command_on_synthetic_got10k(tmp_path, capsys):
    from r1track import synth

    synth.generate(tmp_path / "syn", 2, 6, seed=0, split="train", size="160x120", progress=False)
    out = tmp_path / "pairs"
    argv = ["build-pairs", "--dataset", "got10k", "--root", str(tmp_path / "syn"), "--out", str(out),
            "--samples", "4", "--sizes", "112", "224", "--skip-absent", "--template-first",
            "--drop-bad-videos", "--clip-boxes", "--pad", "mean", "--three-image-rate", "0.5"]
    assert main(argv) == 0
    assert "wrote 4 pairs" in capsys.readouterr().out
    info = json.loads((out / "pairs.json").read_text())
    assert info["options"]["drop_videos"] == list(BAD_GOT10K_TRAIN)
    assert info["options"]["sizes"] == [112, 224] and info["options"]["pad"] == "mean"
    assert info["source"]["dataset"] == "got10k"
    ds = load_pairs(out, cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 4 and all(t < s for t, *_, s in ds["frame_ids"])
    assert main(argv) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
