"""Trains the default SentencePiece tokenizer on a built suite's text."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

from spectrax import templates
from spectrax.episodes import format_episode
from spectrax.tasks import TaskSource
from spectrax.tokenizer import train_sentencepiece

_MAX_INSTANCES_PER_TASK = 200
_MAX_ROWS_PER_INSTANCE = 64
_MAX_CHARS = 2000  # SentencePiece skips longer sentences.


def _task_text(source: TaskSource) -> Iterator[str]:
  for i in range(min(len(source), _MAX_INSTANCES_PER_TASK)):
    rec = source[i]
    yield from rec.descriptions
    if rec.question:
      yield rec.question
    yield from rec.options[:_MAX_ROWS_PER_INSTANCE]
    rows = range(min(len(rec.outputs), _MAX_ROWS_PER_INSTANCE))
    for j in rows:
      if rec.inputs:
        yield rec.inputs[j]
      yield rec.outputs[j]


def corpus(out: str, manifest: dict) -> Iterator[str]:
  """Every task's text, plus each template's scaffolding once per task."""
  for name, entry in sorted(manifest["tasks"].items()):
    directory = os.path.join(out, entry["dir"])
    for split in ("train", "test"):
      source = TaskSource(directory, split)
      for text in _task_text(source):
        yield text[:_MAX_CHARS]
    for t in templates.TEMPLATES:
      example = [{"role": "description", "content": name},
                 {"role": "input", "content": "x"},
                 {"role": "output", "content": "y"}]
      yield "".join(s for s, _ in format_episode(example, t))


def train_default_tokenizer(out: str, manifest: dict, model_file: str,
                            vocab_size: int) -> str:
  return train_sentencepiece(
      itertools.islice(corpus(out, manifest), 2_000_000), model_file,
      vocab_size=vocab_size, special_tokens=templates.all_special_tokens())
