"""Training speed on the CPU: float32, bfloat16 autocast, torch.compile, the prompt's length and a data-loading
process, side by side.

    PYTHONPATH=src .venv/bin/python benchmarks/cpu_precision.py [--model PATH] [--sft-steps 40] [--grpo-steps 8]
        [--settings NAME ...]

Builds a small synthetic training split and its pairs in a temporary folder (the pipeline's pair options,
once per prompt variant), then runs the nano recipes (``recipes/nano-sft-real.yaml``,
``recipes/nano-grpo.yaml``) through the real trainers from ``--model`` (default: the packaged nano model)
once per setting, each in a fresh process (accelerate keeps its mixed-precision state per process).
``trainer.bf16=true trainer.use_cpu=true`` is mixed precision (weights, gradients and
optimizer state stay float32; matrix products run in bfloat16 under ``torch.autocast``);
``trainer.torch_compile=true`` compiles the model first (SFT only: GRPO's generation is not compiled);
``trainer.dataloader_num_workers=1`` prepares the next batch (images through the processor, text through the
chat template) in another process while the model trains.
Prints the median seconds per step after the first ``--warmup`` steps (compilation happens there), the
time of those first steps, the speed against float32 with the packaged prompt, the mean number of tokens
per SFT sample, and the mean training loss (same pairs and seed: a precision problem would show as
another loss; the compact prompt's pairs are other text, so their loss differs anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from reproduce_nano import GRPO_PAIR_OPTIONS, SFT_PAIR_OPTIONS  # noqa: E402

from r1track.errors import exit_status  # noqa: E402

BF16 = ["trainer.bf16=true", "trainer.use_cpu=true"]
COMPILE = ["trainer.torch_compile=true"]
# setting: (recipe overrides, prompt variant of the pairs)
SETTINGS = {
    "float32": ([], "current"),
    "bf16 autocast": (BF16, "current"),
    "float32 + compile": (COMPILE, "current"),
    "bf16 + compile": (BF16 + COMPILE, "current"),
    "bf16, compact prompt": (BF16, "compact"),
    # the batches' images and text prepared in a second process while the model trains on the last one
    "bf16, 1 loader worker": (BF16 + ["trainer.dataloader_num_workers=1"], "current"),
}


def r1track(*args) -> None:
    """One ``r1track`` command, quiet; its last error line if it fails."""
    cmd = [sys.executable, "-m", "r1track.cli", *map(str, args)]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"r1track {args[0]} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def make_pairs(tmp: Path, prompt: str) -> dict[str, Path]:
    """1,000 SFT and 200 GRPO pairs with ``prompt`` from a 40-sequence synthetic split (made once)."""
    synth = tmp / "synth"
    for split, sequences, frames, seed in (("train", 40, 30, 1), ("val", 2, 10, 2)):
        if not (synth / split).is_dir():
            r1track("synth", "--out", synth, "--split", split, "--sequences", sequences, "--frames", frames, "--seed", seed,
                    "--no-progress")  # fmt: skip
    source = ["--dataset", "got10k", "--root", synth, "--split", "train", "--prompt", prompt]
    out = {"sft-real": tmp / f"sft-{prompt}", "grpo": tmp / f"grpo-{prompt}"}
    r1track("build-pairs", *source, "--out", out["sft-real"], "--samples", 1000, "--seed", 0, *SFT_PAIR_OPTIONS)
    r1track("build-pairs", *source, "--out", out["grpo"], "--samples", 200, "--seed", 1, *GRPO_PAIR_OPTIONS)
    return out


def timed_run(
    stage: str, overrides: list[str], out: Path, warmup: int, threads: int
) -> tuple[float, float, float, float]:
    """(median s per step after warm-up, s for the warm-up steps, tokens per sample, mean loss) of one run."""
    import torch
    from transformers import TrainerCallback

    from r1track.training import grpo, sft
    from r1track.training.config import load_recipe

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    torch.set_num_threads(threads)
    recipe = load_recipe(ROOT / "recipes" / f"nano-{stage}.yaml", [*overrides, "trainer.disable_tqdm=true"])
    clock = StepTimes()
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer prints every step's log
        trainer = (sft if stage == "sft-real" else grpo).build_trainer(recipe, out, callbacks=[clock])[0]
        clock.times = [time.perf_counter()]
        trainer.train()
    steps = [b - a for a, b in zip(clock.times, clock.times[1:])]
    logs = [e for e in trainer.state.log_history if "loss" in e]
    samples = trainer.state.global_step * trainer.args.per_device_train_batch_size
    tokens = logs[-1].get("num_tokens", float("nan")) / samples
    return statistics.median(steps[warmup:]), sum(steps[:warmup]), tokens, statistics.fmean(e["loss"] for e in logs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "src" / "r1track" / "assets" / "nano"))
    parser.add_argument("--sft-steps", type=int, default=40)
    parser.add_argument("--grpo-steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the median (compilation)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS), metavar="NAME",
                        help=f"settings to run, quoted (default: all; speeds against the first run): {' / '.join(SETTINGS)}")
    args = parser.parse_args(argv)
    if min(args.sft_steps, args.grpo_steps) <= args.warmup:
        parser.error("--sft-steps and --grpo-steps must exceed --warmup")
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs = {prompt: make_pairs(tmp, prompt) for prompt in {SETTINGS[name][1] for name in args.settings}}
        print(f"{'stage':<5} {'setting':<21} {'s/step':>7} {'warm-up s':>10} {'speed':>7} {'tokens':>7} {'loss':>7}")
        for stage, steps in (("sft-real", args.sft_steps), ("grpo", args.grpo_steps)):
            base = None
            for k, (name, (extra, prompt)) in enumerate(SETTINGS.items()):
                if name not in args.settings or stage == "grpo" and "compile" in name:
                    continue
                overrides = [f"model.name_or_path={args.model}", f"data.train={pairs[prompt][stage]}",
                             f"data.validation.root={tmp / 'synth'}", f"trainer.max_steps={steps}",
                             "trainer.logging_steps=1", *extra]  # fmt: skip
                # not a multiprocessing.Pool: its daemonic workers may not start data-loading processes
                with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                    run = (stage, overrides, tmp / f"run-{stage}-{k}", args.warmup, args.threads)
                    per_step, warm, tokens, loss = pool.submit(timed_run, *run).result()
                base = base or per_step
                print(f"{stage.split('-')[0]:<5} {name:<21} {per_step:>7.3f} {warm:>10.1f} {base / per_step:>6.2f}x "
                      f"{tokens:>7.1f} {loss:>7.4f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main, "cpu_precision.py"))
