"""The `r1track` command: one sub-command per job, each implemented by the module that does the job, and
the tracker options the tracking commands share (mapped onto ``r1track.load_tracker``'s options)."""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import warnings

from r1track.errors import DataWarning, R1TrackError, exit_status

# sub-command -> (module, one-line help); modules are imported only when their command runs,
# so `r1track synth` never pays for importing torch.
COMMANDS = {
    "demo": ("r1track.demo", "generate a synthetic clip, track it and evaluate, fully offline"),
    "synth": ("r1track.synth", "generate the synthetic benchmark (GOT-10k layout)"),
    "paste": ("r1track.paste", "paste real objects onto real frames: more training sequences (GOT-10k layout)"),
    "eval": ("r1track.commands.eval", "run a tracker over a benchmark split (resumable)"),
    "report": ("r1track.report", "score results: comparison table, JSON and plots"),
    "pack": ("r1track.pack", "pack results for an evaluation server (GOT-10k test, TrackingNet)"),
    "track": ("r1track.track", "track one video or frame folder from a box or a text description"),
    "app": ("r1track.app", "a local web page: upload a video, mark the target, watch it tracked"),
    "tiny-model": ("r1track.tiny", "write a random-weight real-architecture checkpoint for tests"),
    "build-pairs": ("r1track.training.pairs", "build a training pair dataset from a tracking dataset"),
    "train": ("r1track.training.cli", "train with SFT or GRPO from a YAML recipe"),
    "soup": ("r1track.training.soup", "average the weights of fine-tuned checkpoints of one model (a model soup)"),
}


# MLLM tracker options shared by `track` and `eval`: (flag, argparse keywords); every one but --model and
# --backend is a keyword option of r1track.trackers.tracker_factory (None: unset, the checkpoint's setting)
TRACKER_ARGUMENTS: list[tuple[str, dict]] = [
    ("--model", {"help": "model id or local path (or served model name); 'nano': the packaged nano model"}),
    (
        "--backend",
        {
            "default": "transformers",
            "choices": ("transformers", "vllm", "openai", "oracle"),
            "help": "how the model runs",
        },
    ),
    ("--family", {"help": "coordinate family: qwen2.5-vl, qwen2-vl, qwen3-vl (default: from the model config)"}),
    ("--prompt", {"help": "prompt variant (default: current)"}),
    ("--crop-size", {"type": int, "help": "template and search crop size (px, default 336)"}),
    ("--template-factor", {"type": float, "help": "template crop side / box size (default 4)"}),
    ("--search-factor", {"type": float, "help": "search crop side / box size (default 4)"}),
    ("--pad", {"choices": ("constant", "mean"), "help": "padding outside the frame (default constant)"}),
    ("--thinking", {"action": "store_true", "default": None, "help": "ask for <think> reasoning and an <answer>"}),
    ("--max-new-tokens", {"type": int, "help": "generation limit (default: backend's)"}),
    ("--temperature", {"type": float, "help": "sampling temperature (default: greedy)"}),
    ("--min-pixels", {"type": int, "help": "processor resize: minimum image pixels"}),
    ("--max-pixels", {"type": int, "help": "processor resize: maximum image pixels"}),
    ("--device", {"help": "transformers: device (cuda, cpu, ...)"}),
    ("--dtype", {"help": "transformers/vllm: weights dtype (bfloat16, float32, ...)"}),
    ("--base-url", {"help": "openai: server URL (e.g. http://localhost:8000/v1)"}),
    ("--api-key", {"help": "openai: API key (default: $OPENAI_API_KEY or 'EMPTY')"}),
    ("--concurrency", {"type": int, "help": "openai: parallel requests"}),
    ("--timeout", {"type": float, "help": "openai: seconds to wait for one reply before retrying (default 60)"}),
    ("--retries", {"type": int, "help": "openai: retries after a timeout or server error (default 3)"}),
    ("--oracle-noise", {"type": float, "help": "oracle: corner jitter, as a fraction of the box size"}),
    ("--oracle-garbage-rate", {"type": float, "help": "oracle: fraction of replies replaced by unusable text"}),
    ("--max-scale-change", {"type": float, "help": "limit the per-frame box scale change to this ratio (e.g. 1.5)"}),
    ("--scale-smoothing", {"type": float, "help": "move the box size only this fraction (0..1] towards each answer's"}),
    ("--max-shift", {"type": float, "help": "limit the per-frame centre step to this fraction of the box size"}),
    (
        "--scale-range",
        {
            "type": float,
            "nargs": 2,
            "metavar": ("LO", "HI"),
            "help": "keep the box size within LO..HI x the first frame's (e.g. 0.5 2)",
        },
    ),
    ("--template-refresh", {"type": int, "help": "refresh the template from a stable frame at most every N frames"}),
    (
        "--calibrate-factors",
        {
            "type": float,
            "nargs": "+",
            "help": "choose each sequence's search factor among these at init, by the model's first-frame answers",
        },
    ),
    ("--three-image", {"action": "store_true", "default": None, "help": "template + recent frame + search prompt"}),
    (
        "--absent-search-scale",
        {
            "type": float,
            "default": None,
            "help": "after an 'absent' answer ([]), search a region this many times wider (1.5)",
        },
    ),
    (
        "--absent-search-max",
        {
            "type": float,
            "default": None,
            "help": "more 'absent' answers in a row widen the search again, up to this many times (default: once)",
        },
    ),
]
_OPTION_NAMES = {"oracle_noise": "noise", "oracle_garbage_rate": "garbage_rate"}  # the backend's names


def add_tracker_arguments(parser) -> None:
    """The MLLM tracker options (on a parser or an argument group)."""
    for flag, kwargs in TRACKER_ARGUMENTS:
        parser.add_argument(flag, **kwargs)


def tracker_factory_from_args(args: argparse.Namespace, name: str = "mllm"):
    """``r1track.trackers.tracker_factory`` for a baseline ``name``, or for the MLLM options in ``args``."""
    from r1track.trackers import tracker_factory

    if name != "mllm":
        return tracker_factory(name)
    if args.backend != "oracle" and not args.model:
        raise R1TrackError(f"--model is required with the {args.backend} backend")
    dests = [flag[2:].replace("-", "_") for flag, _ in TRACKER_ARGUMENTS[2:]]
    options = {_OPTION_NAMES.get(d, d): getattr(args, d) for d in dests if getattr(args, d, None) is not None}
    return tracker_factory(args.model, args.backend, **options)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="r1track", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help or the unknown-command error
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"r1track {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    with warnings.catch_warnings():
        warnings.showwarning = functools.partial(_show_warning, argv[0], warnings.showwarning)
        try:
            return exit_status(lambda: module.run(args) or 0, f"r1track {argv[0]}")
        except KeyboardInterrupt:
            print(f"r1track {argv[0]}: interrupted", file=sys.stderr)
            return 130


def _show_warning(command, default, message, category, *args, **kwargs):
    """Our warnings about input data as one line each, like errors; any other warning as Python shows it."""
    if issubclass(category, DataWarning):
        print(f"r1track {command}: warning: {message}", file=sys.stderr)
    else:
        default(message, category, *args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
