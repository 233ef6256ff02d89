"""Tracking validation during training: the live policy tracks a few validation sequences.

Rewards say how well single answers score on training pairs; ``val/ao`` says whether the policy tracks:
every ``every_n_steps`` optimiser steps (and whenever the trainer evaluates) the current weights run
``MLLMTracker`` (greedy, ``TransformersBackend`` wrapping the live model and processor, model in eval
mode, then back to train mode) over the first frames of the validation sequences -- all of them in
lockstep, one batched generate call per frame, through the evaluation runner's loop -- and these are logged:

- ``val/ao``: GOT-10k average overlap over those frames -- the toolkit's rule via ``r1track.metrics``
  (frame 0 dropped, only frames with cover > 0 scored when the dataset has cover labels, boxes bounded
  to the frame, IoUs of all sequences pooled, so longer sequences weigh more);
- ``val/sr50``: share of those frames with IoU > 0.5;
- ``val/parse_failures``: share of frames whose reply gave no usable box (the tracker kept its box).

With ``max_frames`` the sequences are cut to their first frames, so the figure tracks training progress
but is not a benchmark number (use ``r1track eval`` on the saved model for that). Every process tracks
(under DeepSpeed ZeRO-3 generation needs all of them to gather the weights); the trainer's ``log``
keeps the values in ``state.log_history`` and sends them to the reporting integrations from the main
process. Rewards are logged by TRL itself (``rewards/<fn>/mean``, plus the rewards module's
``parse_rate`` and ``mean_iou`` metrics), next to ``val/*`` in the same history.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
from transformers import Trainer, TrainerCallback

from r1track.datasets.base import Sequence, VideoFrames


def _head(seq: Sequence, n: int) -> Sequence:
    """The first ``n`` frames of ``seq`` (cover labels and visibility cut alike)."""
    if n >= len(seq):
        return seq
    frames: Any = [seq.frames[i] for i in range(n)] if isinstance(seq.frames, VideoFrames) else seq.frames[:n]
    meta = {**seq.meta, **({"cover": seq.meta["cover"][:n]} if "cover" in seq.meta else {})}
    visible = None if seq.visible_ratio is None else seq.visible_ratio[:n]
    return dataclasses.replace(seq, frames=frames, gt=seq.gt[:n], visible_ratio=visible, meta=meta)


def track_sequences(factory, sequences: list[Sequence], max_frames: int | None = None) -> dict:
    """Track each sequence from its first box with trackers from ``factory`` -- all sequences in lockstep
    through the evaluation runner's batched loop when the trackers batch (MLLM trackers) -- and score the
    frames tracked as the GOT-10k toolkit does."""
    from r1track.evaluation import track_lockstep, track_sequence
    from r1track.metrics import got10k_sequence_ious, got10k_summary

    cut = [_head(s, len(s) if max_frames is None else max_frames) for s in sequences]
    cut = [s for s in cut if len(s) >= 2]
    runs: dict[int, tuple[np.ndarray, int]] = {}  # sequence -> (boxes, failed answers)
    if cut and hasattr(factory(), "prepare"):
        track_lockstep(
            factory,
            cut,
            batch_size=len(cut),
            on_sequence=lambda i, jobs: runs.__setitem__(i, (jobs[0].boxes, jobs[0].tracker.failures)),
        )
    for i, seq in enumerate(cut):
        if i not in runs:
            tracker = factory()
            runs[i] = (track_sequence(tracker, seq)[0], int(getattr(tracker, "failures", 0)))
    ious = [
        got10k_sequence_ious(
            [runs[i][0]],
            seq.gt,
            seq.meta.get("cover", seq.visible_ratio),
            seq.meta.get("resolution") or seq.frame(0).shape[1::-1],
        )
        for i, seq in enumerate(cut)
    ]
    frames = sum(len(s) - 1 for s in cut)
    summary = got10k_summary(np.concatenate(ious) if ious else np.zeros(0))
    return {
        "ao": summary["ao"],
        "sr50": summary["sr50"],
        "parse_failures": sum(f for _, f in runs.values()) / frames if frames else None,
        "frames": frames,
    }


class TrackingValidationCallback(TrainerCallback):
    """Logs ``val/ao`` (and ``val/sr50``, ``val/parse_failures``) of the live policy during training.

    ``tracker_options`` are keyword options of ``MLLMTracker`` (prompt, crop_size, search_factor, ...);
    ``family`` is the policy's coordinate family. Call ``attach(trainer)`` so results go through the
    trainer's log (history and reporting integrations) and generation can gather sharded weights;
    without it they are appended to ``state.log_history`` only.
    """

    def __init__(
        self,
        sequences: list[Sequence],
        every_n_steps: int,
        processor,
        family: str | None = None,
        tracker_options: dict | None = None,
        max_frames: int | None = None,
        max_new_tokens: int = 64,
        prefix: str = "val",
    ):
        self.sequences = list(sequences)
        self.every_n_steps = int(every_n_steps)
        self.processor = processor
        self.family = family
        self.tracker_options = dict(tracker_options or {})
        self.max_frames = max_frames
        self.max_new_tokens = max_new_tokens
        self.prefix = prefix
        self.trainer: Trainer | None = None
        self._last_step: int | None = None
        self.history: list[dict] = []  # every result, with its step

    def attach(self, trainer: Trainer) -> TrackingValidationCallback:
        self.trainer = trainer
        return self

    # ------------------------------------------------------------------ the measurement
    def evaluate(self, model) -> dict:
        """Track the validation sequences with ``model`` as it is now; train/eval mode restored after."""
        import torch

        from r1track.backends.transformers import TransformersBackend
        from r1track.trackers.mllm import MLLMTracker

        was_training = model.training
        model.eval()
        try:
            with self._generation_model(model) as live, torch.no_grad():
                backend = TransformersBackend(
                    live,
                    processor=self.processor,
                    family=self.family,
                    max_new_tokens=self.max_new_tokens,
                    temperature=0.0,
                )
                factory = functools.partial(MLLMTracker, backend, family=self.family, **self.tracker_options)
                result = track_sequences(factory, self.sequences, self.max_frames)
        finally:
            model.train(was_training)
        return result

    def _generation_model(self, model):
        """The trainer's unwrapped model (ZeRO-3 weights gathered, checkpointing off) or ``model``."""
        import contextlib

        if self.trainer is None:
            return contextlib.nullcontext(model)
        from trl.models import unwrap_model_for_generation

        return unwrap_model_for_generation(
            self.trainer.model_wrapped,
            self.trainer.accelerator,
            gradient_checkpointing_kwargs=self.trainer.args.gradient_checkpointing_kwargs,
        )

    def _run(self, state, model) -> None:
        if not self.sequences or model is None or self._last_step == state.global_step:
            return
        self._last_step = state.global_step
        result = self.evaluate(model)
        logs = {f"{self.prefix}/{k}": v for k, v in result.items() if k != "frames" and v is not None}
        self.history.append({"step": state.global_step, **logs})
        if self.trainer is not None:
            # The base Trainer.log: GRPOTrainer.log would also flush its reward averages into this entry.
            # Logging resets control.should_log, which would drop this step's regular log: keep it.
            should_log = self.trainer.control.should_log
            Trainer.log(self.trainer, logs)
            self.trainer.control.should_log = should_log
        else:
            state.log_history.append({**logs, "step": state.global_step})

    # ------------------------------------------------------------------ trainer events
    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every_n_steps > 0 and state.global_step % self.every_n_steps == 0:
            self._run(state, model)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        self._run(state, model)
