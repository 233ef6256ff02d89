"""Copy-paste sequences (r1track paste): exact boxes, occlusion labels, determinism, the command, real data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from r1track import datasets, paste
from r1track.cli import main as cli_main
from r1track.errors import R1TrackError
from tests.conftest import shared

COLOURS = {"obj_red": (230, 20, 20), "obj_green": (20, 220, 40), "obj_blue": (30, 40, 235)}
W, H = 160, 120


def _source(root: Path, frames: int = 12) -> Path:
    """Three GOT-10k-layout sequences: a solid, uniquely coloured rectangle (exactly its box) moving
    over grey noise, so every pasted pixel can be traced to its object."""
    split = root / "train"
    rng = np.random.default_rng(0)
    for k, (name, colour) in enumerate(COLOURS.items()):
        seq = split / name
        seq.mkdir(parents=True)
        boxes = []
        for t in range(frames):
            image = np.repeat(rng.integers(70, 130, size=(H, W, 1), dtype=np.uint8), 3, axis=2)
            x, y, w, h = 20 + 5 * t + 10 * k, 30 + 2 * t, 24 + k * 6, 30 - k * 4
            image[y : y + h, x : x + w] = colour
            cv2.imwrite(str(seq / f"{t + 1:08d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            boxes.append(f"{x},{y},{w},{h}")
        (seq / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    (split / "list.txt").write_text("\n".join(COLOURS) + "\n")
    return split


@pytest.fixture(scope="module")
def cuts(tmp_path_factory) -> list[paste.Cutout]:
    return paste.cutouts(datasets.load("got10k", _source(tmp_path_factory.mktemp("src"))))


def _is(pixels: np.ndarray, colour) -> np.ndarray:
    return (np.abs(pixels.astype(int) - colour).max(axis=-1) < 40)


def _render(plan, cuts):
    frames = paste._Frames()
    return [paste.render_frame(plan, cuts, t, frames) for t in range(plan.frames)]


def test_ground_truth_is_exactly_the_pasted_object(cuts):
    checked = 0
    for index in range(1, 13):
        plan = paste.plan_sequence(cuts, index, seed=3, frames=12)
        colour = COLOURS[cuts[plan.target.cutout].sequence.name]
        for t, (image, box, cover) in enumerate(_render(plan, cuts)):
            x, y, w, h = plan.target.boxes[t]
            others = [d.boxes[t] for d in plan.distractors]
            assert np.array_equal(box, [max(x, 0), max(y, 0), min(x + w, W) - max(x, 0), min(y + h, H) - max(y, 0)])
            if cover < 8 or any(paste._overlap(o, (x - 2, y - 2, w + 4, h + 4)) for o in others):
                continue
            # the inside (beyond the faded ring) is the object; the 2-px ring outside the box is not
            m = int(np.ceil(paste.EDGE * max(w, h))) + 1
            assert _is(image[y + m : y + h - m, x + m : x + w - m], colour).all()
            ring = np.ones((h + 4, w + 4), bool)
            ring[2:-2, 2:-2] = False
            y0, x0 = y - 2, x - 2
            inside = (np.arange(h + 4)[:, None] + y0 >= 0) & (np.arange(h + 4)[:, None] + y0 < H)
            inside = inside & (np.arange(w + 4)[None, :] + x0 >= 0) & (np.arange(w + 4)[None, :] + x0 < W)
            ys, xs = np.nonzero(ring & inside)
            assert not _is(image[ys + y0, xs + x0], colour).any()
            checked += 1
    assert checked > 50


def _layer(cut: int, boxes, front=False) -> paste.Layer:
    boxes = np.array(boxes, int)
    return paste.Layer(cut, np.zeros(len(boxes), int), boxes, front)


def test_cover_counts_what_a_distractor_in_front_hides_and_what_leaves_the_image(cuts):
    target = _layer(0, [[60, 40, 30, 30]] * 3 + [[-15, 40, 30, 30]])
    # not overlapping; covering all with a wide margin (its faded ring stays outside); covering the left half
    front = _layer(1, [[0, 0, 20, 20], [40, 20, 70, 70], [20, 10, 60, 90], [100, 0, 10, 10]], front=True)
    behind = _layer(2, [[50, 30, 50, 50]] * 4)
    window = np.tile([0, 0, W, H], (4, 1)).astype(float)
    plan = paste.Plan("Paste_Train_000001", (W, H), (2, 0), window, target, (behind, front))
    (_, _, c0), (img1, _, c1), (img2, _, c2), (_, box3, c3) = _render(plan, cuts)
    assert c0 == 8  # the distractor behind never hides the target
    assert c1 == 0
    assert 2 <= c2 <= 6
    assert _is(img2[45:65, 62:70], COLOURS["obj_green"]).all() and _is(img2[45:65, 81:85], COLOURS["obj_red"]).all()
    assert c3 == paste.cover_label(15 * 30, 30 * 30) and np.array_equal(box3, [0, 40, 15, 30])


def test_same_seed_same_bytes_independent_of_count(tmp_path, cuts):
    sources = [c.sequence for c in cuts]
    a = paste.generate(sources, tmp_path / "a", 3, 6, seed=5, progress=False)
    b = paste.generate(sources, tmp_path / "b", 2, 6, seed=5, progress=False)
    c = paste.generate(sources, tmp_path / "c", 2, 6, seed=6, progress=False)
    files = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}  # noqa: E731
    fa, fb = files(a), files(b)
    assert all(fa[k] == v for k, v in fb.items() if k != "list.txt") and len(fa) > len(fb)
    assert files(c) != fb


def test_output_loads_with_consistent_labels_and_a_whole_first_frame(tmp_path, cuts):
    split = paste.generate([c.sequence for c in cuts], tmp_path, 8, 12, seed=1, progress=False)
    sequences = datasets.load("got10k", split)
    assert [s.name for s in sequences] == [f"Paste_Train_{i:06d}" for i in range(1, 9)]
    for seq in sequences:
        cover = seq.meta["cover"]
        assert cover[0] == 8 and np.array_equal(seq.absent, cover == 0)
        assert np.isfinite(seq.gt).all() and (seq.gt[:, 2:] > 0).all()
        assert (seq.gt[:, 0] + seq.gt[:, 2] <= W).all() and (seq.gt[:, 1] + seq.gt[:, 3] <= H).all()
        assert seq.frame(0).shape == (H, W, 3)


def test_distractors_look_alike_pass_close_and_occlude(cuts):
    plans = [paste.plan_sequence(cuts, i, seed=0, frames=30) for i in range(1, 41)]
    layers = [(p, d) for p in plans for d in p.distractors]
    same = [d for p, d in layers if cuts[d.cutout].video == cuts[p.target.cutout].video]
    assert 0.3 < len(same) / len(layers) < 0.9  # half look-alikes on purpose, plus chance draws
    assert any(d.front for _, d in layers) and not all(d.front for _, d in layers)

    def gap(p, d):  # centre distance over the target's size, closest frame
        centre = lambda b: b[:, :2] + b[:, 2:] / 2  # noqa: E731
        size = np.sqrt(p.target.boxes[:, 2] * p.target.boxes[:, 3])
        return (np.linalg.norm(centre(d.boxes) - centre(p.target.boxes), axis=1) / size).min()

    assert sum(gap(p, d) < 1.5 for p, d in layers) >= len(layers) / 4
    for p in plans:  # a background from another video than the target's
        assert cuts[p.background[0]].video != cuts[p.target.cutout].video


def test_command_drops_held_out_sources_and_refuses_to_overwrite(tmp_path, capsys):
    src = _source(tmp_path / "src")
    argv = ["paste", "--source", "got10k", str(src), "--drop-videos", "obj_blue", "--out", str(tmp_path / "out"),
            "--sequences", "6", "--frames", "5", "--seed", "0", "--no-progress"]
    assert cli_main(argv) == 0
    assert "from 2 source sequences" in capsys.readouterr().out
    metas = [p.read_text() for p in (tmp_path / "out" / "train").glob("*/meta_info.ini")]
    assert len(metas) == 6 and not any("obj_blue" in m for m in metas)
    assert cli_main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main([*argv, "--overwrite"]) == 0
    (tmp_path / "out" / "train" / "notes.txt").write_text("mine")  # not the generator's: never removed
    assert cli_main([*argv, "--overwrite"]) == 2
    assert "not written by r1track paste" in capsys.readouterr().err
    (tmp_path / "out" / "train" / "notes.txt").unlink()
    assert cli_main([*argv[:5], "obj_blue", "obj_green", *argv[6:], "--overwrite"]) == 2
    assert "at least 2 source sequences" in capsys.readouterr().err
    pairs = tmp_path / "pairs"
    assert cli_main(["build-pairs", "--dataset", "got10k", "--root", str(tmp_path / "out" / "train"), "--out",
                     str(pairs), "--samples", "8", "--seed", "0", "--sizes", "56"]) == 0
    assert (pairs / "pairs.json").is_file()


def test_real_objects_on_real_frames(tmp_path):
    real = shared("data/real", "pastes real tracking objects onto real frames")
    sources = paste.load_sources(
        [("got10k", str(real / "train")), ("mot", str(real / "mot" / "PETS09-S2L1"))], drop=("uav_car14",)
    )
    assert not any(s.name == "uav_car14" for s in sources)
    kept = paste.load_sources([("got10k", str(real / "train")), ("mot", str(real / "mot" / "TUD-Stadtmitte"))],
                              keep=("uav_car14", "TUD-Stadtmitte-3"))
    assert sorted(s.name for s in kept) == ["TUD-Stadtmitte-3", "uav_car14"]
    split = paste.generate(sources, tmp_path, 4, 8, seed=0, progress=False)
    for seq in datasets.load("got10k", split):
        w, h = seq.meta["resolution"]
        assert seq.meta["cover"][0] == 8
        assert (seq.gt[:, 0] >= 0).all() and (seq.gt[:, 0] + seq.gt[:, 2] <= w).all()
        assert seq.frame(7).shape == (h, w, 3)


def test_too_few_sources_is_an_error(cuts):
    with pytest.raises(R1TrackError, match="at least 2 source sequences"):
        paste.generate([cuts[0].sequence], "unused", 1, 4, seed=0, progress=False)
