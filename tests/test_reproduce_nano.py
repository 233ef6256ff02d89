"""scripts/reproduce_nano.py: a work folder remembers the options that made it, the closed-loop pool, where
early stopping stops each GRPO run, the real stages at another crop size or search factor, and
their search crops around the previous frame's box and templates cut as the tracker cuts them, the
real SFT's epochs, the prompt and CPU mixed precision, the validation AO that ranks models, a
synthetic stage without GRPO, step times across resumes, and model soups."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_nano.py"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce_nano", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_work_folder_refuses_to_resume_with_other_options(reproduce, tmp_path):
    settings = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", synthetic_model=None)
    assert reproduce.settings_conflict(tmp_path, settings) is None  # first run: recorded
    assert json.loads((tmp_path / "pipeline.json").read_text()) == settings
    assert reproduce.settings_conflict(tmp_path, dict(settings)) is None
    message = reproduce.settings_conflict(tmp_path, {**settings, "loop_pool": "all"})
    assert str(tmp_path / "pipeline.json") in message and "--loop-pool latest (now all)" in message
    assert "--mix" not in message


def test_the_command_says_so_in_one_line_before_any_step(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipeline.json").write_text(json.dumps(dict(quick=True, mix="real", loop_kl="round",
                                                        loop_pool="latest", synthetic_model=None)))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--work", str(work), "--quick", "--synthetic-only",
                           "--mix", "paste"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "pipeline.json" in line and "--mix real (now paste)" in line
    assert sorted(p.name for p in work.iterdir()) == ["pipeline.json"]  # no step ran, nothing recorded


def test_the_closed_loop_pool_is_the_latest_round_or_every_round_so_far(reproduce, tmp_path):
    latest = reproduce.Pipeline(tmp_path, quick=True, threads=1, mix="real", loop_pool="latest")
    every = reproduce.Pipeline(tmp_path, quick=True, threads=1, mix="real", loop_pool="all")
    names = lambda parts: [p.name for p in parts]  # noqa: E731
    assert names(latest.loop_pool_parts(seed=2, r=3)) == ["loop-seed2-r3-got", "loop-seed2-r3-mot"]
    assert names(every.loop_pool_parts(seed=2, r=3)) == [f"loop-seed2-r{r}-{src}" for r in (1, 2, 3)
                                                          for src in ("got", "mot")]
    assert names(every.loop_pool_parts(seed=0, r=1)) == names(latest.loop_pool_parts(seed=0, r=1))


def test_a_folder_recorded_before_early_stopping_resumes_as_stopped_at_the_last_step(reproduce, tmp_path):
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", synthetic_model=None)
    (tmp_path / "pipeline.json").write_text(json.dumps(old))
    assert reproduce.settings_conflict(tmp_path, {**old, "stop": "last"}) is None
    assert "--stop last (now val)" in reproduce.settings_conflict(tmp_path, {**old, "stop": "val"})


def test_stopping_points_are_the_reference_checkpoints_and_the_closed_loop_rounds(reproduce, tmp_path):
    ref = tmp_path / "runs" / "grpo-ref-seed1"
    for k in (20, 40, 60):
        (ref / f"checkpoint-{k}").mkdir(parents=True)
    (ref / "log_history.json").write_text(json.dumps([{"step": 5, "loss": 0.1}, {"step": 60, "train_loss": 0.1}]))
    full = reproduce.Pipeline(tmp_path, quick=False, threads=1)
    points = full.stopping_points(1)
    assert points == {"grpo-ref-seed1-step20": ref / "checkpoint-20", "grpo-ref-seed1-step40": ref / "checkpoint-40",
                      "grpo-ref-seed1-step60": ref / "model",  # the final model, not its checkpoint copy
                      **{f"grpo-loop-seed1-step{20 * r}": tmp_path / "runs" / f"grpo-loop-seed1-r{r}" / "model"
                         for r in (1, 2, 3)}}


def test_each_run_stops_where_validation_ao_is_highest_a_tie_at_the_earlier_step(reproduce):
    points = {f"grpo-{v}-seed{s}-step{k}": Path(f"{v}{s}/{k}") for v in ("ref", "loop") for s in (0, 1)
              for k in (20, 40, 60)}
    val = dict.fromkeys(points, 0.3)
    val.update({"grpo-ref-seed0-step40": 0.5, "grpo-loop-seed1-step60": 0.4, "grpo-loop-seed0-step20": 0.2})
    stops = reproduce.stops_by_validation(points, val)
    assert {run: stop["step"] for run, stop in stops.items()} == {
        "grpo-ref-seed0": 40, "grpo-ref-seed1": 20, "grpo-loop-seed0": 40, "grpo-loop-seed1": 60}
    assert stops["grpo-ref-seed0"]["model"] == str(Path("ref0/40"))
    assert stops["grpo-loop-seed0"]["val_ao"] == {20: 0.2, 40: 0.3, 60: 0.3}


def test_drift_diagnostics_count_frames_on_another_identity_of_the_video(reproduce, tmp_path):
    """A MOTChallenge video with two pedestrians; the tracker of pedestrian 1 jumps onto pedestrian 2 in
    frames 4-5 and is on neither in frame 6; pedestrian 2's tracker stays on it."""
    import cv2
    import numpy as np

    from r1track import datasets

    video = tmp_path / "mot" / "VID"
    (video / "img1").mkdir(parents=True)
    (video / "gt").mkdir()
    for i in range(1, 7):
        cv2.imwrite(str(video / "img1" / f"{i:06d}.jpg"), np.zeros((64, 96, 3), np.uint8))
    box = {1: [4.0, 6.0, 14.0, 20.0], 2: [50.0, 10.0, 16.0, 24.0]}
    (video / "gt" / "gt.txt").write_text("".join(f"{f},{i},{','.join(map(str, box[i]))},1,1,1\n"
                                                 for f in range(1, 7) for i in (1, 2)))
    (video / "seqinfo.ini").write_text("[Sequence]\nname=VID\nimDir=img1\nframeRate=10\nseqLength=6\nimWidth=96\n"
                                       "imHeight=64\nimExt=.jpg\n")
    seqs = datasets.load("mot", tmp_path / "mot", min_length=2)
    assert [s.meta["identity"] for s in seqs] == [1, 2]
    tracked = {1: [box[1]] * 3 + [box[2]] * 2 + [[80.0, 50.0, 10.0, 10.0]], 2: [box[2]] * 6}
    for seq, identity in zip(seqs, (1, 2)):
        (tmp_path / "out" / seq.name).mkdir(parents=True)
        rows = tracked[identity]
        (tmp_path / "out" / seq.name / f"{seq.name}_001.txt").write_text("".join(
            ",".join(map(str, b)) + "\n" for b in rows))
    both = reproduce.drift_diagnostics(seqs, tmp_path / "out")
    assert both["switched_share"] == 2 / 10  # frames 2-6 of both sequences are scored
    assert both["lost_share"] == 3 / 10  # a switch loses the target too
    alone = reproduce.drift_diagnostics(seqs[1:], tmp_path / "out")
    assert alone["switched_share"] == 0.0


def test_a_smoke_test_never_installs_its_model(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path / "w"), "--quick", "--install", "best"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--install with --quick" in proc.stderr
    assert not (tmp_path / "w").exists()


def test_a_run_starts_from_its_stopping_points_validation_results(reproduce, tmp_path):
    for name, text in (("grpo-ref-seed0-step40", "chosen"), ("grpo-loop-seed0-step20", "chosen"),
                       ("grpo-loop-seed0", "kept")):
        (tmp_path / name / "seq").mkdir(parents=True)
        (tmp_path / name / "seq" / "seq_001.txt").write_text(text)
    reproduce.reuse_stop_results(tmp_path, {"grpo-ref-seed0": {"step": 40}, "grpo-loop-seed0": {"step": 20}})
    assert (tmp_path / "grpo-ref-seed0" / "seq" / "seq_001.txt").read_text() == "chosen"
    assert (tmp_path / "grpo-loop-seed0" / "seq" / "seq_001.txt").read_text() == "kept"  # never overwritten
    assert not list(tmp_path.glob(".*partial"))


def test_real_stages_at_another_crop_size_start_from_the_same_weights_set_to_track_with_it(reproduce, tmp_path):
    import r1track
    from r1track.nano import make_nano_model, read_settings

    synthetic = make_nano_model(tmp_path / "synthetic", seed=0)
    assert reproduce.Pipeline(tmp_path / "w112", quick=True, threads=1).start_model(synthetic) == synthetic
    start = reproduce.Pipeline(tmp_path / "w", quick=True, threads=1, crop=224).start_model(synthetic)
    assert start == tmp_path / "w" / "runs" / "synthetic-224" / "model"
    assert (start / "model.safetensors").read_bytes() == (synthetic / "model.safetensors").read_bytes()
    assert {**read_settings(synthetic), "crop_size": 224} == read_settings(start)
    tracker = r1track.load_tracker(str(start), device="cpu")
    assert tracker.crop_size == 224 and tracker.backend.max_pixels == 224 * 224  # 64 visual tokens per crop
    options = reproduce.at_crop(reproduce.REAL_PAIR_OPTIONS, 224)
    assert options[options.index("--sizes") + 1] == "224" and options[options.index("--max-pixels") + 1] == "50176"
    assert len(options) == len(reproduce.REAL_PAIR_OPTIONS)


def test_real_stages_at_another_search_factor_track_with_it_and_draw_their_pairs_around_it(reproduce, tmp_path):
    import r1track
    from r1track.nano import make_nano_model, read_settings

    synthetic = make_nano_model(tmp_path / "synthetic", seed=0)
    pipeline = reproduce.Pipeline(tmp_path / "w", quick=True, threads=1, mix="real", search_factor=3.0)
    start = pipeline.start_model(synthetic)
    assert start == tmp_path / "w" / "runs" / "synthetic-112-f3" / "model"
    assert (start / "model.safetensors").read_bytes() == (synthetic / "model.safetensors").read_bytes()
    assert {**read_settings(synthetic), "template_factor": 3.0, "search_factor": 3.0} == read_settings(start)
    tracker = r1track.load_tracker(str(start), device="cpu")
    assert (tracker.template_factor, tracker.search_factor) == (3.0, 3.0)
    ranges = [given(o).factor_range for o in real_stage_pair_sets(reproduce, pipeline)]
    assert ranges == [(2.5 * 3 / 4, 6 * 3 / 4)] * 5
    plain = reproduce.Pipeline(tmp_path / "w4", quick=True, threads=1, mix="real")
    assert plain.start_model(synthetic) == synthetic
    assert plain.real_pair_options(reproduce.REAL_PAIR_OPTIONS) == reproduce.REAL_PAIR_OPTIONS
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", synthetic_model=None)
    assert_old_folders_resume_with(reproduce, tmp_path, old, "search_factor", 4.0, 3.0)
    assert "a factor above 1" in refusal(tmp_path, "--search-factor", "1")


def assert_old_folders_resume_with(reproduce, tmp_path, old: dict, key: str, default, other) -> None:
    """A folder recorded (``old``) before option ``key`` existed resumes with its ``default`` only."""
    (tmp_path / "pipeline.json").write_text(json.dumps(old))
    assert reproduce.settings_conflict(tmp_path, {**old, key: default}) is None
    flag = "--" + key.replace("_", "-")
    assert f"{flag} {default} (now {other})" in reproduce.settings_conflict(tmp_path, {**old, key: other})


def refusal(tmp_path, *args: str) -> str:
    """The one line the script exits 2 with on these options (before any step)."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path / "w"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    return proc.stderr.strip().splitlines()[-1]


def recording(reproduce, ran: list) -> type:
    """A pipeline that records its ``r1track`` commands in ``ran`` instead of running them; a training command
    leaves its model's config, so later steps find it."""

    class Recorded(reproduce.Pipeline):
        def parallel(self, commands):
            for name, args in commands.items():
                args = [str(a) for a in args]
                ran.append((name, args))
                if args[0] == "train":
                    model = Path(args[args.index("--output-dir") + 1]) / "model"
                    model.mkdir(parents=True)
                    (model / "config.json").write_text("{}")

    return Recorded


def given(options: list) -> object:
    """The ``PairOptions`` that ``r1track build-pairs`` makes of a pipeline's pair options."""
    import argparse

    from r1track.training.pairs import add_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--dataset", "got10k", "--root", ".", "--out", ".", *map(str, options)])
    return options_from_args(args)


def real_stage_pair_sets(reproduce, pipeline) -> list[list]:
    """The options of a pipeline's real-stage pair sets: one per source (the synthetic part's included) and
    the closed loop's GT-jittered half."""
    return [*pipeline.real_options(reproduce.SYNTH_MIX_OPTIONS).values(),
            pipeline.real_pair_options(reproduce.REAL_PAIR_OPTIONS)]


def option(args: list[str], key: str) -> str:
    """The value of a ``key=value`` override in a command's arguments."""
    return next(a.split("=", 1)[1] for a in args if a.startswith(key + "="))


def test_a_folder_recorded_before_the_crop_size_option_resumes_at_112_px(reproduce, tmp_path):
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", synthetic_model=None)
    assert_old_folders_resume_with(reproduce, tmp_path, old, "crop_size", 112, 224)
    assert "a multiple of 28" in refusal(tmp_path, "--crop-size", "200")


def test_previous_rate_and_tracker_factor_reach_every_real_stage_pair_set_and_old_folders_resume_without(
    reproduce, tmp_path
):
    pipeline = reproduce.Pipeline(tmp_path / "w", quick=True, threads=1, mix="real", previous_rate=0.5,
                                  tracker_factor=4.0)
    sets = real_stage_pair_sets(reproduce, pipeline)
    assert [(given(o).previous_rate, given(o).tracker_factor) for o in sets] == [(0.5, 4.0)] * 5
    plain = reproduce.Pipeline(tmp_path / "w0", quick=True, threads=1, mix="real")
    assert plain.real_pair_options(reproduce.REAL_PAIR_OPTIONS) == reproduce.REAL_PAIR_OPTIONS
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", crop_size=112,
               synthetic_model=None)
    assert_old_folders_resume_with(reproduce, tmp_path, old, "previous_rate", 0.0, 0.5)
    assert_old_folders_resume_with(reproduce, tmp_path, {**old, "previous_rate": 0.5}, "tracker_factor", None, 4.0)
    resumed = reproduce.Pipeline.from_settings(tmp_path, reproduce.recorded_settings(tmp_path), threads=1)
    assert (resumed.previous_rate, resumed.tracker_factor, resumed.crop, resumed.stop) == (0.5, None, 112, "val")
    assert "a share in [0, 1]" in refusal(tmp_path, "--previous-rate", "2")
    assert "a positive factor" in refusal(tmp_path, "--tracker-factor", "0")


def test_training_sequences_leave_the_held_out_part_out(reproduce):
    from tests.conftest import shared

    shared("data/real", "the real stages' training sequences are read from it")
    sets = reproduce.training_sequences()
    listed = (reproduce.REAL / "train" / "list.txt").read_text().split()
    names = [s.name for s in sets["real train"]]
    assert sorted(names) == sorted(set(listed) - set(reproduce.HELD_OUT)) and len(names) == len(listed) - 7
    assert sets["mot train"] and all(s.name.startswith(reproduce.MOT_TRAIN) for s in sets["mot train"])


def test_each_further_sft_epoch_starts_from_the_previous_ones_model_with_the_pairs_in_another_order(
    reproduce, tmp_path
):
    ran = []
    Recorded = recording(reproduce, ran)
    start = tmp_path / "synthetic"
    runs = tmp_path / "w" / "runs"
    three = Recorded(tmp_path / "w", quick=True, threads=1, mix="real", sft_epochs=3)
    assert three.sft_real(start) == runs / "sft-real" / "model"
    trains = [(name, args) for name, args in ran if args[0] == "train"]
    assert [name for name, _ in trains] == ["train-sft-real-epoch1", "train-sft-real-epoch2", "train-sft-real"]
    assert [option(args, "model.name_or_path") for _, args in trains] == [
        str(start), str(runs / "sft-real-epoch1" / "model"), str(runs / "sft-real-epoch2" / "model")]
    assert [option(args, "trainer.seed") for _, args in trains] == ["0", "1", "2"]
    assert len({option(args, "data.train") for _, args in trains}) == 1  # the same pairs every epoch
    ran.clear()
    assert three.sft_real(start) == runs / "sft-real" / "model"
    assert not [name for name, args in ran if args[0] == "train"]  # a resume trains nothing again
    for k, run in enumerate(reproduce.sft_real_runs(tmp_path / "w", 3)):  # the curves: epochs one after another
        (run / "log_history.json").write_text(json.dumps([{"step": 5, "loss": k + 1.0}, {"step": 10, "loss": k + 0.5}]))
    assert reproduce._in_sequence(reproduce.sft_real_runs(tmp_path / "w", 3), "loss") == [
        ([5, 10], [1.0, 0.5]), ([15, 20], [2.0, 1.5]), ([25, 30], [3.0, 2.5])]

    ran.clear()
    Recorded(tmp_path / "one", quick=True, threads=1, mix="real", sft_epochs=1).sft_real(start)
    assert [name for name, args in ran if args[0] == "train"] == ["train-sft-real"]
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", crop_size=112,
               previous_rate=0.0, tracker_factor=None, synthetic_model=None)
    assert_old_folders_resume_with(reproduce, tmp_path, old, "sft_epochs", 1, 2)
    assert reproduce.Pipeline.from_settings(tmp_path, reproduce.recorded_settings(tmp_path), threads=1).sft_epochs == 1
    assert "one or more is needed" in refusal(tmp_path, "--sft-epochs", "0")


def test_grpo_steps_set_the_reference_runs_length_and_the_closed_loops_rounds(reproduce, tmp_path):
    ran = []
    five = recording(reproduce, ran)(tmp_path / "w", quick=False, threads=1, mix="real", grpo_steps=100)
    sft = tmp_path / "sft"
    assert five.grpo_closed_loop(sft, [1]) == {1: tmp_path / "w" / "runs" / "grpo-loop-seed1-r5" / "model"}
    trains = [args for name, args in ran if args[0] == "train"]
    rollouts = [args for name, args in ran if args[0] == "build-pairs" and args[-1] == "--overwrite"]
    assert [option(args, "model.name_or_path") for args in trains] == [
        str(sft), *(str(tmp_path / "w" / "runs" / f"grpo-loop-seed1-r{r}" / "model") for r in (1, 2, 3, 4))]
    assert {option(args, "trainer.max_steps") for args in trains} == {"20"}  # 5 rounds of 20 steps
    assert [args[args.index("--from-rollouts") + 1] for args in rollouts][::2] == [
        option(args, "model.name_or_path") for args in trains]  # each round's rollouts: the policy it trains
    reference = five._grpo_args(tmp_path / "ref", sft, [], 0, five.grpo_steps)
    assert option([str(a) for a in reference], "trainer.max_steps") == "100"
    assert [k for k in five.stopping_points(1) if "loop" in k] == [f"grpo-loop-seed1-step{k}" for k in (20, 40, 60, 80, 100)]
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", crop_size=112,
               previous_rate=0.0, tracker_factor=None, sft_epochs=2, synthetic_model=None)
    assert_old_folders_resume_with(reproduce, tmp_path, old, "grpo_steps", 60, 100)
    assert reproduce.Pipeline.from_settings(tmp_path, reproduce.recorded_settings(tmp_path), threads=1).loop_rounds == 3
    assert "a positive multiple of 20" in refusal(tmp_path, "--grpo-steps", "50")


def test_validation_pools_the_pasted_set_with_the_real_training_sequences_by_frame(reproduce, tmp_path):
    """Stopping point A tracks the pasted validation sequence perfectly and loses every real training sequence;
    B the reverse. The pasted set alone stops the run at A; pooled by frame with the real training sequences
    (ten times the frames), at B. Old folders resume with the pasted set alone."""
    import numpy as np
    from tests.conftest import shared

    from r1track import synth
    from r1track.metrics import score_got10k

    shared("data/real/train", "--validation val+real-train tracks the real training sequences")
    synth.generate(tmp_path / "paste-val", sequences=1, frames=60, seed=7, split="train", size="160x120",
                   progress=False)
    pooled = reproduce.Pipeline(tmp_path, quick=False, threads=1, validation="val+real-train")
    assert pooled.evaluation_sets()["real-train"][-1] == ",".join(
        s.name for s in reproduce.training_sequences()["real train"])
    names = ["grpo-ref-seed0-step20", "grpo-ref-seed0-step40"]  # A, B
    for set_name in ("val", "real-train"):
        for seq in pooled.sequences(set_name):
            truth = np.nan_to_num(seq.gt, nan=1.0)
            lost = truth + [500.0, 500.0, 0.0, 0.0]
            a, b = (truth, lost) if set_name == "val" else (lost, truth)
            for name, boxes in zip(names, (a, b)):
                folder = tmp_path / f"results-{set_name}" / name / seq.name
                folder.mkdir(parents=True)
                np.savetxt(folder / f"{seq.name}_001.txt", boxes, fmt="%.2f", delimiter=",")
    points = dict.fromkeys(names, tmp_path)
    alone = reproduce.Pipeline(tmp_path, quick=False, threads=1)
    assert reproduce.stops_by_validation(points, alone.validation_ao(names))["grpo-ref-seed0"]["step"] == 20
    ao = pooled.validation_ao(names)
    assert reproduce.stops_by_validation(points, ao)["grpo-ref-seed0"]["step"] == 40
    frames = {s: score_got10k(pooled.sequences(s), tmp_path / f"results-{s}" / names[1])["overall"]["num_frames"]
              for s in ("val", "real-train")}  # the frames GOT-10k scores (the first and absent ones are not)
    assert frames["real-train"] > 10 * frames["val"]
    assert ao[names[1]] == pytest.approx(frames["real-train"] / sum(frames.values()), abs=1e-3)
    (tmp_path / "pipeline.json").write_text(json.dumps(dict(quick=False, mix="real+paste", loop_kl="round",
                                                            loop_pool="latest", synthetic_model=None)))
    assert reproduce.recorded_settings(tmp_path)["validation"] == "val"


def test_prompt_and_bf16_reach_every_pair_set_and_training_command_and_old_folders_resume_without(
    reproduce, tmp_path
):
    import r1track
    from r1track.nano import make_nano_model, read_settings

    synthetic = make_nano_model(tmp_path / "synthetic", seed=0)
    pipeline = reproduce.Pipeline(tmp_path / "w", quick=True, threads=1, mix="real", prompt="compact", bf16=True)
    start = pipeline.start_model(synthetic)  # the same weights, set to track with the compact prompt
    assert start == tmp_path / "w" / "runs" / "synthetic-112-compact" / "model"
    assert (start / "model.safetensors").read_bytes() == (synthetic / "model.safetensors").read_bytes()
    assert {**read_settings(synthetic), "prompt": "compact"} == read_settings(start)
    assert r1track.load_tracker(str(start), device="cpu").prompt == "compact"
    assert [given(o).prompt for o in real_stage_pair_sets(reproduce, pipeline)] == ["compact"] * 5
    ran = []
    recorded = recording(reproduce, ran)(tmp_path / "r", quick=True, threads=1, mix="real", prompt="compact", bf16=True)
    recorded.sft_real(start)
    recorded.synthetic_pairs()
    pairs = [args for _, args in ran if args[0] == "build-pairs"]
    assert pairs and all(args[args.index("--prompt") + 1] == "compact" for args in pairs)
    trains = [args for _, args in ran if args[0] == "train"]
    assert trains and all(option(a, "trainer.bf16") == "true" and option(a, "trainer.use_cpu") == "true" for a in trains)
    assert read_settings(recorded.untrained())["prompt"] == "compact"  # a from-scratch model is made for it

    plain = reproduce.Pipeline(tmp_path / "p", quick=True, threads=1, mix="real")
    assert plain.start_model(synthetic) == synthetic and "--prompt" not in plain.real_pair_options([])
    assert not [a for a in plain._common() if a.startswith("trainer.")]  # float32 unless asked
    old = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", stop="val", synthetic_model=None)
    assert_old_folders_resume_with(reproduce, tmp_path, old, "prompt", "current", "compact")
    assert_old_folders_resume_with(reproduce, tmp_path, old, "bf16", False, True)
    resumed = reproduce.Pipeline.from_settings(tmp_path, reproduce.recorded_settings(tmp_path), threads=1)
    assert (resumed.prompt, resumed.bf16) == ("current", False)
    assert "invalid choice: 'three'" in refusal(tmp_path, "--prompt", "three")  # two-image variants only


def test_with_no_synthetic_seeds_the_synthetic_stage_ends_with_sft(reproduce, tmp_path):
    ran = []
    pipeline = recording(reproduce, ran)(tmp_path / "w", quick=True, threads=1, mix="real")
    pipeline.synthetic_pairs(grpo=False)
    assert [args[args.index("--out") + 1] for _, args in ran] == [
        str(tmp_path / "w" / "pairs" / name) for name, *_ in reproduce.SFT_ROUNDS]  # no GRPO pairs
    assert pipeline.grpo(tmp_path / "sft", []) == {} and len(ran) == 4  # no GRPO run
    scores = {"sft": {"ao": 0.51}, "sft+grpo-seed0": {"ao": 0.49}, "sft+grpo-seed1": {"ao": 0.55}}
    assert reproduce.summary(scores, []) == {"sft_ao": 0.51, "target_sft_ao_0.5": True}
    both = reproduce.summary(scores, [0, 1])
    assert both["grpo_ao_mean"] == pytest.approx(0.52) and both["grpo_ao_spread"] == pytest.approx(0.06)


def test_a_resume_keeps_each_steps_first_time_and_the_history_keeps_every_execution(reproduce, tmp_path):
    work = tmp_path / "w"
    reproduce.Pipeline(work, quick=True, threads=1, mix="real").record("eval-sft", 138.7)
    resumed = reproduce.Pipeline(work, quick=True, threads=1, mix="real")  # reads the folder's timings.json
    resumed.record("eval-sft", 59.5)  # the resume's evaluation found its results
    resumed.record("train-sft-real", 700.0)  # stopped before it ended the first time: its first completion
    assert json.loads((work / "timings.json").read_text()) == {"eval-sft": 138.7, "train-sft-real": 700.0}
    history = [json.loads(line) for line in (work / "timings-history.jsonl").read_text().splitlines()]
    assert [(h["step"], h["seconds"]) for h in history] == [
        ("eval-sft", 138.7), ("eval-sft", 59.5), ("train-sft-real", 700.0)]


def test_soups_average_each_variants_stopped_runs_once(reproduce, tiny_dir, tmp_path, tmp_path_factory):
    import torch
    from safetensors.torch import load_file

    from r1track.tiny import make_tiny_model

    cache = tmp_path_factory.getbasetemp() / "tokenizer-cache"
    other = [make_tiny_model(tmp_path / f"seed{s}", seed=s, cache_dir=cache) for s in (1, 2)]
    runs = {"grpo-ref-seed0": tiny_dir, "grpo-ref-seed1": other[0], "grpo-loop-seed0": other[1],
            "grpo-loop-seed1": tiny_dir}
    pipeline = reproduce.Pipeline(tmp_path / "w", quick=True, threads=1, mix="real")
    soups = pipeline.soups(runs, [0, 1])
    assert soups == {name: tmp_path / "w" / "runs" / name / "model" for name in ("soup-loop", "soup-all")}
    weights = {name: load_file(model / "model.safetensors") for name, model in {**runs, **soups}.items()}
    key = next(k for k, v in weights["soup-all"].items() if v.is_floating_point())
    for name, variants in (("soup-loop", ("loop",)), ("soup-all", ("ref", "loop"))):
        parts = [weights[f"grpo-{v}-seed{s}"][key].double() for v in variants for s in (0, 1)]
        assert torch.allclose(weights[name][key].double(), sum(parts) / len(parts), rtol=1e-6, atol=1e-7)
    assert set(json.loads((tmp_path / "w" / "timings.json").read_text())) == {"soup-loop", "soup-all"}
    written = (soups["soup-all"] / "model.safetensors").stat().st_mtime_ns
    assert pipeline.soups(runs, [0, 1]) == soups  # a resume keeps them
    assert (soups["soup-all"] / "model.safetensors").stat().st_mtime_ns == written
    pipeline.soups({**runs, "grpo-loop-seed1": other[0]}, [0, 1])  # a run stopped elsewhere: its soups made again
    loop = [weights["grpo-loop-seed0"][key].double(), weights["grpo-ref-seed1"][key].double()]
    remade = load_file(soups["soup-loop"] / "model.safetensors")[key].double()
    assert torch.allclose(remade, sum(loop) / 2, rtol=1e-6, atol=1e-7)
    made_from = json.loads((soups["soup-loop"] / "soup.json").read_text())["models"]
    assert made_from == [str(other[1].resolve()), str(other[0].resolve())]


def test_soups_need_two_seeds(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path / "w"), "--soups", "--seeds", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--soups: a soup averages two or more runs" in proc.stderr
    assert not (tmp_path / "w").exists()
