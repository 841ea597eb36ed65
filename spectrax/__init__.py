"""spectrax: Spectrum Tuning in JAX/Flax.

The names below are the stable Python entry points; the folders behind them
(data/, models/, training/, scoring/, evaluation/, ...) may move. Imports are
lazy, so `import spectrax` stays cheap (Grain worker processes import
`spectrax.data` without pulling in jax).

    import spectrax
    messages = [{"role": "description", "content": "Flip a fair coin."},
                {"role": "output", "content": "heads"}]
    segments = spectrax.format_episode(messages, "colon")  # [(text, in_loss)]
    loaded = spectrax.load_model(workdir="runs/tiny")
    scores = spectrax.Scorer(loaded.model, loaded.tokenizer).score(requests)
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it.
_EXPORTS = {
    # Episodes, templates, tokenizers, the built suite, the data pipeline.
    "Message": "spectrax.data.episodes",
    "format_episode": "spectrax.data.episodes",
    "tokenize_episode": "spectrax.data.episodes",
    "get_template": "spectrax.data.templates",
    "Tokenizer": "spectrax.data.tokenizer",
    "load_tokenizer": "spectrax.data.tokenizer",
    "Suite": "spectrax.data.suite_reader",
    "DataConfig": "spectrax.data.pipeline",
    "Pipeline": "spectrax.data.pipeline",
    # Models and weights.
    "ModelConfig": "spectrax.models",
    "Transformer": "spectrax.models",
    "load_hf": "spectrax.models",
    "save_hf": "spectrax.models",
    "make_mesh": "spectrax.parallel.sharding",
    "load_model": "spectrax.checkpoints.loading",
    "LoadedModel": "spectrax.checkpoints.loading",
    # Training.
    "train": "spectrax.training.loop",
    # Scoring and sampling.
    "Scorer": "spectrax.scoring.scorer",
    "ScoreRequest": "spectrax.scoring.scorer",
    "ScoreResult": "spectrax.scoring.scorer",
    "Sampler": "spectrax.scoring.sampler",
    # Evaluation metrics.
    "kl_divergence": "spectrax.evaluation.metrics",
    "reverse_kl": "spectrax.evaluation.metrics",
    "js_divergence": "spectrax.evaluation.metrics",
    "total_variation": "spectrax.evaluation.metrics",
    "wasserstein": "spectrax.evaluation.metrics",
    "cross_entropy": "spectrax.evaluation.metrics",
    "mode_match": "spectrax.evaluation.metrics",
    "distributional_metrics": "spectrax.evaluation.metrics",
    "diversity_metrics": "spectrax.evaluation.metrics",
    "choose_k": "spectrax.evaluation.metrics",
    "expected_calibration_error": "spectrax.evaluation.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
  if name not in _EXPORTS:
    raise AttributeError(f"module 'spectrax' has no attribute {name!r}")
  value = getattr(importlib.import_module(_EXPORTS[name]), name)
  globals()[name] = value  # Later lookups skip this function.
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(_EXPORTS))
