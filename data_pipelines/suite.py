"""The Spectrum Suite as a TensorFlow Datasets dataset in ArrayRecord format.

One builder config per task; one record per instance; `train`/`test` splits
(a train-suite task holds out a seeded `test_fraction` of its instances for
evaluation loss; a test-suite task has only `test`). Task metadata (sampling
settings, descriptions, row counts per instance) goes to the dataset's
`metadata.json`. TFDS runs here without TensorFlow: records are written with
`file_format="array_record"` and read back with `tfds.data_source`.

The same tasks built with the same seed give byte-identical record files:
TFDS serialises each record as a `tf.train.Example`, whose features are a
protobuf map, and protobuf writes map entries in its hash-table order, which
changes from process to process. `_SortedExampleWriter` re-serialises every
record with its map entries sorted by key before it is written.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import writer as tfds_writer
from tensorflow_datasets.proto import tf_example_pb2

from data_pipelines.schema import BuildContext, Instance, TaskSpec

DATASET_NAME = "spectrum_suite"
SUITE_VERSION = "1.0.0"


def _features() -> tfds.features.FeaturesDict:
  text_list = tfds.features.Sequence(tfds.features.Text())
  return tfds.features.FeaturesDict({
      "id": tfds.features.Text(),
      "descriptions": text_list,
      "inputs": text_list,  # empty, or one per output.
      "outputs": text_list,
      "question": tfds.features.Text(),
      "options": text_list,
      "target": tfds.features.Sequence(np.float32),
      "extra": tfds.features.Text(),  # JSON.
  })


def instance_to_record(inst: Instance) -> dict:
  has_inputs = bool(inst.rows) and inst.rows[0].input is not None
  return {
      "id": inst.id,
      "descriptions": list(inst.descriptions),
      "inputs": [r.input for r in inst.rows] if has_inputs else [],
      "outputs": [r.output for r in inst.rows],
      "question": inst.question or "",
      "options": list(inst.options),
      "target": np.asarray(inst.target, np.float32),
      "extra": json.dumps(inst.extra, sort_keys=True),
  }


def split_instances(spec: TaskSpec, instances: list[Instance], seed: int
                    ) -> dict[str, list[Instance]]:
  """Seeded hold-out of a train-suite task's instances; test tasks: all test."""
  if spec.suite_split == "test":
    return {"test": instances}
  n = len(instances)
  n_test = int(round(spec.test_fraction * n))
  if n >= 2 and spec.test_fraction > 0:
    n_test = max(n_test, 1)
  rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode()), 7])
  test_idx = set(rng.permutation(n)[:n_test].tolist())
  out = {"train": [x for i, x in enumerate(instances) if i not in test_idx]}
  if test_idx:
    out["test"] = [x for i, x in enumerate(instances) if i in test_idx]
  return out


class _SortedExampleWriter(tfds_writer.ExampleWriter):
  """Writes each serialised `tf.train.Example` with its features in key order.

  Re-serialising keeps every field and so the record's length: the split
  sizes TFDS computed from the unsorted records stay true.
  """

  def write(self, path, examples):
    return super().write(path, (
        (key, tf_example_pb2.Example.FromString(record).SerializeToString(
            deterministic=True))
        for key, record in examples))


class SpectrumSuite(tfds.core.GeneratorBasedBuilder):
  """A builder whose config is one task; instantiate with `for_task`."""

  VERSION = tfds.core.Version(SUITE_VERSION)
  RELEASE_NOTES = {SUITE_VERSION: "Spectrum Suite as built by spectrax."}
  BUILDER_CONFIGS = []

  def __init__(self, *, spec: TaskSpec | None = None,
               ctx: BuildContext | None = None, **kwargs):
    self._spec = spec
    self._ctx = ctx
    self._split_cache: dict[str, list[Instance]] | None = None
    super().__init__(**kwargs)

  @classmethod
  def for_task(cls, spec: TaskSpec, ctx: BuildContext, data_dir: str
               ) -> "SpectrumSuite":
    config = tfds.core.BuilderConfig(name=spec.name, version=SUITE_VERSION,
                                     release_notes=dict(cls.RELEASE_NOTES),
                                     description=spec.about or spec.name)
    return cls(spec=spec, ctx=ctx, config=config, data_dir=data_dir,
               file_format="array_record")

  def _example_writer(self) -> tfds_writer.ExampleWriter:
    return _SortedExampleWriter(file_format=self.info.file_format)

  def _splits(self) -> dict[str, list[Instance]]:
    if self._split_cache is None:
      instances = list(self._spec.generate(self._ctx))
      seen = set()
      for inst in instances:
        inst.validate(self._spec.name)
        if inst.id in seen:
          raise ValueError(f"task {self._spec.name!r}: duplicate instance id "
                           f"{inst.id!r}.")
        seen.add(inst.id)
      if not instances:
        raise ValueError(f"task {self._spec.name!r} produced no instances.")
      self._split_cache = split_instances(self._spec, instances,
                                          self._ctx.seed)
    return self._split_cache

  def _info(self) -> tfds.core.DatasetInfo:
    metadata = tfds.core.MetadataDict()
    if self._spec is not None and self._ctx is not None:
      meta = self._spec.metadata()
      meta["seed"] = self._ctx.seed
      meta["num_rows"] = {
          split: [len(x.rows) for x in insts]
          for split, insts in self._splits().items()}
      metadata.update(meta)
    return tfds.core.DatasetInfo(
        builder=self, description="Spectrum Suite task " + self.name,
        features=_features(), metadata=metadata, disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(insts)
            for split, insts in self._splits().items()}

  def _generate_examples(self, instances: list[Instance]
                         ) -> Iterator[tuple[int, dict]]:
    for i, inst in enumerate(instances):
      yield i, instance_to_record(inst)


def build_task(spec: TaskSpec, ctx: BuildContext, data_dir: str) -> str:
  """Builds one task; returns the directory holding its records."""
  builder = SpectrumSuite.for_task(spec, ctx, data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  return builder.data_dir


def task_dir(data_dir: str, task: str) -> str:
  return os.path.join(data_dir, DATASET_NAME, task, SUITE_VERSION)
