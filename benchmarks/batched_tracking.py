"""Throughput of lockstep batching: 1, 4 and 16 sequences tracked together through MLLMTracker and
TransformersBackend, with the evaluation runner's ``batch_size``.

Every request is forced to produce exactly ``--tokens`` new tokens (min = max new tokens), so the
figures compare equal work whatever the random model answers.

    # CPU, tiny random-weight Qwen2.5-VL (real architecture, real processor and token counts)
    PYTHONPATH=src .venv/bin/python benchmarks/batched_tracking.py

    # GPU, Qwen2.5-VL-3B architecture with random weights, bf16
    PYTHONPATH=src python benchmarks/batched_tracking.py --full-size

Prints frames/s per setting and its ratio to one stream.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from r1track.backends.transformers import TransformersBackend  # noqa: E402
from r1track.datasets.base import Sequence  # noqa: E402
from r1track.evaluation import run  # noqa: E402
from r1track.trackers.mllm import MLLMTracker  # noqa: E402


def synthetic_sequences(n: int, frames: int, size=(640, 360), seed: int = 0) -> list[Sequence]:
    """In-memory sequences: textured frames with a box drifting across them."""
    rng = np.random.default_rng(seed)
    w, h = size
    out = []
    for i in range(n):
        imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(frames)]
        start = rng.uniform([40, 40], [w - 140, h - 120])
        step = rng.uniform(-4, 4, 2)
        gt = np.array([[*(start + t * step), 80.0, 60.0] for t in range(frames)])
        out.append(Sequence(f"seq{i:03d}", imgs, gt, meta={"resolution": (w, h)}))
    return out


def tiny_backend(tokens: int, model: str | None, tmp: Path, max_pixels: int | None = None) -> TransformersBackend:
    from r1track.tiny import make_tiny_model

    path = model or make_tiny_model(tmp / "tiny", cache_dir=tmp / "cache")
    return TransformersBackend(str(path), device="cpu", dtype="float32", max_new_tokens=tokens,
                               max_pixels=max_pixels, generation_kwargs={"min_new_tokens": tokens})


def full_size_backend(tokens: int, attn: str | None) -> TransformersBackend:
    import torch

    from r1track.tiny import QWEN25_VL_3B, build_config, make_processor

    if not torch.cuda.is_available():
        raise SystemExit("--full-size needs a CUDA GPU")
    import transformers

    config = build_config("qwen2.5-vl", QWEN25_VL_3B)
    if attn:
        config._attn_implementation = attn
    with torch.device("cuda"):  # initialise on the GPU: a 3.8B fp32 init on the CPU takes minutes
        torch.manual_seed(0)
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.eval()
    processor = make_processor("qwen2.5-vl")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Qwen2.5-VL-3B architecture, random weights: {n_params / 1e9:.2f} B parameters, bf16, "
          f"{torch.cuda.get_device_name()}, attention {model.config._attn_implementation}")
    return TransformersBackend(model, processor=processor, max_new_tokens=tokens,
                               generation_kwargs={"min_new_tokens": tokens})


def measure(backend, sequences, batch_size: int, crop_size: int, out: Path) -> float:
    """Frames per second (frames after the first, which only initialise) of one runner pass."""
    factory = lambda: MLLMTracker(backend, crop_size=crop_size)  # noqa: E731
    start = time.perf_counter()
    run(factory, sequences, out / f"b{batch_size}", protocol="ope", batch_size=batch_size,
        overwrite=True, progress=False)
    elapsed = time.perf_counter() - start
    return sum(len(s) - 1 for s in sequences) / elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true", help="Qwen2.5-VL-3B architecture on a GPU, bf16")
    parser.add_argument("--model", default=None, help="use this checkpoint instead of a fresh tiny one (CPU)")
    parser.add_argument("--streams", default="1,4,16", help="batch sizes to compare")
    parser.add_argument("--sequences", type=int, default=16, help="sequences per measurement")
    parser.add_argument("--frames", type=int, default=None, help="frames per sequence (default 5 CPU, 9 GPU)")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per request (forced)")
    parser.add_argument("--crop-size", type=int, default=336)
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="CPU: the processor's resize limit (default: the checkpoint's); with --crop-size it sets "
                             "the visual tokens per image, e.g. 224 and 50176 give a nano model 64 instead of 16")
    parser.add_argument("--attn", default=None, help="full size: attention implementation (sdpa, flash_attention_2)")
    args = parser.parse_args(argv)
    streams = [int(s) for s in args.streams.split(",")]
    frames = args.frames or (9 if args.full_size else 5)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        backend = full_size_backend(args.tokens, args.attn) if args.full_size else tiny_backend(
            args.tokens, args.model, tmp, args.max_pixels)
        sequences = synthetic_sequences(max(args.sequences, max(streams)), frames)
        # warm-up (kernels, allocator, lazy imports) outside the timings
        measure(backend, sequences[: max(streams)][:2], 2, args.crop_size, tmp / "warm")
        print(f"{len(sequences)} sequences x {frames - 1} tracked frames, {args.crop_size}px crops, "
              f"{args.tokens} tokens per answer, device {backend.model.device}")
        print(f"{'streams':>8} {'frames/s':>10} {'x one':>7}")
        base = None
        for b in streams:
            fps = measure(backend, sequences, b, args.crop_size, tmp)
            base = base or fps
            print(f"{b:>8d} {fps:>10.2f} {fps / base:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
