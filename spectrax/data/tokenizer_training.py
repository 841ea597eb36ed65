"""The default SentencePiece tokenizer of a built suite, trained on its text.

Models trained from scratch (configs/tiny.py) use it; real models bring their
own. `data_pipelines` builds only records, so the tokenizer is trained here, on
first use, into `SUITE/tokenizer.model` (`data_pipelines.schema.DEFAULT_TOKENIZER`);
rebuilding a task removes it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

from data_pipelines.schema import DEFAULT_TOKENIZER
from spectrax.data import templates
from spectrax.data.episodes import format_episode
from spectrax.data.suite_reader import Suite, TaskSource
from spectrax.data.tokenizer import train_sentencepiece

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


DEFAULT_VOCAB_SIZE = 4096


def train_default_tokenizer(suite_dir: str,
                            vocab_size: int = DEFAULT_VOCAB_SIZE) -> str:
  """Trains (or retrains) the suite's default tokenizer; returns its path."""
  manifest = Suite(suite_dir).manifest
  if not manifest["tasks"]:
    raise ValueError(f"the suite at {suite_dir} has no tasks to train a "
                     "tokenizer on; build some with python -m data_pipelines.build.")
  path = os.path.join(suite_dir, DEFAULT_TOKENIZER)
  tmp = path + ".tmp.model"  # A reader never sees a half-written model.
  train_sentencepiece(
      itertools.islice(corpus(suite_dir, manifest), 2_000_000), tmp,
      vocab_size=vocab_size, special_tokens=templates.all_special_tokens())
  os.replace(tmp, path)
  return path


def ensure_default_tokenizer(suite_dir: str,
                             vocab_size: int = DEFAULT_VOCAB_SIZE) -> str:
  """The suite's default tokenizer, trained first if it has none."""
  return (Suite(suite_dir).tokenizer_path
          or train_default_tokenizer(suite_dir, vocab_size))
