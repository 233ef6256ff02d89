"""The `r1track` command: one sub-command per job, each implemented by the module that does the job."""

from __future__ import annotations

import argparse
import importlib
import sys

from r1track.errors import R1TrackError

# sub-command -> (module, one-line help); modules are imported only when their command runs,
# so `r1track synth` never pays for importing torch.
COMMANDS = {
    "demo": ("r1track.demo", "generate a synthetic clip, track it and evaluate, fully offline"),
    "synth": ("r1track.synth", "generate the synthetic benchmark (GOT-10k layout)"),
    "eval": ("r1track.evaluation", "run a tracker over a benchmark split (resumable)"),
    "report": ("r1track.report", "score results: comparison table, JSON and plots"),
    "pack": ("r1track.results", "pack results for an evaluation server (GOT-10k test, TrackingNet)"),
    "track": ("r1track.track", "track one video or frame folder from a box or a text description"),
    "app": ("r1track.app", "a local web page: upload a video, mark the target, watch it tracked"),
    "tiny-model": ("r1track.tiny", "write a random-weight real-architecture checkpoint for tests"),
    "build-pairs": ("r1track.training.pairs", "build a training pair dataset from a tracking dataset"),
    "train": ("r1track.training.cli", "train with SFT or GRPO from a YAML recipe"),
}


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
    try:
        return module.run(args) or 0
    except R1TrackError as e:
        print(f"r1track {argv[0]}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
