"""The Grain input pipeline: (task, episode index) → packed training batches.

  MapDataset over (task, episode) with a task mixture, shuffled per epoch
  → sharded per process (process_index::process_count)
  → episode sampling + tokenisation (docs/method.md#episode-sampling and docs/method.md#episodes-and-templates), in worker processes
  → grain.experimental first-fit / best-fit packing into rows of seq_len
  → batches {inputs, targets, loss_mask, segment_ids, positions}

Every array is [batch, seq_len]; `segment_ids` are 1-based per episode in a
row (0 = padding), `positions` restart at 0 in each episode, `loss_mask` is
float32 and aligned to `targets`. Nothing is dropped silently: each episode
carries a stats record through packing, and `BatchIterator.stats` reports
episodes seen, dropped, truncated, tokenisation mismatches and packing
efficiency. The iterator's state (Grain's plus the counters) round-trips
exactly through `get_state`/`set_state` and orbax's grain handler.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence

import grain
import numpy as np

from spectrax.data import templates
from spectrax.data.episode_planning import TaskPlan, plan_messages
from spectrax.data.episodes import tokenize_episode, training_arrays
from spectrax.data.packing import RetainingBestFitPackIterDataset
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import Tokenizer, load_tokenizer

PACKERS = {
    "retained_best_fit": RetainingBestFitPackIterDataset,
    "first_fit": grain.experimental.FirstFitPackIterDataset,
    "best_fit": grain.experimental.BestFitPackIterDataset,
}

# Stats record columns: one row per episode, packed alongside its tokens.
STAT_FIELDS = ("seen", "dropped", "truncated", "mismatch", "loss_tokens")
_SEEN, _DROPPED, _TRUNCATED, _MISMATCH, _LOSS = range(len(STAT_FIELDS))


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Everything that decides which batches the pipeline yields."""

  suite_dir: str
  template: str = "gemma"
  tokenizer: str | None = None  # None: the suite's default tokenizer.
  tasks: tuple[str, ...] = ()  # Empty: every train-suite ICL task.
  mixture: Mapping[str, float] | None = None  # None: natural proportions.
  split: str = "train"  # Instance split: "train", or "test" for eval loss.
  seq_len: int = 1024
  max_tokens: int = 1024  # Episode length cap, BOS included (docs/method.md#episode-sampling).
  batch_size: int = 8  # Global rows per batch (all processes together).
  seed: int = 0
  num_epochs: int | None = 1  # None repeats forever.
  shuffle: bool = True
  # "retained_best_fit" (spectrax.packing; densest), or Grain's "first_fit"
  # / "best_fit", which flush every open row when one episode does not fit.
  packing: str = "retained_best_fit"
  num_packing_bins: int = 0  # 0: 1024 open rows (or the batch, if larger).
  max_episodes_per_row: int = 0  # 0: seq_len // 8.
  worker_count: int = 0  # Grain worker processes (0 = in the main process).
  worker_buffer_size: int = 2
  check_joint_tokenization: bool = True

  def validate(self, process_count: int = 1) -> None:
    """Raises ValueError naming the field and the fix."""
    templates.get_template(self.template)
    if self.packing not in PACKERS:
      raise ValueError(f"data.packing={self.packing!r}: use one of "
                       f"{sorted(PACKERS)}.")
    if self.seq_len < 2:
      raise ValueError(f"data.seq_len={self.seq_len} must be at least 2.")
    if self.max_tokens > self.seq_len + 1:
      raise ValueError(
          f"data.max_tokens={self.max_tokens} does not fit data.seq_len="
          f"{self.seq_len}: an episode of n tokens fills n-1 positions, so set "
          f"max_tokens <= {self.seq_len + 1} or raise seq_len.")
    if self.batch_size % process_count:
      raise ValueError(f"data.batch_size={self.batch_size} must be divisible "
                       f"by the process count {process_count}.")
    if self.split not in ("train", "test"):
      raise ValueError(f"data.split={self.split!r}: use 'train' or 'test'.")
    if self.mixture is not None:
      bad = {k: v for k, v in self.mixture.items() if not v > 0}
      if bad:
        raise ValueError(f"data.mixture weights must be positive: {bad}.")


class EpisodeToArrays(grain.transforms.Map):
  """(task index, episode index) → one episode's arrays + its stats record.

  Picklable: the tokenizer is loaded lazily in each worker process.
  """

  def __init__(self, plans: Sequence[TaskPlan], tokenizer_path: str,
               config: DataConfig, tokenizer: Tokenizer | None = None):
    self._plans = list(plans)
    self._tokenizer_path = tokenizer_path
    self._tokenizer = tokenizer
    self._config = config

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_tokenizer"] = None
    return state

  @property
  def tokenizer(self) -> Tokenizer:
    if self._tokenizer is None:
      self._tokenizer = load_tokenizer(self._tokenizer_path)
    return self._tokenizer

  def map(self, element):
    task_index, episode_index = element
    cfg = self._config
    messages = plan_messages(self._plans[task_index], episode_index)
    ep = tokenize_episode(messages, cfg.template, self.tokenizer,
                          max_tokens=cfg.max_tokens,
                          check_joint=cfg.check_joint_tokenization)
    stats = np.zeros((1, len(STAT_FIELDS)), np.int32)
    stats[0, _SEEN] = 1
    stats[0, _TRUNCATED] = ep.truncated
    stats[0, _MISMATCH] = ep.mismatch
    if ep.num_loss_tokens == 0:
      # Dropped (docs/method.md#episode-sampling): no tokens, but its stats record still travels.
      stats[0, _DROPPED] = 1
      empty = np.zeros((0,), np.int32)
      return {"inputs": empty, "targets": empty,
              "loss_mask": np.zeros((0,), np.float32), "stats": stats}
    arrays = training_arrays(ep)
    stats[0, _LOSS] = ep.num_loss_tokens
    return {**arrays, "stats": stats}


def _pair(task_index: int):
  return lambda e: (task_index, e)


def episode_index_dataset(plans: Sequence[TaskPlan], config: DataConfig,
                          names: Sequence[str]) -> grain.MapDataset:
  """The (task, episode) sequence of the whole run, before process sharding."""
  per_task = [grain.MapDataset.range(p.num_episodes).map(_pair(i))
              for i, p in enumerate(plans)]
  total = sum(p.num_episodes for p in plans)
  if config.mixture is None:
    ds = grain.MapDataset.concatenate(per_task)
    if config.shuffle:
      ds = ds.shuffle(config.seed)
    return ds.repeat(config.num_epochs)
  missing = [n for n in names if n not in config.mixture]
  if missing:
    raise ValueError(f"data.mixture has no weight for task(s) {missing}; give "
                     "every task in data.tasks a weight.")
  per_task = [(d.shuffle(config.seed + i) if config.shuffle else d)
              .repeat(None) for i, d in enumerate(per_task)]
  ds = grain.MapDataset.mix(per_task, [config.mixture[n] for n in names])
  if config.num_epochs is None:
    return ds
  return ds[:total * config.num_epochs]


@dataclasses.dataclass
class PipelineStats:
  """Counters over everything this process has yielded."""

  episodes_seen: int = 0
  episodes_dropped: int = 0
  episodes_truncated: int = 0
  tokenization_mismatches: int = 0
  loss_tokens: int = 0
  rows: int = 0
  tokens: int = 0
  nonpad_tokens: int = 0

  @property
  def packing_efficiency(self) -> float:
    return self.nonpad_tokens / self.tokens if self.tokens else 0.0

  def as_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["packing_efficiency"] = self.packing_efficiency
    return d


class BatchIterator:
  """Packed batches with counters; checkpointable with orbax's grain handler."""

  def __init__(self, grain_iterator, config: DataConfig):
    self._it = grain_iterator
    self._config = config
    self.stats = PipelineStats()

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._it)
    stats = batch.pop("stats")
    live = batch.pop("stats_segment_ids") > 0
    totals = (stats * live[..., None]).sum(axis=(0, 1))
    s = self.stats
    s.episodes_seen += int(totals[_SEEN])
    s.episodes_dropped += int(totals[_DROPPED])
    s.episodes_truncated += int(totals[_TRUNCATED])
    s.tokenization_mismatches += int(totals[_MISMATCH])
    s.loss_tokens += int(totals[_LOSS])
    s.rows += batch["inputs"].shape[0]
    s.tokens += batch["inputs"].size
    s.nonpad_tokens += int((batch["segment_ids"] > 0).sum())
    if s.episodes_seen >= 256 and s.episodes_dropped == s.episodes_seen:
      raise ValueError(
          f"all {s.episodes_seen} episodes so far were dropped: no example "
          f"fits data.max_tokens={self._config.max_tokens} (seq_len "
          f"{self._config.seq_len}). Raise seq_len and max_tokens.")
    return batch

  def get_state(self) -> bytes:
    return json.dumps({"grain": self._it.get_state(),
                       "stats": dataclasses.asdict(self.stats)}).encode()

  def set_state(self, state: bytes) -> None:
    d = json.loads(state)
    self._it.set_state(d["grain"])
    self.stats = PipelineStats(**d["stats"])

  def start_prefetch(self) -> None:
    start = getattr(self._it, "start_prefetch", None)
    if start is not None:
      start()

  def close(self) -> None:
    close = getattr(self._it, "close", None)
    if close is not None:
      close()


class _Finalise(grain.transforms.Map):
  """Renames packed features; pads a short final batch with empty rows so no
  episode is lost and every batch has the same shape."""

  def __init__(self, rows: int):
    self._rows = rows

  def map(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    short = self._rows - batch["inputs"].shape[0]
    if short:
      batch = {k: np.concatenate([v, np.zeros((short,) + v.shape[1:], v.dtype)])
               for k, v in batch.items()}
    return {
      "inputs": batch["inputs"],
      "targets": batch["targets"],
      "loss_mask": batch["loss_mask"],
      "segment_ids": batch["inputs_segment_ids"],
      "positions": batch["inputs_positions"],
      "stats": batch["stats"],
      "stats_segment_ids": batch["stats_segment_ids"],
  }


class Pipeline:
  """Resolves a `DataConfig` against a suite and builds iterators."""

  def __init__(self, config: DataConfig, *, process_index: int = 0,
               process_count: int = 1, tokenizer: Tokenizer | None = None):
    config.validate(process_count)
    self.config = config
    self.process_index = process_index
    self.process_count = process_count
    self.suite = Suite(config.suite_dir)
    self.task_names = list(config.tasks) or self.suite.task_names("train")
    if not self.task_names:
      raise ValueError(f"the suite at {config.suite_dir} has no train-suite "
                       "ICL tasks; name tasks in data.tasks.")
    self.plans = [TaskPlan.make(self.suite.source(n, config.split), config.seed)
                  for n in self.task_names]
    self.tokenizer_path = config.tokenizer or self.suite.tokenizer_path
    if self.tokenizer_path is None:
      raise ValueError("data.tokenizer is not set and the suite has no default "
                       "tokenizer; set data.tokenizer to an HF directory or a "
                       "SentencePiece .model.")
    self.tokenizer = tokenizer or load_tokenizer(self.tokenizer_path)
    t = templates.get_template(config.template)
    self.tokenizer.require_single_tokens(t.special_tokens, t.name)
    self.episode_fn = EpisodeToArrays(self.plans, self.tokenizer_path, config,
                                      tokenizer=self.tokenizer)

  @property
  def num_episodes(self) -> int:
    return sum(p.num_episodes for p in self.plans)

  def episodes(self) -> grain.MapDataset:
    """This process's (task, episode) → arrays, before packing."""
    ds = episode_index_dataset(self.plans, self.config, self.task_names)
    ds = ds[self.process_index::self.process_count]
    return ds.map(self.episode_fn)

  def check_fits(self, probes: int = 8) -> None:
    """Errors early when no probed episode of a task fits max_tokens."""
    for i, plan in enumerate(self.plans):
      n = min(probes, plan.num_episodes)
      results = [self.episode_fn.map((i, e)) for e in range(n)]
      if all(r["stats"][0, _DROPPED] for r in results):
        raise ValueError(
            f"task {plan.source.name!r}: none of its first {n} episodes has a "
            f"whole example within data.max_tokens={self.config.max_tokens} "
            f"(seq_len {self.config.seq_len}); raise both, or leave the task "
            "out of data.tasks.")

  def iterator(self) -> BatchIterator:
    cfg = self.config
    rows = cfg.batch_size // self.process_count
    length = {"inputs": cfg.seq_len, "targets": cfg.seq_len,
              "loss_mask": cfg.seq_len,
              "stats": cfg.max_episodes_per_row or max(1, cfg.seq_len // 8)}
    bins = cfg.num_packing_bins or max(1024, rows)
    episodes = self.episodes().to_iter_dataset()
    meta = ("targets", "loss_mask")
    if cfg.packing == "retained_best_fit":
      ds = RetainingBestFitPackIterDataset(
          episodes, length_struct=length, num_packing_bins=bins,
          meta_features=meta)
    else:
      ds = PACKERS[cfg.packing](
          episodes, length_struct=length, num_packing_bins=bins,
          seed=cfg.seed, shuffle_bins=cfg.shuffle, meta_features=meta)
    ds = ds.batch(rows, drop_remainder=False).map(_Finalise(rows))
    if cfg.worker_count > 0:
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=cfg.worker_count,
          per_worker_buffer_size=cfg.worker_buffer_size))
    return BatchIterator(iter(ds), cfg)


class ShardedBatches:
  """Several data shards' iterators as one: their rows concatenated in shard order.

  A run's data order is fixed by its number of data shards (``data.shards``),
  not by how many processes run it: with S shards and P processes, process
  i owns shards ``i*S/P .. (i+1)*S/P - 1`` and each shard packs
  ``batch_size / S`` rows per step. One process with 2 shards therefore sees
  exactly the global batches of two processes with one shard each. At the
  end of the data a drained shard contributes empty (all-padding) rows until
  every shard is drained, as a drained process does in the trainer.
  """

  def __init__(self, iterators: Sequence[BatchIterator]):
    self._its = list(iterators)
    self._drained: set[int] = set()

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    """Every shard's rows; a drained shard gives empty rows until all are."""
    parts = []
    for i, it in enumerate(self._its):
      if i not in self._drained:
        try:
          parts.append(next(it))
          continue
        except StopIteration:
          self._drained.add(i)
      parts.append(None)
    live = [p for p in parts if p is not None]
    if not live:
      raise StopIteration
    parts = [p if p is not None else {k: np.zeros_like(v) for k, v in live[0].items()}
             for p in parts]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  @property
  def stats(self) -> PipelineStats:
    fields = [f.name for f in dataclasses.fields(PipelineStats)]
    return PipelineStats(**{f: sum(getattr(it.stats, f) for it in self._its) for f in fields})

  def get_state(self) -> bytes:
    return json.dumps([it.get_state().decode() for it in self._its]).encode()

  def set_state(self, state: bytes) -> None:
    states = json.loads(state)
    if not isinstance(states, list) or len(states) != len(self._its):
      raise ValueError(f"data iterator state holds {len(states) if isinstance(states, list) else 1}"
                       f" shard(s), this process reads {len(self._its)}: restore with the same "
                       "data.shards and process count")
    for it, s in zip(self._its, states):
      it.set_state(s.encode())

  def start_prefetch(self) -> None:
    for it in self._its:
      it.start_prefetch()

  def close(self) -> None:
    for it in self._its:
      it.close()


BATCH_DTYPES = {"inputs": np.int32, "targets": np.int32, "loss_mask": np.float32,
                "segment_ids": np.int32, "positions": np.int32}


def empty_batch(rows: int, seq_len: int) -> dict[str, np.ndarray]:
  """All-padding rows (no tokens, no loss): a drained process's share of a step."""
  return {k: np.zeros((rows, seq_len), d) for k, d in BATCH_DTYPES.items()}


def process_shards(num_shards: int, process_index: int, process_count: int) -> range:
  """The data shards process ``process_index`` of ``process_count`` reads."""
  if num_shards < 1 or num_shards % process_count:
    raise ValueError(f"data.shards={num_shards} must be a positive multiple of the process "
                     f"count {process_count} (0 = one shard per process)")
  per = num_shards // process_count
  return range(process_index * per, (process_index + 1) * per)


def shard_pipelines(config: DataConfig, num_shards: int = 0, process_index: int = 0,
                    process_count: int = 1, tokenizer: Tokenizer | None = None
                    ) -> list["Pipeline"]:
  """This process's shard pipelines (``num_shards=0``: one per process)."""
  shards = process_shards(num_shards or process_count, process_index, process_count)
  first = Pipeline(config, process_index=shards[0], process_count=num_shards or process_count,
                   tokenizer=tokenizer)
  return [first] + [Pipeline(config, process_index=s, process_count=first.process_count,
                             tokenizer=first.tokenizer) for s in shards[1:]]


def local_iterator(pipelines: Sequence["Pipeline"]):
  """One iterator over this process's shard pipelines (see ``ShardedBatches``)."""
  its = [p.iterator() for p in pipelines]
  return its[0] if len(its) == 1 else ShardedBatches(its)


def make_global_batch(batch: Mapping[str, np.ndarray], sharding):
  """This process's rows → global `jax.Array`s laid out by `sharding`."""
  import jax  # pylint: disable=g-import-not-at-top
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in batch.items()}
