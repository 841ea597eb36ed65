"""The scorer: exact per-option log-likelihoods with the prompt computed once.

Usage::

    scorer = Scorer(model, tokenizer, mesh=mesh)
    for result in scorer.score([ScoreRequest("q1", [" yes", " no"], prompt="Is it?")]):
      print(result.id, result.logprobs, result.greedy)

Each request's prompt is placed once in a row with all of its options after it;
the model's shared-prefix mask (``prefix_segment_ids``, see
``spectrax/models/attention.py``) lets each option attend to the prompt and to
itself only, with positions continuing from the prompt's end, so an option's
score equals scoring ``prompt + option`` alone. Rows are packed to a few length
buckets (``spectrax/scoring/layout.py``) and each bucket compiles once.

Token boundaries (docs/method.md#distributional-alignment): the prompt and ``prompt + option`` are each
tokenised as one string; the option's tokens are the suffix. When the joint
tokenisation does not start with the prompt's tokens the option is flagged
(``boundary_mismatch``), counted, and scored as the prompt's tokens followed by
the option tokenised on its own; it is never silently repaired.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from spectrax.parallel import sharding
from spectrax.scoring import layout as layout_lib
from spectrax.data import templates as templates_lib
from spectrax.data.chat_template import ChatTemplate
from spectrax.data.episodes import format_episode
from spectrax.models.loss import chunked_token_stats

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ScoreRequest:
  """One question: a raw ``prompt`` or ``messages`` + ``template``, and its options.

  With a template, each option is preceded by the template's
  ``content_prefix`` (the colon template's space, docs/method.md#distributional-alignment).
  ``template`` is a name (``"chat"``: the scorer's tokenizer's own chat
  template, docs/method.md#templates) or a template object.
  """

  id: str
  options: list[str]
  prompt: str | None = None
  messages: list | None = None
  template: Any = None
  target: list[float] | None = None


@dataclasses.dataclass
class ScoreResult:
  """Per option: summed float32 log-probability of its tokens, their count,
  whether greedy decoding reproduces every one, and whether its token boundary
  was clean. ``truncated``: the prompt's start was dropped to fit."""

  id: str
  logprobs: list[float]
  num_tokens: list[int]
  greedy: list[bool]
  boundary_mismatch: list[bool]
  truncated: bool


@dataclasses.dataclass
class _Encoded:
  block: layout_lib.Block
  mismatch: list[bool]
  truncated: bool


class Scorer:
  """Scores option lists and teacher-forced sequences with one jitted function.

  Args:
    model: a ``spectrax.models.Transformer`` (parameters already placed).
    tokenizer: a ``spectrax.data.tokenizer.Tokenizer``.
    mesh: the mesh the parameters live on, of this process's devices only
      (rows are sharded over its batch axes); None: one device.
    rules: logical-axis rules (``spectrax.parallel.sharding``).
    buckets: row lengths; each (bucket, batch) shape compiles once.
    rows_per_batch: rows per jitted call; rounded up to a multiple of the
      mesh's batch parallelism.
    left_truncate: drop the prompt's start (BOS kept) of a request longer than
      the largest bucket, with a counted warning, instead of raising.
    window: requests laid out together (results stream per window).
    chunk_size: positions per chunk of float32 logits.
    same_inputs_everywhere: every process makes the same calls with the same
      requests, and `mesh` may span processes (the training mesh, for
      evaluation during training): rows are placed from the identical host
      batch and every process gets every result.
  """

  def __init__(self, model, tokenizer, *, mesh: Mesh | None = None, rules=sharding.DEFAULT_RULES,
               buckets: Sequence[int] = (256, 512, 1024, 2048, 4096), rows_per_batch: int = 8,
               left_truncate: bool = False, window: int = 256, chunk_size: int = 128,
               same_inputs_everywhere: bool = False):
    if not buckets or min(buckets) < 2:
      raise ValueError(f"Scorer(buckets={tuple(buckets)}): give row lengths of at least 2 tokens")
    if rows_per_batch < 1 or window < 1:
      raise ValueError(f"Scorer(rows_per_batch={rows_per_batch}, window={window}): both must "
                       "be >= 1")
    self.tokenizer = tokenizer
    self.mesh, self.rules = mesh, tuple(tuple(r) for r in rules)
    self.buckets = tuple(sorted(set(int(b) for b in buckets)))
    self.rows_per_batch = rows_per_batch
    self.left_truncate = left_truncate
    self.window = window
    self.softcap = model.config.final_logit_softcap
    self.chunk_size = chunk_size
    self.graphdef, self.state = nnx.split(model)
    self.stats = {"requests": 0, "options": 0, "boundary_mismatches": 0, "truncated": 0}
    self._chat: ChatTemplate | None = None
    self._batch_sharding = None
    self._global = same_inputs_everywhere
    if self._global and mesh is None:
      raise ValueError("Scorer(same_inputs_everywhere=True) needs the mesh the parameters "
                       "live on")
    if mesh is not None:
      if not self._global and any(d.process_index != jax.process_index() for d in mesh.devices.flat):
        raise ValueError("Scorer(mesh=...) must hold only this process's devices (each process "
                         "scores its own requests; see spectrax/score.py); build it from "
                         "jax.local_devices()")
      spec = sharding.logical_to_spec(("batch", "length"), self.rules, mesh)
      self._batch_sharding = NamedSharding(mesh, spec)
      axes = spec[0] if isinstance(spec[0], tuple) else (spec[0],) if spec[0] else ()
      ways = int(np.prod([mesh.shape[a] for a in axes]))
      if rows_per_batch % ways:
        rounded = -(-rows_per_batch // ways) * ways
        log.info("Scorer(rows_per_batch=%d): rounded up to %d, a multiple of the mesh's batch "
                 "parallelism (%d over axes %s)", rows_per_batch, rounded, ways, axes)
        self.rows_per_batch = rounded
    self._fn = jax.jit(self._compute)

  # -- device --------------------------------------------------------------

  def _compute(self, state, batch):
    model = nnx.merge(self.graphdef, state)
    hidden = model(batch["tokens"], batch["positions"], batch["segment_ids"],
                   batch["prefix_segment_ids"])
    return chunked_token_stats(hidden, model.head(), batch["score_target"],
                               indices=batch["score_index"], softcap=self.softcap,
                               chunk_size=self.chunk_size, with_argmax=True)

  def _run(self, batches: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Dispatches every batch before fetching any, so transfers and compute pipeline."""
    outs = []
    for batch in batches:
      if self._global:  # The same host batch on every process: each places its shards.
        batch = {k: jax.make_array_from_callback(v.shape, self._batch_sharding,
                                                 lambda index, v=v: v[index])
                 for k, v in batch.items()}
      elif self._batch_sharding is not None:
        batch = {k: jax.device_put(v, self._batch_sharding) for k, v in batch.items()}
      if self._batch_sharding is not None:
        with sharding.axis_rules(self.mesh, self.rules):
          outs.append(self._fn(self.state, batch))
      else:
        outs.append(self._fn(self.state, batch))
    if self._global:
      return [{k: sharding.host_local_array(v) for k, v in o.items()} for o in outs]
    return [{k: np.asarray(v) for k, v in jax.device_get(o).items()} for o in outs]

  # -- requests ------------------------------------------------------------

  def _encode(self, req: ScoreRequest) -> _Encoded:
    tok = self.tokenizer
    bos = [] if tok.bos_id is None else [tok.bos_id]
    if (req.prompt is None) == (req.messages is None):
      raise ValueError(f"request {req.id!r}: give exactly one of 'prompt' and "
                       "'messages' (+ 'template')")
    prefix = ""
    if req.messages is not None:
      if req.template is None:
        raise ValueError(f"request {req.id!r}: 'messages' needs a 'template' "
                         f"(one of {list(templates_lib.TEMPLATE_NAMES)})")
      try:
        template = self._template(req.template)
        text = "".join(t for t, _ in format_episode(req.messages, template,
                                                     add_generation_prompt=True))
      except ValueError as e:
        raise ValueError(f"request {req.id!r}: {e}") from e
      prefix = template.content_prefix
    else:
      text = req.prompt
    if not req.options:
      raise ValueError(f"request {req.id!r}: 'options' is empty; give at least one option")
    prompt = bos + tok.encode(text)
    if not prompt:
      raise ValueError(f"request {req.id!r}: the prompt is empty and the tokenizer has no BOS, "
                       "so nothing predicts the first option token; give a non-empty prompt")
    options, mismatch = [], []
    for option in req.options:
      joint = bos + tok.encode(text + prefix + option)
      clean = joint[:len(prompt)] == prompt
      ids = joint[len(prompt):] if clean else tok.encode(prefix + option, continuation=True)
      if not ids:
        raise ValueError(f"request {req.id!r}: option {option!r} has no tokens, so it has no "
                         "probability to score; remove it or give it text")
      options.append(np.asarray(ids, np.int32))
      mismatch.append(not clean)
    block = layout_lib.Block(np.asarray(prompt, np.int32), options)
    truncated = False
    top = self.buckets[-1]
    if block.length > top and self.left_truncate:
      drop = block.length - top
      if len(prompt) - len(bos) - drop >= (0 if bos else 1):  # BOS alone still predicts
        block.prompt = np.asarray(bos + prompt[len(bos) + drop:], np.int32)
        truncated = True
    if layout_lib.bucket_for(block, self.buckets, False) is None:
      scored, slots = block.num_slots, layout_lib.slots_for(top, False)
      how = ("pass left_truncate=True (--left_truncate) to drop the prompt's start"
             if not self.left_truncate and scored <= slots else "shorten its options")
      raise ValueError(f"request {req.id!r}: {len(prompt) + scored} tokens (prompt "
                       f"{len(prompt)} + options {scored}) do not fit the largest bucket ({top} "
                       f"tokens, at most {slots} of them option tokens); add a larger bucket "
                       f"(buckets=...) or {how}")
    if truncated:
      self.stats["truncated"] += 1
      log.warning("request %r: dropped the first %d prompt tokens to fit %d tokens "
                  "(%d requests truncated so far)", req.id, len(prompt) - len(block.prompt), top,
                  self.stats["truncated"])
    return _Encoded(block, mismatch, truncated)

  def _template(self, template):
    """A request's template: a name, ``"chat"`` (this tokenizer's chat template,
    built once), or a template object."""
    if not isinstance(template, str):
      return template
    if template != templates_lib.CHAT:
      return templates_lib.get_template(template)
    if self._chat is None:
      self._chat = ChatTemplate(self.tokenizer)
    return self._chat

  def score(self, requests: Iterable[ScoreRequest], *,
            on_error: Callable[[ScoreRequest, ValueError], None] | None = None
            ) -> Iterator[ScoreResult]:
    """Scores requests in windows; yields one ``ScoreResult`` per request, in input order.

    Args:
      requests: any iterable (consumed ``window`` requests at a time).
      on_error: called with a request that cannot be scored (malformed, too
        long) and the error, which is then skipped; None raises the
        ``ValueError`` (it names the request id).
    """
    it = iter(requests)
    while True:
      raw = list(itertools.islice(it, self.window))
      if not raw:
        return
      window, encoded = [], []
      for req in raw:
        try:
          encoded.append(self._encode(req))
        except ValueError as e:
          if on_error is None:
            raise
          on_error(req, e)
          continue
        window.append(req)
      plan = layout_lib.layout([e.block for e in encoded], self.buckets, self.rows_per_batch,
                               teacher_forced=False,
                               describe=lambda i: f"request {window[i].id!r}")
      outs = self._run(plan.batches)
      for req, enc, place in zip(window, encoded, plan.placements):
        out = outs[place.batch]
        logp = [float(out["logprob"][place.row, a:b].sum()) for a, b in place.spans]
        greedy = [bool(out["greedy"][place.row, a:b].all()) for a, b in place.spans]
        self.stats["requests"] += 1
        self.stats["options"] += len(req.options)
        self.stats["boundary_mismatches"] += sum(enc.mismatch)
        yield ScoreResult(req.id, logp, [len(o) for o in enc.block.options], greedy,
                          enc.mismatch, enc.truncated)

  # -- teacher forcing -----------------------------------------------------

  def score_episodes(self, token_lists: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Teacher-forced per-token statistics of whole sequences, several per row.

    Args:
      token_lists: per sequence ``[n]`` int token ids, BOS included.

    Returns:
      Per sequence a dict of arrays of length ``n - 1`` (positions 1..n-1):
      ``logprob`` float32 ``log p(token_i | tokens_<i)``, ``greedy`` bool
      (argmax equals ``token_i``) and ``top_prob`` float32 (the maximum
      next-token probability, for calibration).
    """
    results: list[dict[str, np.ndarray]] = []
    for first in range(0, len(token_lists), self.window):
      chunk = token_lists[first:first + self.window]
      blocks = [layout_lib.Block(np.asarray(t, np.int32), score_prompt=True) for t in chunk]
      plan = layout_lib.layout(blocks, self.buckets, self.rows_per_batch, teacher_forced=True,
                               describe=lambda i: f"sequence {first + i}")
      outs = self._run(plan.batches)
      for place in plan.placements:
        (a, b), = place.spans
        out = outs[place.batch]
        results.append({k: out[k][place.row, a:b] for k in ("logprob", "greedy", "top_prob")})
    return results
