"""Every GPU figure in one run: Qwen2.5-VL-3B architecture with random weights (config built in code, the
tokenizer from the offline Qwen tokenizer, nothing downloaded), tracking frames/s with 1, 16 and 64
sequences in lockstep through transformers (and vLLM where it is installed), and one GRPO step of the
reference recipe (time and peak GPU memory). Prints a markdown table for benchmarks/README.md.

    bash benchmarks/gpu_check.sh            # one GPU, under 8 minutes on an H200
    bash benchmarks/gpu_check.sh --smoke    # the same code path on the CPU at tiny sizes (tested)

The GRPO step keeps the reference recipe's per-device settings (4 completions per micro-batch, 6 per
prompt, 64-token answers, fp32 weights with bf16 compute, gradient checkpointing, KL to a reference
model) and shrinks only the prompts per optimiser step (``--grpo-prompts``), so peak memory is the
reference's per GPU and the step time scales with the number of micro-batches.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

from batched_tracking import measure, synthetic_sequences  # noqa: E402

REFERENCE_RECIPE = ROOT / "recipes" / "r1track-100k-qwen2.5vl-3b.yaml"


def build_checkpoint(out: Path, smoke: bool):
    """The random-weight model (on the GPU, bf16; smoke: tiny, CPU, fp32), its processor, saved to ``out``."""
    import torch
    import transformers

    from r1track.tiny import QWEN25_VL_3B, TINY, build_config, build_model, make_processor

    processor = make_processor("qwen2.5-vl")
    if smoke:
        model = build_model("qwen2.5-vl", TINY)
    else:
        with torch.device("cuda"):  # initialise on the GPU: a 3.8B fp32 init on the CPU takes minutes
            torch.manual_seed(0)
            model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(
                build_config("qwen2.5-vl", QWEN25_VL_3B), dtype=torch.bfloat16)
        model.generation_config = transformers.GenerationConfig(
            bos_token_id=151643, eos_token_id=[151645, 151643], pad_token_id=151643)
    model.eval().save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return model, processor


def tracking_rows(backend, label: str, streams: list[int], frames: int, crop: int, tmp: Path) -> list[tuple]:
    measure(backend, synthetic_sequences(2, 3), 2, crop, tmp / "warm")  # kernels, allocator, lazy imports
    rows = []
    for b in streams:
        sequences = synthetic_sequences(max(b, 4), frames, seed=b)  # one stream still tracks 4 sequences
        fps = measure(backend, sequences, b, crop, tmp / label)
        rows.append((f"tracking, {label}", f"{b} sequence(s) in lockstep, {len(sequences)} x {frames - 1} frames",
                     f"{fps:.2f} frames/s"))
    return rows


def vllm_rows(path: Path, args, tmp: Path) -> list[tuple]:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return [("tracking, vLLM", "-", "not installed")]
    from r1track.backends.vllm import VLLMBackend

    backend = VLLMBackend(str(path), max_new_tokens=args.tokens, dtype="bfloat16", max_model_len=4096,
                          engine_kwargs={"enforce_eager": args.vllm_eager})
    backend.sampling_params.min_tokens = args.tokens  # equal work whatever the random model answers
    try:
        return tracking_rows(backend, "vLLM" + (" (eager)" if args.vllm_eager else ""), args.streams,
                             args.frames, args.crop_size, tmp)
    finally:
        backend.close()


def grpo_row(path: Path, args, tmp: Path) -> tuple:
    import torch

    from r1track.cli import main
    from r1track.synth import generate

    generate(tmp / "synth", sequences=max(args.grpo_prompts, 2), frames=12, seed=0, split="train",
             size="320x240", progress=False)
    overrides = [f"model.name_or_path={path}", "data.train=null", "data.validation=null",
                 f"data.build={{dataset: got10k, root: {tmp / 'synth'}, split: train, samples: {args.grpo_prompts}}}",
                 f"batch.prompts_per_step={args.grpo_prompts}", f"batch.prompts_per_rollout={args.grpo_prompts}",
                 "trainer.max_steps=1", "trainer.save_strategy='no'", "trainer.dataloader_num_workers=0",
                 "trainer.warmup_steps=0"]
    if args.smoke:  # CPU: no bf16, the smallest group, short answers
        overrides += ["trainer.bf16=false", "trainer.num_generations=2", "trainer.per_device_train_batch_size=2",
                      "trainer.max_completion_length=4"]
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    code = main(["train", "grpo", "--config", str(REFERENCE_RECIPE), "--output-dir", str(tmp / "grpo"), *overrides])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the GRPO step failed (exit {code})")
    import json

    log = json.loads((tmp / "grpo" / "log_history.json").read_text())
    runtime = next((h["train_runtime"] for h in log if "train_runtime" in h), float("nan"))
    memory = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if gpu else ""
    return ("GRPO step, reference recipe", f"{args.grpo_prompts} prompts x group, per-device batch as the recipe",
            f"{runtime:.1f} s step ({elapsed:.0f} s with loading){memory}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU: check the script, not the GPU")
    parser.add_argument("--streams", default=None, help="lockstep sequence counts (default 1,16,64; smoke 1,2)")
    parser.add_argument("--frames", type=int, default=None, help="frames per sequence (default 9; smoke 3)")
    parser.add_argument("--tokens", type=int, default=None, help="new tokens per answer, forced (default 16; smoke 4)")
    parser.add_argument("--crop-size", type=int, default=None, help="crop size (default 336; smoke 112)")
    parser.add_argument("--grpo-prompts", type=int, default=None, help="prompts in the GRPO step (default 4; smoke 1)")
    parser.add_argument("--vllm-eager", action="store_true", help="vLLM without CUDA graphs/compile (faster start)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.streams = [int(s) for s in (args.streams or ("1,2" if smoke else "1,16,64")).split(",")]
    args.frames = args.frames or (3 if smoke else 9)
    args.tokens = args.tokens or (4 if smoke else 16)
    args.crop_size = args.crop_size or (112 if smoke else 336)
    args.grpo_prompts = args.grpo_prompts or (1 if smoke else 4)

    import torch

    if not smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: run with --smoke to check the script on the CPU")
    from r1track.backends.transformers import TransformersBackend

    device = "CPU (smoke: tiny sizes)" if smoke else torch.cuda.get_device_name()
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "model"
        model, processor = build_checkpoint(path, smoke)
        backend = TransformersBackend(model, processor=processor, max_new_tokens=args.tokens,
                                      generation_kwargs={"min_new_tokens": args.tokens})
        rows += tracking_rows(backend, "transformers", args.streams, args.frames, args.crop_size, tmp)
        del backend, model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        rows += vllm_rows(path, args, tmp)
        rows.append(grpo_row(path, args, tmp))
    size = "tiny Qwen2.5-VL" if smoke else "Qwen2.5-VL-3B architecture, random weights, bf16"
    print(f"\n{size} on {device}; {args.crop_size}-px crops, {args.tokens} tokens per answer; torch {torch.__version__}\n")
    print("| figure | setting | value |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
