#!/usr/bin/env python
"""Reproduce the nano R1-Track model end to end on the CPU (see benchmarks/README.md for the time).

    python scripts/reproduce_nano.py [--work build/nano] [--seeds 0 1 2] [--install MODEL] [--quick]

Steps (each is skipped when its output already exists, so an interrupted run resumes; ``--fresh``
starts over):

1. ``r1track synth``: a training split (400 sequences x 50 frames, seed 1) and a held-out split
   (120 x 60, seed 2; never used for training pairs; its first 6 sequences are the training runs'
   validation).
2. ``r1track build-pairs``: one SFT pair set per SFT round (tracking + 15% grounding, seeds 0, 5, 6, 7)
   and separate GRPO pairs (same crop distribution, tracking only, seed 1).
3. ``r1track.nano.make_nano_model``: the untrained nano checkpoint (random weights, seed 0).
4. ``r1track train sft``: round 1 from scratch (``recipes/nano-sft.yaml``, 3 epochs), rounds 2 to 4
   continue from the previous round on fresh pairs (``recipes/nano-sft-more.yaml``, 1 epoch each).
5. ``r1track train grpo --config recipes/nano-grpo.yaml`` from the final SFT model, once per seed (the
   seeds run side by side, one thread each).
6. ``r1track eval`` of the untrained, SFT (each round) and SFT+GRPO models (and the static-box baseline)
   on the held-out split; scores, a table (AO, SR0.5, SR0.75) and learning curves (PNG) in ``WORK/report``.
7. ``r1track track`` of the installed (else the final SFT) model on the real OTB sequences, when present.

``--install MODEL`` copies one of the evaluated models (``sft``, ``sft+grpo-seed0``, ...) to
``src/r1track/assets/nano`` (the packaged default model). ``--quick`` shrinks every step to a smoke test
of the pipeline (minutes; numbers meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ASSET = ROOT / "src" / "r1track" / "assets" / "nano"
OTB = ROOT.parent / "shared" / "data" / "otb"
CHECKPOINT_FILES = ("config.json", "generation_config.json", "model.safetensors", "processor_config.json",
                    "chat_template.jinja", "tokenizer.json", "tokenizer_config.json", "r1track.json")

FULL = dict(train_sequences=400, train_frames=50, val_sequences=120, val_frames=60, sft_pairs=24000,
            grpo_pairs=4000, sft_overrides=[], grpo_overrides=[])
QUICK = dict(train_sequences=12, train_frames=20, val_sequences=3, val_frames=12, sft_pairs=64, grpo_pairs=16,
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


class Pipeline:
    def __init__(self, work: Path, quick: bool, threads: int):
        self.work = work
        self.cfg = QUICK if quick else FULL
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.timings_file = work / "timings.json"
        self.timings = json.loads(self.timings_file.read_text()) if self.timings_file.is_file() else {}
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                        TOKENIZERS_PARALLELISM="false",
                        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))

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
        self.timings[name] = round(seconds, 1)
        self.timings_file.write_text(json.dumps(self.timings, indent=1) + "\n")

    # ------------------------------------------------------------------ steps
    def data(self) -> None:
        c, synth = self.cfg, self.work / "synth"
        if not (synth / "train" / "list.txt").is_file():
            self.r1track("synth-train", "synth", "--out", synth, "--split", "train", "--sequences",
                         c["train_sequences"], "--frames", c["train_frames"], "--seed", 1, "--no-progress",
                         "--overwrite")
        if not (synth / "val" / "list.txt").is_file():
            self.r1track("synth-val", "synth", "--out", synth, "--split", "val", "--sequences",
                         c["val_sequences"], "--frames", c["val_frames"], "--seed", 2, "--no-progress",
                         "--overwrite")
        pairs = self.work / "pairs"
        for name, _, seed, _ in SFT_ROUNDS:
            if not (pairs / name / "pairs.json").is_file():
                self.r1track(f"pairs-{name}", "build-pairs", "--dataset", "got10k", "--root", synth, "--split",
                             "train", "--out", pairs / name, "--samples", c["sft_pairs"], "--seed", seed,
                             *SFT_PAIR_OPTIONS, "--overwrite")
        if not (pairs / "grpo" / "pairs.json").is_file():
            self.r1track("pairs-grpo", "build-pairs", "--dataset", "got10k", "--root", synth, "--split", "train",
                         "--out", pairs / "grpo", "--samples", c["grpo_pairs"], "--seed", 1, *GRPO_PAIR_OPTIONS,
                         "--overwrite")

    def untrained(self) -> Path:
        from r1track.nano import make_nano_model

        out = self.work / "untrained"
        if not (out / "config.json").is_file():
            start = time.perf_counter()
            make_nano_model(out, seed=0, overwrite=True)
            self.record("make-nano-model", time.perf_counter() - start)
        return out

    def _common(self) -> list[str]:
        synth = self.work / "synth"
        return [f"data.validation.root={synth}"]

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


# ---------------------------------------------------------------------- report


def score(work: Path, names: list[str]) -> dict:
    from r1track import datasets
    from r1track.metrics import score_got10k

    sequences = datasets.load("got10k", work / "synth", "val")
    return {name: score_got10k(sequences, work / "results" / name)["overall"] for name in names}


def summary(scores: dict, seeds: list[int]) -> dict:
    """SFT+GRPO against SFT: mean and spread (max - min) of the GRPO seeds, all from the same SFT model."""
    import numpy as np

    grpo = np.array([scores[f"sft+grpo-seed{s}"]["ao"] for s in seeds])
    sft = scores["sft"]["ao"]
    out = {"sft_ao": sft, "grpo_ao": grpo.tolist(), "grpo_ao_mean": float(grpo.mean()),
           "grpo_ao_std": float(grpo.std(ddof=1)) if len(grpo) > 1 else 0.0,
           "grpo_ao_spread": float(grpo.max() - grpo.min()), "gain": float(grpo.mean() - sft)}
    out["target_sft_ao_0.5"] = bool(sft >= 0.5)
    out["target_grpo_gain_above_spread"] = bool(out["gain"] > out["grpo_ao_spread"])
    return out


def table(scores: dict) -> str:
    lines = ["| model | AO | SR0.5 | SR0.75 |", "| --- | --- | --- | --- |"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s['ao']:.3f} | {s['sr50']:.3f} | {s['sr75']:.3f} |")
    return "\n".join(lines)


def _history(run: Path) -> list[dict]:
    path = run / "log_history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _series(history: list[dict], key: str):
    points = [(h["step"], h[key]) for h in history if key in h and h.get("step") is not None]
    return [p[0] for p in points], [p[1] for p in points]


def curves(work: Path, seeds: list[int], out: Path) -> list[Path]:
    """Learning curves: SFT loss and validation AO; GRPO reward, IoU and validation AO per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ("loss", "mean_token_accuracy", "val/ao"),
                              ("SFT loss (answer tokens)", "SFT token accuracy", "SFT validation AO (6 seqs)")):
        offset = 0  # the rounds one after the other on one step axis
        for name, *_ in SFT_ROUNDS:
            history = _history(work / "runs" / name)
            steps, values = _series(history, key)
            ax.plot([offset + s for s in steps], values, marker="." if key == "val/ao" else None, label=name)
            offset += max((h["step"] for h in history if h.get("step") is not None), default=0)
        ax.legend()
        ax.set_title(title)
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(out / "sft_curves.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

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


def install(model: Path) -> None:
    """Copy a trained checkpoint's files into the package (staging folder renamed into place)."""
    staging = ASSET.with_name(".nano-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        if (model / name).is_file():
            shutil.copy2(model / name, staging / name)
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
    parser.add_argument("--install", metavar="MODEL", default=None,
                        help="copy this model (sft, sft+grpo-seed0, ...) into the package as the default")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the pipeline")
    parser.add_argument("--fresh", action="store_true", help="delete the work folder first")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per command")
    parser.add_argument("--skip-otb", action="store_true", help="do not track the real OTB sequences")
    args = parser.parse_args(argv)

    work = args.work.resolve()
    rounds = [name for name, *_ in SFT_ROUNDS]
    names = ["static", "untrained", *rounds[:-1], "sft", *(f"sft+grpo-seed{s}" for s in args.seeds)]
    if args.install is not None and args.install not in names[1:]:  # said before hours of training, not after
        parser.error(f"--install: choose one of {', '.join(names[1:])}")
    if args.fresh and work.exists():
        shutil.rmtree(work)
    start = time.perf_counter()
    p = Pipeline(work, args.quick, args.threads)
    p.data()
    untrained = p.untrained()
    sft_rounds = p.sft(untrained)
    sft = sft_rounds[rounds[-1]]
    grpo = p.grpo(sft, args.seeds)

    models = dict(zip(names, [None, untrained, *sft_rounds.values(), *grpo.values()], strict=True))
    p.evaluate(models)
    scores = score(work, names)
    report = work / "report"
    report.mkdir(exist_ok=True)
    result = {"scores": {k: {m: v[m] for m in ("ao", "sr50", "sr75", "num_frames", "num_sequences")}
                         for k, v in scores.items()},
              "summary": summary(scores, args.seeds)}
    if args.install:
        install(models[args.install])
    if not args.skip_otb:
        result["otb"] = p.otb(ASSET if args.install else sft)
    result["timings_s"] = p.timings
    result["total_s"] = round(time.perf_counter() - start, 1)
    (report / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    text = table(scores)
    (report / "table.md").write_text(text + "\n")
    pngs = curves(work, args.seeds, report)
    print(text)
    print(json.dumps(result["summary"], indent=1))
    if result.get("otb"):
        print("OTB:", json.dumps(result["otb"]))
    print(f"report: {report / 'results.json'}, {', '.join(str(x) for x in pngs)}; {result['total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
