#!/usr/bin/env python
"""Reproduce the nano R1-Track model end to end on the CPU (see benchmarks/README.md for the time).

    python scripts/reproduce_nano.py [--work build/nano] [--seeds 0 1 2] [--install MODEL|best] [--quick]
                                     [--synthetic-model PATH] [--synthetic-only] [--mix real+paste]
                                     [--loop-kl round|sft] [--loop-pool latest|all] [--stop val|last]
                                     [--crop-size 112] [--search-factor 4] [--previous-rate 0]
                                     [--tracker-factor F]
                                     [--sft-epochs 2] [--grpo-steps 60] [--validation val|val+real-train]
                                     [--prompt current|compact|...] [--bf16] [--synthetic-seeds [S ...]]

Each step is skipped when its output already exists, so an interrupted run resumes (``--fresh`` starts
over); the options that decide what the steps produce are recorded in ``WORK/pipeline.json``, and a
resume with other ones is refused. Synthetic stages (skipped with ``--synthetic-model PATH``, which
starts the real stages from PATH):

1. ``r1track synth``: a training split (400 sequences x 50 frames, seed 1) and a held-out split
   (120 x 60, seed 2; never used for training pairs).
2. ``r1track build-pairs``: one SFT pair set per SFT round (tracking + 15% grounding, seeds 0, 5, 6, 7)
   and GRPO pairs (same crop distribution, tracking only, seed 1).
3. ``r1track.nano.make_nano_model``: the untrained nano checkpoint (random weights, seed 0).
4. ``r1track train sft``: round 1 from scratch (``recipes/nano-sft.yaml``), rounds 2 to 4 continue on
   fresh pairs (``recipes/nano-sft-more.yaml``); ``r1track train grpo`` from round 4, once per seed
   (``--synthetic-seeds``, default ``--seeds``; with none the synthetic stage ends with SFT round 4,
   which is all the real stages start from).
5. ``r1track eval`` of every model on the synthetic held-out split; table and curves.

Real-video stages (``../shared/data/real``; skipped with ``--synthetic-only``):

6. Held-out part, fixed before training: the single-object sequences ``HELD_OUT`` and every identity of
   the MOT video ``MOT_HELD_OUT``; never used for pairs or model selection.
7. ``recipes/nano-sft-real.yaml``: SFT of the synthetic model on real pairs (the other real sequences,
   the other MOT video's identities; missing-target crops answered ``[]``, photometric jitter) mixed
   with synthetic pairs (a 150-sequence synthetic split, seed 1) and, in the default ``--mix real+paste``
   (``MIXES``), ``r1track paste`` sequences of the training objects on training frames (300, seed 1; 40
   more, seed 2, for the closed-loop rollouts). 40 pasted from the held-out part only (seed 3) are an
   evaluation set, and 40 pasted from the training part (seed 4; never paired) the validation set ``val``.
   ``--sft-epochs N``: N runs of the recipe, each from the previous one's model on the same pairs in
   another order (trainer seed = epoch - 1; the cosine schedule restarts), the last one ``runs/sft-real``.
8. From that SFT model, once per seed, side by side: reference GRPO (GT-jittered pairs,
   ``recipes/nano-grpo.yaml``, 60 steps) and closed-loop GRPO (3 rounds of: the current policy tracks
   the training sequences, ``build-pairs --from-rollouts`` turns its own search crops into pairs, 20
   GRPO steps on that round's pairs, or with ``--loop-pool all`` on every round's so far);
   ``--grpo-steps N`` (a multiple of 20) gives both variants N steps (N / 20 closed-loop rounds). Early
   stopping (``--stop val``, the default): each run stops at the step (20, 40, 60, ...: the reference
   run's checkpoints, the closed-loop rounds' models) with the highest validation AO; ``--stop last``: at
   its last step. ``--validation val+real-train``: validation AO is the pasted set's pooled by frame with
   the real training sequences tracked from their first box (``real-train``: paired frames, but not the
   tracking loop's own drift), for early stopping and ``--install best`` alike.
   ``--crop-size N`` (default 112, the synthetic model's) trains and tracks the real stages with N-px
   crops ((N/28)^2 visual tokens per image, the same weights): the synthetic model set to N-px crops
   (``WORK/runs/synthetic-N``) starts the real SFT, and every real pair set is built at N px.
   ``--search-factor F`` (default 4, the synthetic model's): the real stages track with template and
   search crops of side F x sqrt(w h) (the start model set to it, ``WORK/runs/synthetic-N-fF``), and every
   real pair set's context factors are drawn from the synthetic range (2.5-6) scaled by F / 4, so the
   target fills the crops as it will when tracked.
   ``--previous-rate P``: that share of every real-stage pair set's tracking samples (SFT, reference
   GRPO, the closed loop's GT-jittered half) has its search crop cut around the previous frame's box
   (``build-pairs --previous-rate``: the target's offset is the video's own motion, not the jitter).
   ``--tracker-factor F``: every real-stage pair set's templates (and those previous-box search crops)
   are cut as the tracker cuts them, centred at factor F (``build-pairs --tracker-factor``).
9. ``r1track eval`` of the baselines (static, KCF, CSRT) and every model on the held-out real sequences,
   the held-out MOT identities, 40 synthetic held-out sequences, the held-out pasted set and the
   validation set; AO/SR per set and pooled (real+mot), seed means and spreads, drift diagnostics (lost
   frames, recovery, box size); ``WORK/report``.

Both stages: ``--prompt P`` (default ``current``, the packaged model's) builds every pair set with prompt
variant P and makes every model track with it (a from-scratch model is made for it; with
``--synthetic-model`` the real stages start from that model set to P, ``WORK/runs/synthetic-112-P``, and
its SFT teaches the new prompt). ``--bf16`` trains in mixed precision on the CPU (``trainer.bf16=true
trainer.use_cpu=true`` in every training command: float32 weights, bfloat16 matrix products); tracking
stays float32.

``--install MODEL`` copies an evaluated model (``sft-real``, ``grpo-loop-seed0``, ...; ``best``: the one
with the highest validation AO (``--validation``), never a held-out figure) to
``src/r1track/assets/nano`` (the packaged default) and scores it on all 120 synthetic held-out sequences;
finally the installed model tracks the real OTB sequences (``../shared/data/otb``). ``--quick`` shrinks
every step to a smoke test of the pipeline (numbers meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from r1track.atomic import atomic_write_text  # noqa: E402
from r1track.nano import NANO_CROP_SIZE, NanoSettings  # noqa: E402  (the source tree's, as every step runs it)
from r1track.prompts import PROMPT_IMAGES  # noqa: E402

PROMPT_VARIANTS = tuple(v for v, n in PROMPT_IMAGES.items() if n == 2)  # what build-pairs --prompt takes
# model soups of the real stages (--soups): name -> the GRPO variants whose stopped runs it averages
SOUPS = {"soup-loop": ("loop",), "soup-all": ("ref", "loop")}

NANO_FACTOR = NanoSettings.search_factor  # the synthetic model's template and search factor
ASSET = ROOT / "src" / "r1track" / "assets" / "nano"
OTB = ROOT.parent / "shared" / "data" / "otb"
CHECKPOINT_FILES = ("config.json", "generation_config.json", "model.safetensors", "processor_config.json",
                    "chat_template.jinja", "tokenizer.json", "tokenizer_config.json", "r1track.json")

FULL = dict(train_sequences=400, mix_sequences=150, train_frames=50, val_sequences=120, val_frames=60, sft_pairs=24000,
            paste_sequences=300, loop_paste_sequences=40, held_paste_sequences=40, val_paste_sequences=40, grpo_pairs=4000,
            loop_steps=20, sft_overrides=[], grpo_overrides=[])
QUICK = dict(train_sequences=12, mix_sequences=6, train_frames=20, val_sequences=3, val_frames=12, sft_pairs=64, grpo_pairs=16,
             paste_sequences=4, loop_paste_sequences=2, held_paste_sequences=2, val_paste_sequences=2, loop_steps=2,
             sft_overrides=["trainer.num_train_epochs=1", "trainer.max_steps=4", "trainer.warmup_steps=0",
                            "data.validation.every_n_steps=0", "data.validation.sequences=1"],
             grpo_overrides=["trainer.max_steps=2", "data.validation.every_n_steps=0",
                             "data.validation.sequences=1"])
# SFT rounds: (name, recipe, pair-set seed, overrides); each round starts from the previous one's model
SFT_ROUNDS = (("sft-1", "nano-sft.yaml", 0, []),
              ("sft-2", "nano-sft-more.yaml", 5, []),
              ("sft-3", "nano-sft-more.yaml", 6, ["trainer.learning_rate=2.0e-4"]),
              ("sft-4", "nano-sft-more.yaml", 7, ["trainer.learning_rate=2.0e-4"]))
# SFT pairs: wide jitter so the image, not a centre prior, explains the answer (recipes/nano-sft.yaml)
SFT_PAIR_OPTIONS = ["--sizes", "112", "--factor-range", "2.5", "6", "--jitter", "0.25", "--clip-boxes",
                    "--skip-absent", "--max-pixels", "12544", "--grounding-rate", "0.15"]
# GRPO pairs: the same crop distribution, tracking only (a narrower one, factor 3-5 and jitter 0.12, was
# not better: benchmarks/README.md)
GRPO_PAIR_OPTIONS = SFT_PAIR_OPTIONS[:-2]

# ---- real video (../shared/data/real): held-out part fixed before any training, never used for pairs or
# model selection. Sequences cut from one source video are held out together (the two Bikers may be one).
REAL = ROOT.parent / "shared" / "data" / "real"
HELD_OUT = ("dtb_Surfing06", "otb_Biker", "spbacf_Biker", "uav_car14", "uav_group2_2", "uav_person12_1",
            "uav_wakeboard10")
MOT_TRAIN, MOT_HELD_OUT = "PETS09-S2L1", "TUD-Stadtmitte"
# real pairs: the synthetic SFT pairs' crops, plus missing-target crops (answer []) and photometric jitter
REAL_PAIR_OPTIONS = [*GRPO_PAIR_OPTIONS, "--absent-rate", "0.1", "--photometric", "0.5"]
REAL_SOURCES = dict.fromkeys(("got", "mot", "paste"), REAL_PAIR_OPTIONS)
SYNTH_MIX_OPTIONS = [*SFT_PAIR_OPTIONS, "--absent-rate", "0.1"]
# what early stopping and --install best rank models by: the pasted validation set alone, or pooled by frame
# with the real training sequences tracked from their first box (benchmarks/validation_sets.py)
VALIDATIONS = {"val": ("val",), "val+real-train": ("val", "real-train")}


@dataclass(frozen=True)
class Mix:
    """Pairs per source for SFT (recipes/nano-sft-real.yaml: one epoch) and reference GRPO (GT-jittered),
    and the sources the closed-loop policy tracks."""

    sft: dict
    grpo: dict
    loop: tuple


MIXES = {
    # real pairs only (the packaged model's before the pasted sequences)
    "real": Mix(dict(got=8000, mot=4000, synth=4000), dict(got=2000, mot=1000, synth=1000), ("got", "mot")),
    # pasted sequences (r1track paste) in place of part of the real pairs
    "paste": Mix(dict(got=4000, mot=2500, paste=5000, synth=4500), dict(got=1500, mot=1000, paste=750, synth=750),
                 ("got", "mot", "paste-loop")),
    # pasted sequences on top of the real pairs: the packaged model's
    "real+paste": Mix(dict(got=8000, mot=4000, paste=4000, synth=4000),
                      dict(got=2000, mot=1000, paste=500, synth=500), ("got", "mot", "paste-loop")),
}
# closed-loop GRPO: rounds of (rollouts of the current policy -> FULL["loop_steps"] GRPO steps), as many
# steps in all as the reference GRPO runs (--grpo-steps); half of each round's pool are GT-jittered pairs of
# the same sequences
GRPO_STEPS = 60  # the packaged model's: 3 closed-loop rounds
SYNTH_COMPARED = 40  # synthetic held-out sequences every model is compared on (the shipped one: all 120)
ROLLOUT_OPTIONS = ["--rollout-runs", "1", "--rollout-frames", "30", "--rollout-batch-size", "20",
                   "--jittered-rate", "0.5", "--rollout-device", "cpu"]


class Pipeline:
    def __init__(self, work: Path, quick: bool, threads: int, mix: str = "real+paste", loop_kl: str = "round",
                 loop_pool: str = "latest", stop: str = "val", crop: int = NANO_CROP_SIZE, previous_rate: float = 0.0,
                 tracker_factor: float | None = None, sft_epochs: int = 2, grpo_steps: int = GRPO_STEPS,
                 validation: str = "val", search_factor: float = NANO_FACTOR, prompt: str = "current",
                 bf16: bool = False):
        self.work = work
        self.cfg = QUICK if quick else FULL
        self.mix = MIXES[mix]
        self.loop_kl, self.loop_pool, self.stop, self.crop = loop_kl, loop_pool, stop, crop
        self.previous_rate, self.tracker_factor, self.sft_epochs = previous_rate, tracker_factor, sft_epochs
        self.grpo_steps, self.loop_rounds = grpo_steps, grpo_steps // FULL["loop_steps"]
        self.validation, self.search_factor, self.prompt, self.bf16 = validation, search_factor, prompt, bf16
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.timings_file = work / "timings.json"
        self.timings = json.loads(self.timings_file.read_text()) if self.timings_file.is_file() else {}
        self.diagnostics: dict = {}
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                        TOKENIZERS_PARALLELISM="false",
                        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))

    @classmethod
    def from_settings(cls, work: Path, settings: dict, threads: int) -> Pipeline:
        """The pipeline that a work folder's options describe (as ``main`` records them in ``pipeline.json``)."""
        return cls(work, settings["quick"], threads, settings["mix"], settings["loop_kl"], settings["loop_pool"],
                   settings["stop"], settings["crop_size"], settings["previous_rate"], settings["tracker_factor"],
                   settings["sft_epochs"], settings["grpo_steps"], settings["validation"], settings["search_factor"],
                   settings["prompt"], settings["bf16"])

    def r1track(self, name: str, *args) -> None:
        """One ``r1track`` command, logged to ``WORK/logs/<name>.log``; a failure stops the pipeline."""
        self.parallel({name: args})

    def parallel(self, commands: dict[str, list]) -> None:
        """``r1track`` commands side by side (one thread each when there are several); waits for all."""
        env = self.env if len(commands) < 2 else dict(self.env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        running = {}
        for name, args in commands.items():
            log = self.logs / f"{name}.log"
            print(f"[{time.strftime('%H:%M:%S')}] {name}: r1track {' '.join(map(str, args))}", flush=True)
            out = open(log, "w")
            proc = subprocess.Popen([sys.executable, "-m", "r1track.cli", *map(str, args)], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
            running[name] = (proc, out, log, time.perf_counter())
        failed = []
        for name, (proc, out, log, start) in running.items():
            code = proc.wait()
            out.close()
            self.record(name, time.perf_counter() - start)
            if code:
                failed.append(f"{name} failed (exit {code}); log {log}:\n{log.read_text(errors='replace')[-2000:]}")
        if failed:
            raise SystemExit("\n".join(failed))

    def record(self, name: str, seconds: float) -> None:
        """A step's wall time: its first completed execution in ``timings.json`` (a resume's evaluations only
        find their results, so they must not replace what the work cost), every execution appended to
        ``timings-history.jsonl``."""
        self.timings.setdefault(name, round(seconds, 1))
        atomic_write_text(self.timings_file, json.dumps(self.timings, indent=1) + "\n")
        with open(self.work / "timings-history.jsonl", "a") as history:
            history.write(json.dumps({"step": name, "seconds": round(seconds, 1), "ended": time.strftime("%FT%T")}) + "\n")

    # ------------------------------------------------------------------ steps
    def data(self, synthetic_stages: bool = True, real_stages: bool = True) -> None:
        c, synth = self.cfg, self.work / "synth"
        if synthetic_stages and not (synth / "train" / "list.txt").is_file():
            self.r1track("synth-train", "synth", "--out", synth, "--split", "train", "--sequences",
                         c["train_sequences"], "--frames", c["train_frames"], "--seed", 1, "--no-progress",
                         "--overwrite")
        if not (synth / "val" / "list.txt").is_file():
            self.r1track("synth-val", "synth", "--out", synth, "--split", "val", "--sequences",
                         c["val_sequences"], "--frames", c["val_frames"], "--seed", 2, "--no-progress",
                         "--overwrite")
        mix = self.work / "synth-mix"  # the synthetic part of the real stages' pairs: a smaller training split
        if real_stages and not (mix / "train" / "list.txt").is_file():
            self.r1track("synth-mix", "synth", "--out", mix, "--split", "train", "--sequences",
                         c["mix_sequences"], "--frames", c["train_frames"], "--seed", 1, "--no-progress", "--overwrite")
        if not real_stages:
            return
        from r1track import datasets

        held_mot = [s.name for s in datasets.load("mot", REAL / "mot" / MOT_HELD_OUT)]
        used = {"paste-held", "paste-val", *({"paste"} & {*self.mix.sft, *self.mix.grpo}),
                *({"paste-loop"} & {*self.mix.loop})}
        for name, count, seed, video, which in (
                ("paste", "paste_sequences", 1, MOT_TRAIN, ["--drop-videos", *HELD_OUT]),
                ("paste-loop", "loop_paste_sequences", 2, MOT_TRAIN, ["--drop-videos", *HELD_OUT]),
                ("paste-held", "held_paste_sequences", 3, MOT_HELD_OUT, ["--keep-videos", *HELD_OUT, *held_mot]),
                ("paste-val", "val_paste_sequences", 4, MOT_TRAIN, ["--drop-videos", *HELD_OUT])):
            if name in used and not (self.work / name / "train" / "list.txt").is_file():
                self.r1track(name, "paste", "--source", "got10k", REAL / "train", "--source", "mot", REAL / "mot" / video,
                             *which, "--out", self.work / name, "--sequences", c[count], "--frames",
                             c["train_frames"], "--seed", seed, "--no-progress", "--overwrite")

    def synthetic_pairs(self, grpo: bool = True) -> None:
        c, synth = self.cfg, self.work / "synth"
        pairs = self.work / "pairs"
        for name, _, seed, _ in SFT_ROUNDS:
            if not (pairs / name / "pairs.json").is_file():
                self.r1track(f"pairs-{name}", "build-pairs", "--dataset", "got10k", "--root", synth, "--split",
                             "train", "--out", pairs / name, "--samples", c["sft_pairs"], "--seed", seed,
                             *SFT_PAIR_OPTIONS, *self.prompt_option(), "--overwrite")
        if grpo and not (pairs / "grpo" / "pairs.json").is_file():
            self.r1track("pairs-grpo", "build-pairs", "--dataset", "got10k", "--root", synth, "--split", "train",
                         "--out", pairs / "grpo", "--samples", c["grpo_pairs"], "--seed", 1, *GRPO_PAIR_OPTIONS,
                         *self.prompt_option(), "--overwrite")

    def untrained(self) -> Path:
        from r1track.nano import make_nano_model

        out = self.work / "untrained"
        if not (out / "config.json").is_file():
            start = time.perf_counter()
            make_nano_model(out, seed=0, overwrite=True, settings=NanoSettings(prompt=self.prompt))
            self.record("make-nano-model", time.perf_counter() - start)
        return out

    def _common(self) -> list[str]:
        """Overrides of every training command: the validation split, and with ``bf16`` mixed precision on the
        CPU (float32 weights, bfloat16 matrix products under autocast)."""
        synth = self.work / "synth"
        return [f"data.validation.root={synth}", *(["trainer.bf16=true", "trainer.use_cpu=true"] if self.bf16 else [])]

    def sft(self, untrained: Path) -> dict[str, Path]:
        """The SFT rounds, each from the previous round's model; {round name: model folder}."""
        models, start = {}, untrained
        for name, recipe, _, overrides in SFT_ROUNDS:
            run = self.work / "runs" / name
            if not (run / "model" / "config.json").is_file():
                self.r1track(f"train-{name}", "train", "sft", "--config", ROOT / "recipes" / recipe,
                             "--output-dir", run, "--overwrite", f"model.name_or_path={start}",
                             f"data.train={self.work / 'pairs' / name}", *self._common(), *overrides,
                             *self.cfg["sft_overrides"])
            models[name] = start = run / "model"
        return models

    def grpo(self, sft: Path, seeds: list[int]) -> dict[int, Path]:
        """One GRPO run per seed from the same SFT model, side by side with one thread each."""
        todo = {}
        for seed in seeds:
            run = self.work / "runs" / f"grpo-seed{seed}"
            if not (run / "model" / "config.json").is_file():
                todo[seed] = ["train", "grpo", "--config", ROOT / "recipes" / "nano-grpo.yaml", "--output-dir", run,
                              "--overwrite", f"model.name_or_path={sft}", f"data.train={self.work / 'pairs' / 'grpo'}",
                              f"trainer.seed={seed}", *self._common(), *self.cfg["grpo_overrides"]]
        self.parallel({f"train-grpo-seed{s}": args for s, args in todo.items()})
        return {s: self.work / "runs" / f"grpo-seed{s}" / "model" for s in seeds}

    def evaluate(self, models: dict[str, Path | None]) -> None:
        """``r1track eval`` on the held-out split, two models at a time (None: the static box); resumes."""
        commands = {}
        for name, model in models.items():
            tracker = ["--tracker", "static"] if model is None else [
                "--tracker", "mllm", "--model", model, "--max-new-tokens", "24", "--batch-size", "40",
                "--device", "cpu"]
            commands[f"eval-{name}"] = ["eval", "--dataset", "got10k", "--root", self.work / "synth", "--split", "val",
                                        *tracker, "--name", name, "--results", self.work / "results", "--no-progress"]
        names = list(commands)
        for i in range(0, len(names), 2):
            self.parallel({n: commands[n] for n in names[i:i + 2]})

    # ------------------------------------------------------------------ real video
    def sources(self) -> dict[str, list]:
        """Training sources of the real stages (held-out sequences and video left out), as dataset options."""
        return {"got": ["--dataset", "got10k", "--root", REAL / "train", "--split", "train", "--drop-videos",
                        *HELD_OUT],
                "mot": ["--dataset", "mot", "--root", REAL / "mot" / MOT_TRAIN],
                "paste": ["--dataset", "got10k", "--root", self.work / "paste", "--split", "train"],
                "paste-loop": ["--dataset", "got10k", "--root", self.work / "paste-loop", "--split", "train"],
                "synth": ["--dataset", "got10k", "--root", self.work / "synth-mix", "--split", "train"]}

    def evaluation_sets(self) -> dict[str, list]:
        """Held-out sets: real sequences, the MOT video's identities, synthetic, and sequences pasted from the
        held-out part only (more held-out states, lower variance); and the validation set ``val`` (pasted from
        the training part, never paired) that ``--install best`` selects by, and with ``--validation
        val+real-train`` the real training sequences (``real-train``, not held out) that it is pooled with."""
        sets = {"real": ["--dataset", "got10k", "--root", REAL / "train", "--split", "train", "--sequences",
                         ",".join(HELD_OUT)],
                "mot": ["--dataset", "mot", "--root", REAL / "mot" / MOT_HELD_OUT],
                "synth": ["--dataset", "got10k", "--root", self.work / "synth", "--split", "val"],
                "paste": ["--dataset", "got10k", "--root", self.work / "paste-held", "--split", "train"],
                "val": ["--dataset", "got10k", "--root", self.work / "paste-val", "--split", "train"]}
        if "real-train" in VALIDATIONS[self.validation]:
            names = ",".join(s.name for s in training_sequences()["real train"])
            sets["real-train"] = ["--dataset", "got10k", "--root", REAL / "train", "--split", "train", "--sequences",
                                  names]
        return sets

    def mixed_pairs(self, name: str, counts: dict[str, int], seed: int, options: dict[str, list]) -> list[Path]:
        """One pair set per source (in parallel), ``WORK/pairs/<name>-<source>``; resumes."""
        parts = {src: self.work / "pairs" / f"{name}-{src}" for src in counts}
        self.parallel({f"pairs-{name}-{src}": [
            "build-pairs", *self.sources()[src], "--out", part, "--samples", self.scaled(counts[src]), "--seed",
            seed, *options[src], "--overwrite"] for src, part in parts.items() if not (part / "pairs.json").is_file()})
        return list(parts.values())

    def scaled(self, n: int) -> int:
        return max(8, n // 250) if self.cfg is QUICK else n

    def real_options(self, synth: list) -> dict[str, list]:
        """Pair options per source of the real stages (``synth``: the synthetic part's)."""
        return {src: self.real_pair_options(options) for src, options in {**REAL_SOURCES, "synth": synth}.items()}

    def real_pair_options(self, options: list) -> list:
        """``build-pairs`` options as the real stages use them: at the crop size, with the prompt,
        ``--previous-rate`` and ``--tracker-factor``, and context factors scaled to ``--search-factor``."""
        previous = ["--previous-rate", str(self.previous_rate)] if self.previous_rate else []
        tracker = ["--tracker-factor", str(self.tracker_factor)] if self.tracker_factor else []
        return [*at_factor(at_crop(options, self.crop), self.search_factor), *self.prompt_option(), *previous, *tracker]

    def prompt_option(self) -> list[str]:
        """``build-pairs``' prompt option: none for ``current``, its default (the commands stay as they were)."""
        return [] if self.prompt == "current" else ["--prompt", self.prompt]

    def start_model(self, synthetic: Path) -> Path:
        """The real stages' start: the synthetic model, or with another crop size, search factor or prompt the
        same weights set to track with them (``WORK/runs/synthetic-N[-fF][-PROMPT]/model``)."""
        from r1track.nano import read_settings

        settings, factor = read_settings(synthetic), self.search_factor
        made_for = (settings.get("crop_size", NANO_CROP_SIZE), settings.get("search_factor", NANO_FACTOR),
                    settings.get("prompt", "current"))
        if made_for == (self.crop, factor, self.prompt):
            return synthetic
        suffix = ("" if factor == NANO_FACTOR else f"-f{factor:g}") + ("" if self.prompt == made_for[2] else f"-{self.prompt}")
        out = self.work / "runs" / f"synthetic-{self.crop}{suffix}" / "model"
        if not (out / "config.json").is_file():
            retarget(synthetic, out, self.crop, factor, self.prompt)
        return out

    def sft_real(self, start: Path) -> Path:
        """SFT on the real-stage pairs: ``sft_epochs`` runs of the recipe, each from the previous one's model
        with trainer seed ``epoch - 1`` (the pairs in another order); earlier epochs in ``runs/sft-real-epochK``,
        the last in ``runs/sft-real``."""
        pairs = self.mixed_pairs("sft-real", self.mix.sft, 0, self.real_options(SYNTH_MIX_OPTIONS))
        model = start
        for epoch, run in enumerate(sft_real_runs(self.work, self.sft_epochs), start=1):
            if not (run / "model" / "config.json").is_file():
                self.r1track(f"train-{run.name}", "train", "sft", "--config", ROOT / "recipes" / "nano-sft-real.yaml",
                             "--output-dir", run, "--overwrite", f"model.name_or_path={model}", train_data(pairs),
                             f"trainer.seed={epoch - 1}", *self._common(), *self.cfg["sft_overrides"])
            model = run / "model"
        return model

    def _grpo_args(self, run: Path, start: Path, pairs: list[Path], seed: int, steps: int | None = None,
                   extra: tuple = ()) -> list:
        steps = ["trainer.max_steps=" + str(steps)] if steps and self.cfg is not QUICK else []
        return ["train", "grpo", "--config", ROOT / "recipes" / "nano-grpo.yaml", "--output-dir", run, "--overwrite",
                f"model.name_or_path={start}", train_data(pairs), f"trainer.seed={seed}", *steps, *extra,
                *self._common(), *self.cfg["grpo_overrides"]]

    def grpo_reference(self, sft: Path, seeds: list[int]) -> dict[int, Path]:
        """GRPO on GT-jittered pairs (the reference's), once per seed, side by side; with ``stop="val"`` a
        checkpoint every ``loop_steps`` steps (the closed loop's round length: the same stopping points)."""
        pairs = self.mixed_pairs("grpo-real", self.mix.grpo, 1,
                                 self.real_options([*GRPO_PAIR_OPTIONS, "--absent-rate", "0.1"]))
        runs = {s: self.work / "runs" / f"grpo-ref-seed{s}" for s in seeds}
        save = ("trainer.save_strategy=steps", f"trainer.save_steps={self.cfg['loop_steps']}",
                "trainer.save_only_model=true") if self.stop == "val" else ()
        self.parallel({f"train-grpo-ref-seed{s}": self._grpo_args(run, sft, pairs, s, self.grpo_steps, save)
                       for s, run in runs.items() if not (run / "model" / "config.json").is_file()})
        return {s: run / "model" for s, run in runs.items()}

    def grpo_closed_loop(self, sft: Path, seeds: list[int]) -> dict[int, Path]:
        """Closed-loop GRPO: each round, the current policy tracks the training sequences; its own search
        crops (half the pool, the other half GT-jittered) are the next ``loop_steps`` steps' prompts. The
        KL term pulls towards each round's starting policy (``loop_kl="round"``) or the SFT model (``"sft"``).
        The pool holds the latest round's rollouts (``loop_pool="latest"``) or every round's so far (``"all"``:
        DAgger's aggregation, so one round's bias does not alone set the next round's correction)."""
        current = {s: sft for s in seeds}
        for r in range(1, self.loop_rounds + 1):
            runs = {s: self.work / "runs" / f"grpo-loop-seed{s}-r{r}" for s in seeds}
            todo = [s for s in seeds if not (runs[s] / "model" / "config.json").is_file()]
            builds = {}
            for s in todo:
                for src in self.mix.loop:
                    part = self.work / "pairs" / f"loop-seed{s}-r{r}-{src}"
                    if not (part / "pairs.json").is_file():
                        builds[f"pairs-loop-seed{s}-r{r}-{src}"] = [
                            "build-pairs", *self.sources()[src], "--out", part, "--from-rollouts", current[s],
                            "--seed", 100 * r + s, *ROLLOUT_OPTIONS, *self.quick_rollouts(),
                            *self.real_pair_options(REAL_PAIR_OPTIONS),
                            "--overwrite"]
            self.parallel(builds)
            train = {}
            for s in todo:
                anchor = (f"model.kl_reference={sft}",) if self.loop_kl == "sft" else ()
                train[f"train-grpo-loop-seed{s}-r{r}"] = self._grpo_args(runs[s], current[s],
                                                                         self.loop_pool_parts(s, r), s,
                                                                         self.cfg["loop_steps"],
                                                                         anchor)
            self.parallel(train)
            current = {s: runs[s] / "model" for s in seeds}
        return current

    def stopping_points(self, seed: int) -> dict[str, Path]:
        """Where seed ``seed``'s GRPO runs may stop, ``grpo-<variant>-seed<s>-step<n>``: the reference run's
        checkpoints (the last one: its final model) and each closed-loop round's model."""
        ref = self.work / "runs" / f"grpo-ref-seed{seed}"
        last = max((h["step"] for h in _history(ref) if h.get("step") is not None), default=0)
        steps = sorted(int(c.name.split("-")[1]) for c in ref.glob("checkpoint-*"))
        points = {f"grpo-ref-seed{seed}-step{k}": ref / f"checkpoint-{k}" for k in steps if k < last}
        points[f"grpo-ref-seed{seed}-step{last}"] = ref / "model"
        for r in range(1, self.loop_rounds + 1):
            points[f"grpo-loop-seed{seed}-step{r * self.cfg['loop_steps']}"] = \
                self.work / "runs" / f"grpo-loop-seed{seed}-r{r}" / "model"
        return points

    def choose_stops(self, seeds: list[int], variants: tuple[str, ...] = ("ref", "loop")) -> dict[str, dict]:
        """Early stopping: every stopping point (of the GRPO ``variants``) tracks the validation set, and each
        run stops at its best (``stops_by_validation``)."""
        points = {name: model for s in seeds for name, model in self.stopping_points(s).items()
                  if name.split("-")[1] in variants}
        parts = VALIDATIONS[self.validation]
        self.evaluate_sets(points, sets=parts)
        stops = stops_by_validation(points, self.validation_ao(list(points)))
        for s in parts:
            reuse_stop_results(self.work / f"results-{s}", stops)
        return stops

    def soups(self, runs: dict[str, Path], seeds: list[int]) -> dict[str, Path]:
        """Each of ``SOUPS``: the uniform weight average of its variants' runs (``runs``: where they stop)."""
        from r1track.training.soup import SOURCES, soup

        out = {}
        for name, variants in SOUPS.items():
            out[name] = model = self.work / "runs" / name / "model"
            ingredients = [runs[f"grpo-{v}-seed{s}"] for v in variants for s in seeds]
            made = json.loads((model / SOURCES).read_text())["models"] if (model / SOURCES).is_file() else None
            if made != [str(m.resolve()) for m in ingredients]:  # absent, or made from other runs: (re)made
                start = time.perf_counter()
                soup(ingredients, model, overwrite=True)
                self.record(name, time.perf_counter() - start)
        return out

    def validation_ao(self, names: list[str]) -> dict[str, float]:
        """Each tracked model's AO on the validation set, its parts pooled by frame."""
        from r1track.metrics import score_got10k

        parts = {s: self.sequences(s) for s in VALIDATIONS[self.validation]}
        return {name: pool_by_frame([score_got10k(seqs, self.work / f"results-{s}" / name)["overall"]
                                     for s, seqs in parts.items()])["ao"] for name in names}

    def loop_pool_parts(self, seed: int, r: int) -> list[Path]:
        """The rollout pair sets that make round ``r``'s pool: that round's, or with ``loop_pool="all"`` every
        round's so far."""
        rounds = range(1, r + 1) if self.loop_pool == "all" else (r,)
        return [self.work / "pairs" / f"loop-seed{seed}-r{k}-{src}" for k in rounds for src in self.mix.loop]

    def compared(self, set_name: str) -> int | None:
        """How many sequences of an evaluation set models are compared on (None: all)."""
        if self.cfg is QUICK:
            return 2
        return SYNTH_COMPARED if set_name == "synth" else None

    def sequences(self, set_name: str) -> list:
        """The sequences of an evaluation set that models are compared on."""
        from r1track import datasets

        data = self.evaluation_sets()[set_name]
        opts = dict(zip(data[::2], data[1::2]))
        seqs = datasets.load(opts["--dataset"], opts["--root"], opts.get("--split"))
        if "--sequences" in opts:
            seqs = [s for s in seqs if s.name in opts["--sequences"].split(",")]
        return seqs[:self.compared(set_name)]

    def quick_rollouts(self) -> list:
        return ["--rollout-frames", "3"] if self.cfg is QUICK else []

    def evaluate_sets(self, models: dict[str, Path | str | None], sets: tuple[str, ...] | None = None) -> None:
        """``r1track eval`` of every model on every evaluation set, or on ``sets`` (None: the static box; a str:
        a baseline)."""
        commands = {}
        for set_name, data in self.evaluation_sets().items():
            if sets is not None and set_name not in sets:
                continue
            for name, model in models.items():
                if isinstance(model, str) and set_name == "synth":
                    continue  # OpenCV baselines: real video only
                tracker = (["--tracker", "static"] if model is None else ["--tracker", model] if isinstance(model, str)
                           else ["--tracker", "mllm", "--model", model, "--max-new-tokens", "24", "--batch-size", "40",
                                 "--device", "cpu"])
                limit = ["--limit", str(self.compared(set_name))] if self.compared(set_name) else []
                commands[f"eval-{set_name}-{name}"] = ["eval", *data, *tracker, "--name", name, *limit, "--results",
                                                       self.work / f"results-{set_name}", "--no-progress"]
        names = list(commands)
        for i in range(0, len(names), 2):
            self.parallel({n: commands[n] for n in names[i:i + 2]})

    def score_installed(self, name: str, model: Path = ASSET) -> dict:
        """The packaged model (or ``model``) on the whole synthetic held-out split (120 sequences)."""
        from r1track import datasets
        from r1track.metrics import score_got10k

        results = self.work / "results-synth-all"
        self.r1track(f"eval-synth-all-{name}", "eval", *self.evaluation_sets()["synth"], "--tracker", "mllm", "--model", model,
                     "--max-new-tokens", "24", "--batch-size", "40", "--device", "cpu", "--name", name, "--results",
                     results, "--no-progress")
        overall = score_got10k(datasets.load("got10k", self.work / "synth", "val"), results / name)["overall"]
        return {k: overall[k] for k in ("ao", "sr50", "sr75", "num_frames", "num_sequences")}

    def otb(self, model: Path) -> dict:
        """``r1track track`` on each real OTB sequence from its first box; AUC / precision per sequence."""
        import numpy as np

        from r1track import datasets
        from r1track.metrics import ope_curves, ope_summary

        if not OTB.is_dir():
            return {}
        out_dir = self.work / "otb"
        out_dir.mkdir(exist_ok=True)
        scores, curves = {}, []
        for seq in datasets.load("otb", OTB):
            boxes_file = out_dir / f"{seq.name}.txt"
            x, y, w, h = seq.gt[0]
            frames = Path(seq.meta.get("frames_dir") or (OTB / seq.name / "img"))
            self.r1track(f"track-otb-{seq.name}", "track", frames, "--box", f"{x},{y},{w},{h}", "--out", boxes_file,
                         "--model", model, "--device", "cpu", "--max-new-tokens", "24", "--overwrite")
            boxes = np.loadtxt(boxes_file, delimiter=",", ndmin=2)
            n = min(len(boxes), len(seq.gt))
            c = ope_curves(boxes[:n], seq.gt[:n], None if seq.absent is None else seq.absent[:n])
            curves.append(c)
            scores[seq.name] = {"frames": n, "auc": float(np.mean(c["success_curve"])),
                                "precision": float(c["precision_curve"][20])}
        if curves:
            overall = ope_summary(curves)
            scores["overall"] = {"auc": overall["auc"], "precision": overall["precision"]}
        return scores


def training_sequences() -> dict[str, list]:
    """The real stages' training sequences as the pipeline pairs them: the single-object ones without the
    held-out part (``build-pairs --drop-videos HELD_OUT``), and the identities of the training MOT video."""
    from r1track import datasets
    from r1track.training.pairs import PairOptions, dropped

    drop = PairOptions(drop_videos=HELD_OUT)
    return {"real train": [s for s in datasets.load("got10k", REAL / "train") if not dropped(s, drop)],
            "mot train": datasets.load("mot", REAL / "mot" / MOT_TRAIN)}


def stops_by_validation(points: dict[str, Path], val: dict[str, float]) -> dict[str, dict]:
    """Each run's (``grpo-ref-seed0``, ...) stopping point ``<run>-step<n>`` with the highest validation AO
    (a tie: the earlier step), its model and every point's validation AO."""
    runs: dict[str, dict[int, str]] = {}
    for name in points:
        run, step = name.rsplit("-step", 1)
        runs.setdefault(run, {})[int(step)] = name
    stops = {}
    for run, by_step in runs.items():
        chosen = max(sorted(by_step), key=lambda k: val[by_step[k]])
        stops[run] = {"step": chosen, "model": str(points[by_step[chosen]]),
                      "val_ao": {k: val[name] for k, name in sorted(by_step.items())}}
    return stops


def reuse_stop_results(results: Path, stops: dict[str, dict]) -> None:
    """Each run's results start as a copy of its stopping point's (the same model: ``r1track eval`` checks
    the manifest and resumes them instead of tracking the set again); a run's existing folder is kept."""
    for run, stop in stops.items():
        target = results / run
        if not target.exists():
            staging = results / f".{run}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(results / f"{run}-step{stop['step']}", staging)
            staging.rename(target)


def staged_copy(model: Path, dest: Path) -> Path:
    """A checkpoint's files copied into a fresh staging folder beside ``dest``, to be renamed into place."""
    staging = dest.with_name(f".{dest.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        if (model / name).is_file():
            shutil.copy2(model / name, staging / name)
    return staging


def at_crop(options: list, crop: int) -> list:
    """``build-pairs`` options with ``--sizes`` set to ``crop`` px and ``--max-pixels`` to its area."""
    out = list(options)
    for flag, value in (("--sizes", crop), ("--max-pixels", crop * crop)):
        if flag in out:
            out[out.index(flag) + 1] = str(value)
    return out


def at_factor(options: list, factor: float) -> list:
    """``build-pairs`` options with ``--factor-range`` scaled by ``factor`` over the synthetic model's 4."""
    out = list(options)
    if factor != NANO_FACTOR and "--factor-range" in out:
        i = out.index("--factor-range") + 1
        out[i:i + 2] = [f"{float(v) * factor / NANO_FACTOR:g}" for v in out[i:i + 2]]
    return out


def retarget(model: Path, out: Path, crop: int, factor: float = NANO_FACTOR, prompt: str | None = None) -> Path:
    """A copy of checkpoint ``model`` that tracks with ``crop``-px crops, template and search factor
    ``factor`` and prompt variant ``prompt`` (default: its own): its tracker settings (``r1track.json``) and
    its processor's resize bound (whole frames for grounding get as many pixels). The weights are
    unchanged: a Qwen-VL vision tower takes any multiple of 28 px."""
    from r1track.nano import NanoSettings, read_settings, write_settings
    from r1track.training.config import ModelArgs
    from r1track.training.stage import load_processor

    staging = staged_copy(model, out)
    load_processor(ModelArgs(name_or_path=str(model), max_pixels=crop * crop)).save_pretrained(staging)
    settings = read_settings(model)
    write_settings(staging, NanoSettings(**{**settings, "crop_size": crop, "template_factor": factor,
                                             "search_factor": factor, "prompt": prompt or settings.get("prompt", "current")}))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def train_data(parts: list[Path]) -> str:
    """The recipe override that trains on several pair sets as one (JSON is YAML: any path survives)."""
    return "data.train=" + json.dumps([str(p) for p in parts], separators=(",", ":"))


# ---------------------------------------------------------------------- report


def score(work: Path, names: list[str]) -> dict:
    from r1track import datasets
    from r1track.metrics import score_got10k

    sequences = datasets.load("got10k", work / "synth", "val")
    return {name: score_got10k(sequences, work / "results" / name)["overall"] for name in names}


def summary(scores: dict, seeds: list[int]) -> dict:
    """SFT+GRPO against SFT: mean and spread (max - min) of the GRPO seeds, all from the same SFT model."""
    import numpy as np

    sft = scores["sft"]["ao"]
    if not seeds:  # --synthetic-seeds with none: SFT only
        return {"sft_ao": sft, "target_sft_ao_0.5": bool(sft >= 0.5)}
    grpo = np.array([scores[f"sft+grpo-seed{s}"]["ao"] for s in seeds])
    out = {"sft_ao": sft, "grpo_ao": grpo.tolist(), "grpo_ao_mean": float(grpo.mean()),
           "grpo_ao_std": float(grpo.std(ddof=1)) if len(grpo) > 1 else 0.0,
           "grpo_ao_spread": float(grpo.max() - grpo.min()), "gain": float(grpo.mean() - sft)}
    out["target_sft_ao_0.5"] = bool(sft >= 0.5)
    out["target_grpo_gain_above_spread"] = bool(out["gain"] > out["grpo_ao_spread"])
    return out


def score_sets(p: Pipeline, names: list[str]) -> dict:
    """{set: {model: overall scores}} on the evaluation sets, plus ``real+mot``: both real sets pooled by frame
    (GOT-10k's AO is a mean over frames)."""
    from r1track.metrics import score_got10k

    out = {}
    for set_name in p.evaluation_sets():
        seqs = p.sequences(set_name)
        results = p.work / f"results-{set_name}"
        out[set_name] = {n: score_got10k(seqs, results / n)["overall"] for n in names if (results / n).is_dir()}
        out[set_name] = {n: {k: v[k] for k in ("ao", "sr50", "sr75", "num_frames", "num_sequences")}
                         for n, v in out[set_name].items()}
        p.diagnostics[set_name] = {n: drift_diagnostics(seqs, results / n) for n in out[set_name]}
    out["real+mot"] = {n: pool_by_frame([out[k][n] for k in ("real", "mot") if n in out[k]]) for n in out["real"]}
    parts = VALIDATIONS[p.validation]
    if len(parts) > 1:
        out[p.validation] = {n: pool_by_frame([out[k][n] for k in parts]) for n in out[parts[0]]
                             if all(n in out[k] for k in parts)}
    return out


def pool_by_frame(parts: list[dict]) -> dict:
    """Overall scores of several sets as one (GOT-10k's AO and SR are means over frames)."""
    frames = sum(x["num_frames"] for x in parts)
    pooled = {m: sum(x[m] * x["num_frames"] for x in parts) / frames for m in ("ao", "sr50", "sr75")}
    return {**pooled, "num_frames": frames, "num_sequences": sum(x["num_sequences"] for x in parts)}


def drift_diagnostics(sequences, tracker_dir: Path, others: list | None = None) -> dict:
    """Where AO is lost: share of scored frames with IoU 0 (lost), recovery (share of lost frames followed
    within 10 frames by one with IoU > 0.5), median predicted / true box area, and for the identities of a
    multi-object video (``mot``) the share of scored frames whose box is on another annotated object (IoU with
    it above 0.3 and above the IoU with the target: a switch to a distractor; the objects: ``others``' boxes,
    by default ``sequences``')."""
    import numpy as np

    from r1track.boxes import iou
    from r1track.training.pairs import present_frames

    others = other_objects(sequences if others is None else others)
    lost = recovered = scored = switched = 0
    ratios = []
    for seq in sequences:
        boxes = np.loadtxt(tracker_dir / seq.name / f"{seq.name}_001.txt", delimiter=",", ndmin=2)
        gt = seq.gt[: len(boxes)]
        ok = present_frames(seq)[: len(gt)] & (np.arange(len(gt)) > 0)
        overlap = np.where(ok, iou(boxes, np.where(ok[:, None], gt, 1.0)), np.nan)
        scored += int(ok.sum())
        for k in np.flatnonzero(ok & (overlap == 0)):
            lost += 1
            recovered += bool(np.nanmax(np.append(overlap[k + 1:k + 11], 0)) > 0.5)
        for k in np.flatnonzero(ok) if others else ():
            near = others.get((seq.meta["video"], seq.meta["first_frame"] + int(k)), {})
            best = max((float(iou(boxes[k], b)) for i, b in near.items() if i != seq.meta["identity"]), default=0.0)
            switched += bool(best > max(0.3, overlap[k]))
        ratios.extend((boxes[ok, 2] * boxes[ok, 3]) / (gt[ok, 2] * gt[ok, 3]))
    return {"lost_share": lost / max(scored, 1), "recovered_share": recovered / max(lost, 1),
            "median_area_ratio": float(np.median(ratios)) if ratios else float("nan"),
            **({"switched_share": switched / max(scored, 1)} if others else {})}


def other_objects(sequences) -> dict[tuple[str, int], dict[int, object]]:
    """{(video, frame): {identity: box}} of every annotated, present box of the ``mot`` identities among
    ``sequences`` (empty for single-object sequences)."""
    import numpy as np

    from r1track.training.pairs import present_frames

    out: dict = {}
    for seq in sequences:
        if "identity" not in seq.meta:
            continue
        for k in np.flatnonzero(present_frames(seq)):
            out.setdefault((seq.meta["video"], seq.meta["first_frame"] + int(k)), {})[seq.meta["identity"]] = seq.gt[k]
    return out


def real_summary(scores: dict, seeds: list[int], shipped: str) -> dict:
    """Per set: SFT, reference GRPO and closed-loop GRPO (mean, spread and standard deviation over seeds), and
    the targets."""
    import numpy as np

    out = {}
    for set_name, by_model in scores.items():
        row = {"sft": by_model["sft-real"]["ao"]}
        for variant in ("grpo-ref", "grpo-loop"):
            aos = np.array([by_model[f"{variant}-seed{s}"]["ao"] for s in seeds])
            row[variant] = {"ao": aos.tolist(), "mean": float(aos.mean()), "spread": float(aos.max() - aos.min()),
                            "std": float(aos.std(ddof=1)) if len(aos) > 1 else 0.0,
                            "gain_over_sft": float(aos.mean() - row["sft"])}
        row["loop_gain_above_spread"] = bool(row["grpo-loop"]["gain_over_sft"] > max(
            row["grpo-loop"]["spread"], row["grpo-ref"]["spread"]))
        out[set_name] = row
    real = scores["real+mot"]
    ao = real[shipped]["ao"]
    out["targets"] = {"shipped": shipped, "real_ao": ao, "static_ao": real["static"]["ao"], "kcf_ao": real["kcf"]["ao"],
                      "csrt_ao": real["csrt"]["ao"], "ao_at_least_2x_static": bool(ao >= 2 * real["static"]["ao"]),
                      "ao_at_least_kcf_plus_0.05": bool(ao >= real["kcf"]["ao"] + 0.05),
                      "beats_csrt": bool(ao > real["csrt"]["ao"])}
    return out


def real_table(scores: dict, diagnostics: dict) -> str:
    columns = [f"{k} AO | {k} SR0.5" for k in scores] + ["real lost / recovered / area", "mot lost / on another / area"]
    lines = ["| model | " + " | ".join(columns) + " |", "| --- " * (2 * len(scores) + 3) + "|"]
    for name in scores["real"]:
        cells = [f"{scores[k][name]['ao']:.3f} | {scores[k][name]['sr50']:.3f}" if name in scores[k] else "- | -"
                 for k in scores]
        for set_name, middle in (("real", "recovered_share"), ("mot", "switched_share")):
            d = diagnostics.get(set_name, {}).get(name)
            cells.append(f"{d['lost_share']:.2f} / {d[middle]:.2f} / {d['median_area_ratio']:.2f}" if d else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(scores: dict) -> str:
    lines = ["| model | AO | SR0.5 | SR0.75 |", "| --- | --- | --- | --- |"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s['ao']:.3f} | {s['sr50']:.3f} | {s['sr75']:.3f} |")
    return "\n".join(lines)


def sft_real_runs(work: Path, epochs: int) -> list[Path]:
    """The real SFT's run folders in training order: ``runs/sft-real-epochK`` for the earlier epochs, the last
    one ``runs/sft-real`` (what the GRPO stages start from)."""
    return [work / "runs" / ("sft-real" if e == epochs else f"sft-real-epoch{e}") for e in range(1, epochs + 1)]


def _history(run: Path) -> list[dict]:
    path = run / "log_history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _series(history: list[dict], key: str):
    points = [(h["step"], h[key]) for h in history if key in h and h.get("step") is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _in_sequence(runs: list[Path], key: str) -> list[tuple[list, list]]:
    """Each run's ``key`` series on one step axis, the runs one after the other (SFT rounds or epochs,
    closed-loop rounds); a key starting with ``/`` is matched as a suffix (``rewards/<name>/mean_iou``)."""
    parts, offset = [], 0
    for run in runs:
        history = _history(run)
        k = next((k for h in history for k in h if k.endswith(key)), key) if key.startswith("/") else key
        steps, values = _series(history, k)
        parts.append(([offset + v for v in steps], values))
        offset += max((h["step"] for h in history if h.get("step") is not None), default=0)
    return parts


def curves(work: Path, seeds: list[int], out: Path, real: bool = False, stops: dict | None = None, *,
           sft_epochs: int, loop_rounds: int) -> list[Path]:
    """Learning curves: SFT loss and validation AO; GRPO reward, IoU and KL per seed (real stages: the
    real SFT's ``sft_epochs`` epochs, the reference and closed-loop runs, closed-loop rounds one after the
    other, a dot where ``stops`` stopped each run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if real:
        return [real_curves(work, seeds, out, plt, stops or {}, sft_epochs, loop_rounds)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ("loss", "mean_token_accuracy", "val/ao"),
                              ("SFT loss (answer tokens)", "SFT token accuracy", "SFT validation AO (6 seqs)")):
        names = [name for name, *_ in SFT_ROUNDS]
        for name, (steps, values) in zip(names, _in_sequence([work / "runs" / n for n in names], key), strict=True):
            ax.plot(steps, values, marker="." if key == "val/ao" else None, label=name)
        ax.legend()
        ax.set_title(title)
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(out / "sft_curves.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    if not seeds:
        return written

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    keys = (("reward", "GRPO mean reward"), ("/mean_iou", "GRPO mean IoU of samples"),
            ("kl", "GRPO KL to the SFT model"))
    for ax, (key, title) in zip(axes, keys):
        for s in seeds:
            history = _history(work / "runs" / f"grpo-seed{s}")
            if key.startswith("/"):  # logged under the reward's name: rewards/<name>/mean_iou
                key = next((k for h in history for k in h if k.endswith(key)), key)
            ax.plot(*_series(history, key), label=f"seed {s}")
        ax.set_title(title)
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    written.append(out / "grpo_curves.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def real_curves(work: Path, seeds: list[int], out: Path, plt, stops: dict, sft_epochs: int,
                loop_rounds: int) -> Path:
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for epoch, (steps, loss) in enumerate(_in_sequence(sft_real_runs(work, sft_epochs), "loss"), start=1):
        axes[0].plot(steps, loss, label=f"epoch {epoch}" if sft_epochs > 1 else None)
    if sft_epochs > 1:
        axes[0].legend(fontsize=7)
    axes[0].set_title("SFT on real + synthetic pairs: loss")
    for ax, key, title in ((axes[1], "reward", "GRPO mean reward"), (axes[2], "/mean_iou", "GRPO mean IoU of samples")):
        for variant, colour in (("ref", "C0"), ("loop", "C1")):
            curves = []  # one per seed, thin; their mean thick (closed-loop rounds one after the other)
            for s in seeds:
                runs = [work / "runs" / f"grpo-ref-seed{s}"] if variant == "ref" else \
                    [work / "runs" / f"grpo-loop-seed{s}-r{r}" for r in range(1, loop_rounds + 1)]
                parts = _in_sequence(runs, key)
                xs, ys = [v for x, _ in parts for v in x], [v for _, y in parts for v in y]
                ax.plot(xs, ys, color=colour, alpha=0.3, linewidth=0.8)
                if (stop := stops.get(f"grpo-{variant}-seed{s}")) and xs:
                    k = int(np.argmin(np.abs(np.array(xs) - int(stop["step"]))))  # the logged step nearest it
                    ax.plot(xs[k], ys[k], "o", color=colour, markersize=4,
                            label=f"{variant}: stopped by validation" if s == seeds[0] else None)
                curves.append((xs, ys))
            if curves and all(xs == curves[0][0] for xs, _ in curves):
                ax.plot(curves[0][0], np.mean([ys for _, ys in curves], axis=0), color=colour, linewidth=2,
                        label=f"{variant}: mean of {len(curves)} seeds")
        ax.set_title(title)
    for ax in axes:
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    path = out / "real_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def recorded_settings(work: Path) -> dict:
    """The options recorded in ``WORK/pipeline.json``; folders recorded before --stop / --crop-size /
    --previous-rate / --tracker-factor / --sft-epochs / --grpo-steps were stopped at the last step, with 112-px
    crops, jittered crops only, one SFT epoch and 60 GRPO steps."""
    from r1track.errors import R1TrackError

    if not (work / "pipeline.json").is_file():
        raise R1TrackError(f"{work}: not a reproduce_nano.py work folder (no pipeline.json)")
    made = json.loads((work / "pipeline.json").read_text())
    return {"stop": "last", "crop_size": NANO_CROP_SIZE, "previous_rate": 0.0, "tracker_factor": None, "sft_epochs": 1,
            "grpo_steps": GRPO_STEPS, "validation": "val", "search_factor": NANO_FACTOR, "prompt": "current", "bf16": False,
            **made}


def settings_conflict(work: Path, settings: dict) -> str | None:
    """The options that decide what a work folder's steps produce, recorded in ``WORK/pipeline.json`` on its
    first run: a resume with other ones would mix two pipelines' outputs (steps are skipped by file)."""
    record = work / "pipeline.json"
    if not record.is_file():
        work.mkdir(parents=True, exist_ok=True)
        record.with_suffix(".partial").write_text(json.dumps(settings, indent=1) + "\n")
        os.replace(record.with_suffix(".partial"), record)
        return None
    made = recorded_settings(work)
    changed = [f"--{k.replace('_', '-')} {made.get(k)} (now {v})" for k, v in settings.items() if made.get(k) != v]
    if changed:
        return (f"{record}: this work folder was made with {', '.join(changed)}; resume it with the same options, "
                "or use another --work or --fresh")
    return None


def install(model: Path) -> None:
    """Copy a trained checkpoint's files into the package (staging folder renamed into place)."""
    staging = staged_copy(model, ASSET)
    size = (staging / "model.safetensors").stat().st_size
    if size > 20 * 2**20:
        shutil.rmtree(staging)
        raise SystemExit(f"{model}: {size / 2**20:.1f} MiB of weights, above the 20 MiB budget of the package")
    if ASSET.exists():
        shutil.rmtree(ASSET)
    staging.rename(ASSET)
    print(f"installed {model} -> {ASSET} ({size / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "nano", help="work folder (data, runs, report)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="GRPO seeds")
    parser.add_argument("--synthetic-seeds", type=int, nargs="*", default=None,
                        help="GRPO seeds of the synthetic stage (default: --seeds; none: the synthetic stage ends "
                             "with SFT, as the real stages start from it)")
    parser.add_argument("--install", metavar="MODEL", default=None,
                        help="copy this model (sft-real, grpo-loop-seed0, ...; best: the highest validation AO) into "
                             "the package as the default")
    parser.add_argument("--synthetic-model", type=Path, default=None,
                        help="start the real stages from this checkpoint instead of training the synthetic stages "
                             "(e.g. the synthetic model as packaged before the real stages)")
    parser.add_argument("--synthetic-only", action="store_true", help="stop after the synthetic stages")
    parser.add_argument("--mix", choices=MIXES, default="real+paste",
                        help="pair mix of the real stages (default: the packaged model's; see MIXES)")
    parser.add_argument("--loop-kl", choices=("round", "sft"), default="round",
                        help="closed-loop GRPO's KL reference: each round's starting policy (the packaged model's) "
                             "or the SFT model in every round")
    parser.add_argument("--loop-pool", choices=("latest", "all"), default="latest",
                        help="closed-loop GRPO's prompts: the latest round's rollouts (the packaged model's) or "
                             "every round's so far (DAgger)")
    parser.add_argument("--stop", choices=("val", "last"), default="val",
                        help="where each GRPO run stops: at the step (20, 40, 60, ...) with the highest validation AO "
                             "(early stopping) or after its last step")
    parser.add_argument("--crop-size", type=int, default=NANO_CROP_SIZE,
                        help="crop size (px, a multiple of 28) the real stages train and track with (default: the "
                             "synthetic model's)")
    parser.add_argument("--search-factor", type=float, default=NANO_FACTOR,
                        help="template and search crop side over sqrt(w h) of the real stages' tracker, with every real "
                             "pair set's context factors scaled to it (default: the synthetic model's 4)")
    parser.add_argument("--previous-rate", type=float, default=0.0,
                        help="share of the real stages' tracking pairs whose search crop is centred on the previous "
                             "frame's box (build-pairs --previous-rate; default 0: jittered crops only)")
    parser.add_argument("--tracker-factor", type=float, default=None,
                        help="cut the real stages' templates (and --previous-rate crops) centred at this factor, as "
                             "the tracker does (build-pairs --tracker-factor; default: drawn like search crops)")
    parser.add_argument("--sft-epochs", type=int, default=2,
                        help="runs of the real SFT recipe, each from the previous one's model on the pairs in another "
                             "order (default: the packaged model's 2)")
    parser.add_argument("--grpo-steps", type=int, default=GRPO_STEPS,
                        help=f"GRPO steps of each real-stage run, a multiple of {FULL['loop_steps']} (the closed loop's round; "
                             f"default: the packaged model's {GRPO_STEPS})")
    parser.add_argument("--validation", choices=VALIDATIONS, default="val",
                        help="what early stopping and --install best rank models by: the pasted validation set, or it "
                             "pooled by frame with the real training sequences tracked from their first box")
    parser.add_argument("--prompt", choices=PROMPT_VARIANTS, default="current",
                        help="prompt variant of every pair set and tracker; with --synthetic-model the real stages "
                             "start from it set to this prompt (default: the packaged model's)")
    parser.add_argument("--bf16", action="store_true",
                        help="train in mixed precision on the CPU (bfloat16 matrix products under autocast)")
    parser.add_argument("--soups", action="store_true",
                        help="also average each variant's stopped GRPO runs into model soups (soup-loop: the closed "
                             "loop's seeds, soup-all: both variants'), evaluated and installable like the runs")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the pipeline")
    parser.add_argument("--fresh", action="store_true", help="delete the work folder first")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per command")
    parser.add_argument("--skip-otb", action="store_true", help="do not track the real OTB sequences")
    args = parser.parse_args(argv)

    work = args.work.resolve()
    rounds = [name for name, *_ in SFT_ROUNDS]
    synthetic_seeds = args.seeds if args.synthetic_seeds is None else args.synthetic_seeds
    names = ["static", "untrained", *rounds[:-1], "sft", *(f"sft+grpo-seed{s}" for s in synthetic_seeds)]
    real_names = ["synthetic", "sft-real", *(f"grpo-{v}-seed{s}" for v in ("ref", "loop") for s in args.seeds),
                  *(SOUPS if args.soups else ())]
    choices = names[1:] if args.synthetic_only else [*real_names, "best"]
    if args.install is not None and args.install not in choices:  # said before hours of training, not after
        parser.error(f"--install: choose one of {', '.join(choices)}")
    if args.install is not None and args.quick:
        parser.error("--install with --quick would package a smoke test's model over the default")
    if args.soups and len(args.seeds) < 2:
        parser.error("--soups: a soup averages two or more runs; give two or more --seeds")
    if args.crop_size < 28 or args.crop_size % 28:
        parser.error(f"--crop-size {args.crop_size}: a multiple of 28 px (one visual token) is needed")
    if not args.search_factor > 1:
        parser.error(f"--search-factor {args.search_factor}: a factor above 1 is needed (the crop holds the target)")
    if not 0 <= args.previous_rate <= 1:
        parser.error(f"--previous-rate {args.previous_rate}: a share in [0, 1] is needed")
    if args.tracker_factor is not None and not args.tracker_factor > 0:
        parser.error(f"--tracker-factor {args.tracker_factor}: a positive factor is needed")
    if args.sft_epochs < 1:
        parser.error(f"--sft-epochs {args.sft_epochs}: one or more is needed")
    if args.grpo_steps < 1 or args.grpo_steps % FULL["loop_steps"]:
        parser.error(f"--grpo-steps {args.grpo_steps}: a positive multiple of {FULL['loop_steps']} is needed")
    if not args.synthetic_only and not REAL.is_dir():
        parser.error(f"the real stages need {REAL} (or pass --synthetic-only)")
    if args.fresh and work.exists():
        shutil.rmtree(work)
    settings = dict(quick=args.quick, mix=args.mix, loop_kl=args.loop_kl, loop_pool=args.loop_pool, stop=args.stop,
                    crop_size=args.crop_size, search_factor=args.search_factor, previous_rate=args.previous_rate,
                    tracker_factor=args.tracker_factor, sft_epochs=args.sft_epochs, grpo_steps=args.grpo_steps,
                    validation=args.validation, prompt=args.prompt, bf16=args.bf16,
                    synthetic_model=str(args.synthetic_model.resolve()) if args.synthetic_model else None)
    if conflict := settings_conflict(work, settings):  # one line, no usage: the options are valid
        print(f"{parser.prog}: error: {conflict}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    p = Pipeline.from_settings(work, settings, args.threads)
    p.data(synthetic_stages=args.synthetic_model is None, real_stages=not args.synthetic_only)
    report = work / "report"
    report.mkdir(exist_ok=True)
    result: dict = {}
    if args.synthetic_model is None:
        p.synthetic_pairs(grpo=bool(synthetic_seeds))
        untrained = p.untrained()
        sft_rounds = p.sft(untrained)
        synthetic = sft_rounds[rounds[-1]]
        grpo = p.grpo(synthetic, synthetic_seeds)
        models = dict(zip(names, [None, untrained, *sft_rounds.values(), *grpo.values()], strict=True))
        p.evaluate(models)
        scores = score(work, names)
        result["synthetic"] = {"scores": {k: {m: v[m] for m in ("ao", "sr50", "sr75", "num_frames", "num_sequences")}
                                          for k, v in scores.items()}, "summary": summary(scores, synthetic_seeds)}
        (report / "table.md").write_text(table(scores) + "\n")
        print(table(scores))
    else:
        synthetic = args.synthetic_model.resolve()
    installed = models[args.install] if args.synthetic_only and args.install else None
    if not args.synthetic_only:
        sft_real = p.sft_real(p.start_model(synthetic))
        ref = p.grpo_reference(sft_real, args.seeds)
        loop = p.grpo_closed_loop(sft_real, args.seeds)
        runs = [synthetic, sft_real, *ref.values(), *loop.values()]
        real_models = dict(zip(real_names[:len(runs)], runs, strict=True))
        stops = p.choose_stops(args.seeds) if args.stop == "val" else {}
        real_models.update({run: Path(stop["model"]) for run, stop in stops.items()})
        if args.soups:
            real_models.update(p.soups(real_models, args.seeds))
        if stops:
            print("stopped by validation AO at: " + ", ".join(f"{run} step {stop['step']}" for run, stop in stops.items()))
        p.evaluate_sets({"static": None, "kcf": "kcf", "csrt": "csrt", **real_models})
        scores = score_sets(p, ["static", "kcf", "csrt", *real_names])
        shipped = args.install or "sft-real"
        if shipped == "best":  # chosen by the validation set only
            shipped = args.install = max(real_names[1:], key=lambda n: scores[p.validation][n]["ao"])
            print(f"best by {p.validation} AO: {shipped}")
        result["real"] = {"scores": scores, "diagnostics": p.diagnostics, "stops": stops,
                          "summary": real_summary(scores, args.seeds, shipped)}
        text = real_table(scores, p.diagnostics)
        (report / "real_table.md").write_text(text + "\n")
        print(text)
        print(json.dumps(result["real"]["summary"], indent=1))
        installed = real_models[args.install] if args.install else None
    if installed is not None:
        install(installed)
        result["installed"] = {"model": args.install, "synthetic_heldout_all": p.score_installed(args.install)}
    if not args.skip_otb:
        result["otb"] = p.otb(ASSET if installed is not None else synthetic)
    result["timings_s"] = p.timings
    result["total_s"] = round(time.perf_counter() - start, 1)
    (report / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    pngs = curves(work, synthetic_seeds if args.synthetic_only else args.seeds, report, real=not args.synthetic_only,
                  stops=result.get("real", {}).get("stops"), sft_epochs=p.sft_epochs, loop_rounds=p.loop_rounds)
    if result.get("otb"):
        print("OTB:", json.dumps(result["otb"]))
    print(f"report: {report / 'results.json'}, {', '.join(str(x) for x in pngs)}; {result['total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
