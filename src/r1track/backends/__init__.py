"""Model backends: a batch of (images, chat messages) requests in, one reply text per request out.

- ``transformers``: a checkpoint run in-process with transformers (batched, left-padded generation).
- ``vllm``: an offline vLLM engine (``pip install r1track[vllm]``), prefix caching on.
- ``openai``: any OpenAI-compatible chat server (a ``vllm serve`` process, a hosted API).
- ``oracle``: answers from the ground truth, in the model family's coordinates: a diagnostic for
  datasets, crops and coordinate geometry, never a tracker.

Backends are imported only when built, so choosing ``openai`` never imports torch.
"""

from __future__ import annotations

import importlib
import inspect

from r1track.backends.base import Backend, Request
from r1track.errors import R1TrackError

# name -> "module:class"
BACKENDS = {
    "transformers": "r1track.backends.transformers:TransformersBackend",
    "vllm": "r1track.backends.vllm:VLLMBackend",
    "openai": "r1track.backends.openai:OpenAIBackend",
    "oracle": "r1track.backends.oracle:OracleBackend",
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise R1TrackError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_backend(name: str, **kw) -> Backend:
    """The backend called ``name`` built with ``kw``; options it does not take are a clear error."""
    cls = backend_class(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kw) - accepted)
    if unknown:
        raise R1TrackError(
            f"the {name} backend does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted))}"
        )
    return cls(**kw)


__all__ = ["BACKENDS", "Backend", "Request", "backend_class", "build_backend"]
