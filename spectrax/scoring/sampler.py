"""Batched autoregressive sampling with a KV cache (docs/method.md#valid-output-coverage).

``Sampler.sample`` takes formatted prompts (e.g. ``episodes.format_episode(...,
add_generation_prompt=True)``), adds BOS when the tokenizer has one and
returns ``num_samples`` completions per prompt, each cut before the first stop
token or stop string (EOS always stops). The docs/method.md#valid-output-coverage protocol is
``temperature=1.0`` with the defaults ``top_p=1.0, top_k=0`` and
``stop_strings=("\\n", template.stop)``; callers strip the completions.

How it runs: rows (prompt, sample) are sorted by prompt length and cut into
batches of ``batch_size``; each batch is left-padded to the smallest prompt
bucket that fits (``models/decode.py`` describes the cache layout), prefilled
in one call, then decoded by a jitted ``lax.while_loop`` that stops when every
row has produced a stop token or ``max_new_tokens`` are done. One program is
compiled per (bucket, ``max_new_tokens`` rounded up to a power of two (at
least 16), greedy/top-k/top-p mode); ``max_new_tokens``,
``temperature`` and ``top_p`` values are traced. Under a mesh the batch is
split over the ``batch`` rule's axes (``data``, ``fsdp``); weights stay where
the caller placed them.

Randomness: row (prompt i, sample j) draws step t with
``fold_in(fold_in(fold_in(key(seed), i), j), t)``, so results do not depend
on batch composition, bucket or ``batch_size``.

Stop strings are cut on the host, in text. For an early exit the loop also
stops a row at any token whose text alone contains a stop string (e.g. a
newline token); the text cut then finds the string in context.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spectrax.parallel import sharding
from spectrax.models import decode
from spectrax.data.tokenizer import Tokenizer

# Prompt tokens re-decoded with a completion so SentencePiece keeps its
# leading space ("Output:" + "▁Heads" -> " Heads", not "Heads").
_CONTEXT_TOKENS = 4


def sample_token(logits: jax.Array, keys: jax.Array, temperature: jax.Array | float, *,
                 greedy: bool = False, top_k: int = 0, top_p: jax.Array | float | None = None
                 ) -> jax.Array:
  """Draws one token per row.

  Args:
    logits: ``[batch, vocab]`` float32.
    keys: ``[batch]`` typed PRNG keys.
    temperature: scalar float (> 0 unless ``greedy``).
    greedy: argmax (ties: the lowest id), ignoring everything else.
    top_k: keep the ``top_k`` largest logits (0 = all). Static.
    top_p: keep the smallest set of most likely tokens whose probability
      reaches ``top_p`` (the most likely always stays); None = off. Needs the
      logits sorted: with ``top_k`` the sort is over k entries, without it a
      full sort of ``[batch, vocab]`` every step (for a 262k vocabulary a few
      ms per step on an accelerator; pass ``top_k`` to bound it).

  Returns:
    ``[batch]`` int32 token ids.
  """
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  scaled = logits / jnp.asarray(temperature, jnp.float32)
  vocab = logits.shape[-1]
  if not top_k and top_p is None:
    return jax.vmap(jax.random.categorical)(keys, scaled).astype(jnp.int32)
  values, ids = jax.lax.top_k(scaled, min(top_k, vocab) if top_k else vocab)  # sorted, descending
  if top_p is not None:
    probs = jax.nn.softmax(values, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass of strictly more likely tokens
    values = jnp.where(before < top_p, values, -jnp.inf)
  choice = jax.vmap(jax.random.categorical)(keys, values)
  return jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


def _generate(graphdef, state, tokens, start, prompt_index, sample_index, seed, temperature,
              top_p, is_stop, max_new_tokens, *, capacity, greedy, top_k, use_top_p, mesh, rules):
  """The jitted program: prefill, then sample until every row stopped.

  Args:
    tokens: ``[batch, bucket]`` int32, left-padded prompts.
    start: ``[batch]`` int32, the first prompt slot of each row.
    prompt_index, sample_index: ``[batch]`` int32, for the PRNG keys.
    is_stop: ``[vocab]`` bool, the tokens that end a row.
    max_new_tokens: scalar int32, at most ``capacity`` (static).

  Returns:
    ``([batch, capacity]`` int32 tokens (-1 after a row stopped),
    ``[batch]`` int32 counts including the stop token).
  """
  with sharding.axis_rules(mesh, rules) if mesh is not None else contextlib.nullcontext():
    model = nnx.merge(graphdef, state)
    batch, bucket = tokens.shape
    base = jax.random.key(seed)
    row_keys = jax.vmap(lambda i, j: jax.random.fold_in(jax.random.fold_in(base, i), j))(
        prompt_index, sample_index)
    cache = decode.init_cache(model.config, batch, bucket + capacity, start)
    hidden, cache = decode.extend(model, tokens, cache, 0)
    logits = model.logits_from_hidden(hidden[:, -1:])[:, 0]

    def cond(carry):
      step, _, _, _, done, _ = carry
      return (step < max_new_tokens) & ~jnp.all(done)

    def body(carry):
      step, cache, logits, out, done, counts = carry
      keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, step)
      tok = sample_token(logits, keys, temperature, greedy=greedy, top_k=top_k,
                         top_p=top_p if use_top_p else None)
      tok = jnp.where(done, -1, tok)
      out = jax.lax.dynamic_update_slice_in_dim(out, tok[:, None], step, axis=1)
      counts = counts + (~done).astype(jnp.int32)
      done = done | is_stop[jnp.maximum(tok, 0)]
      hidden, cache = decode.extend(model, jnp.maximum(tok, 0)[:, None], cache, bucket + step)
      logits = model.logits_from_hidden(hidden)[:, 0]
      return step + 1, cache, logits, out, done, counts

    out = jnp.full((batch, capacity), -1, jnp.int32)
    carry = (jnp.zeros((), jnp.int32), cache, logits, out, jnp.zeros((batch,), bool),
             jnp.zeros((batch,), jnp.int32))
    _, _, _, out, _, counts = jax.lax.while_loop(cond, body, carry)
    return out, counts


class Sampler:
  """Samples completions of prompts from a ``spectrax.models.Transformer``.

  Args:
    model: the model, its weights already placed (e.g. ``load_hf(..., mesh=mesh)``).
    tokenizer: a ``spectrax.Tokenizer``.
    mesh: split each batch over the ``batch`` rule's mesh axes; None = one device.
    rules: the logical -> mesh axis rules (as for training).
    prompt_buckets: padded prompt lengths (BOS included); a prompt longer
      than the largest is an error.
    batch_size: rows (prompt x sample) per compiled batch; a multiple of the
      number of batch shards of the mesh.

  The sampler holds the weights the model has at construction; build a new
  one after the model's parameters change. The first ``sample`` with a new set
  of stop strings decodes every vocabulary entry once (seconds for 262k).
  """

  def __init__(self, model, tokenizer: Tokenizer, *, mesh: Mesh | None = None,
               rules=sharding.DEFAULT_RULES,
               prompt_buckets: Sequence[int] = (128, 256, 512, 1024, 2048),
               batch_size: int = 8):
    self.config = model.config
    self.graphdef, self.state = nnx.split(model)
    self.tokenizer = tokenizer
    self.mesh, self.rules = mesh, tuple(tuple(r) for r in rules)
    self.prompt_buckets = tuple(sorted(int(b) for b in prompt_buckets))
    if not self.prompt_buckets or self.prompt_buckets[0] < 1:
      raise ValueError(f"prompt_buckets={tuple(prompt_buckets)}: give positive prompt lengths")
    self.batch_size = int(batch_size)
    self._row_shardings = None
    if mesh is not None:
      spec = sharding.logical_to_spec(("batch", "length"), self.rules, mesh)
      axes = spec[0] if isinstance(spec[0], tuple) else (spec[0],) if spec[0] else ()
      shards = math.prod(mesh.shape[a] for a in axes)
      if self.batch_size % shards:
        fit = shards * -(-self.batch_size // shards)
        raise ValueError(f"batch_size={batch_size} must be a multiple of the {shards} batch shards "
                         f"(mesh axes {axes}); use batch_size={fit}")
      # tokens [batch, bucket]; start, prompt_index, sample_index [batch].
      rows = NamedSharding(mesh, PartitionSpec(spec[0]))
      self._row_shardings = (NamedSharding(mesh, spec), rows, rows, rows)
    self._programs = {}
    self._stop_string_ids: dict[tuple[str, ...], np.ndarray] = {}

  # -- text ----------------------------------------------------------------

  def sample(self, prompts: Sequence[str], *, num_samples: int = 1, max_new_tokens: int = 128,
             temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
             stop_strings: Sequence[str] = (), stop_token_ids: Sequence[int] = (),
             seed: int = 0) -> list[list[str]]:
    """``num_samples`` completions of each prompt (``temperature=0``: greedy).

    Returns:
      ``[len(prompts)][num_samples]`` strings, each cut before the first stop
      token (EOS included) or stop string, whichever comes first; not stripped.
    """
    stop_strings = tuple(s for s in stop_strings if s)
    bos = self.tokenizer.bos_id
    prompt_ids = [([bos] if bos is not None else []) + self.tokenizer.encode(p) for p in prompts]
    hard_stops = self._hard_stops(stop_token_ids)
    early = np.union1d(hard_stops, self._tokens_containing(stop_strings)).astype(np.int64)
    raw = self._run(prompt_ids, num_samples, max_new_tokens, temperature, top_p, top_k, early, seed)
    out = []
    for ids, samples in zip(prompt_ids, raw):
      texts = []
      for gen in samples:
        if len(gen) and gen[-1] in hard_stops:
          gen = gen[:-1]
        texts.append(_cut(self._completion_text(ids, gen), stop_strings))
      out.append(texts)
    return out

  def _completion_text(self, prompt_ids: list[int], gen: np.ndarray) -> str:
    context = prompt_ids[-_CONTEXT_TOKENS:]
    head = self.tokenizer.decode(context)
    full = self.tokenizer.decode(context + [int(t) for t in gen])
    return full[len(head):] if full.startswith(head) else self.tokenizer.decode(list(gen))

  def _tokens_containing(self, stop_strings: tuple[str, ...]) -> np.ndarray:
    """Ids whose text alone contains a stop string (cached per set of strings)."""
    if stop_strings not in self._stop_string_ids:
      vocab = min(self.tokenizer.vocab_size, self.config.vocab_size)
      self._stop_string_ids[stop_strings] = np.array(
          [i for i in range(vocab) if any(s in self.tokenizer.decode([i]) for s in stop_strings)]
          if stop_strings else [], np.int64)
    return self._stop_string_ids[stop_strings]

  # -- ids -----------------------------------------------------------------

  def generate_ids(self, prompt_ids: Sequence[Sequence[int]], *, num_samples: int = 1,
                   max_new_tokens: int = 128, temperature: float = 1.0, top_p: float = 1.0,
                   top_k: int = 0, stop_token_ids: Sequence[int] = (), seed: int = 0
                   ) -> list[list[list[int]]]:
    """Like ``sample`` on token ids: prompts as given (add BOS yourself).

    Returns:
      ``[len(prompt_ids)][num_samples]`` lists of generated ids, cut before
      the first stop token (EOS included).
    """
    hard_stops = self._hard_stops(stop_token_ids)
    raw = self._run(prompt_ids, num_samples, max_new_tokens, temperature, top_p, top_k,
                    hard_stops, seed)
    return [[[int(t) for t in gen[:-1 if len(gen) and gen[-1] in hard_stops else len(gen)]]
             for gen in samples] for samples in raw]

  def _hard_stops(self, stop_token_ids: Sequence[int]) -> np.ndarray:
    eos = self.config.eos_token_id
    ids = set(int(i) for i in stop_token_ids)
    ids.update((eos,) if isinstance(eos, int) else eos or ())
    if self.tokenizer.eos_id is not None:
      ids.add(int(self.tokenizer.eos_id))
    bad = sorted(i for i in ids if not 0 <= i < self.config.vocab_size)
    if bad:
      raise ValueError(f"stop token ids {bad} are outside the model vocabulary "
                       f"[0, {self.config.vocab_size})")
    return np.array(sorted(ids), np.int64)

  def _run(self, prompt_ids, num_samples, max_new_tokens, temperature, top_p, top_k, stops, seed
           ) -> list[list[np.ndarray]]:
    """Generated ids per (prompt, sample), up to and including the first stop token."""
    self._check(prompt_ids, num_samples, max_new_tokens, temperature, top_p, top_k)
    if not 0 <= seed < 2**31:
      raise ValueError(f"seed={seed}: use an integer in [0, 2**31)")
    is_stop = np.zeros(self.config.vocab_size, bool)
    is_stop[stops] = True
    rows = sorted((len(ids), i, j) for i, ids in enumerate(prompt_ids) for j in range(num_samples))
    out = [[None] * num_samples for _ in prompt_ids]
    for lo in range(0, len(rows), self.batch_size):
      chunk = rows[lo:lo + self.batch_size]
      real = len(chunk)
      chunk = chunk + [chunk[-1]] * (self.batch_size - real)  # fixed shapes; extra rows dropped
      bucket = next(b for b in self.prompt_buckets if b >= chunk[-1][0])
      tokens = np.zeros((self.batch_size, bucket), np.int32)
      for r, (n, i, _) in enumerate(chunk):
        tokens[r, bucket - n:] = prompt_ids[i]
      start = np.array([bucket - n for n, _, _ in chunk], np.int32)
      rows_in = (tokens, start, np.array([i for _, i, _ in chunk], np.int32),
                 np.array([j for _, _, j in chunk], np.int32))
      if self._row_shardings is not None:
        rows_in = tuple(jax.device_put(a, s) for a, s in zip(rows_in, self._row_shardings))
      capacity = max(16, 1 << (max_new_tokens - 1).bit_length())
      program = self._program(capacity, temperature == 0, top_k, top_p < 1.0)
      gen, counts = program(self.graphdef, self.state, *rows_in, seed,
                            np.float32(temperature or 1.0), np.float32(top_p), is_stop,
                            np.int32(max_new_tokens))
      gen, counts = sharding.host_local_array(gen), sharding.host_local_array(counts)
      for r, (_, i, j) in enumerate(chunk[:real]):
        out[i][j] = gen[r, :counts[r]]
    return out

  def _program(self, capacity, greedy, top_k, use_top_p):
    key = (capacity, greedy, top_k, use_top_p)
    if key not in self._programs:
      fn = functools.partial(_generate, capacity=capacity, greedy=greedy, top_k=top_k,
                             use_top_p=use_top_p, mesh=self.mesh, rules=self.rules)
      self._programs[key] = jax.jit(fn, static_argnums=0)
    return self._programs[key]

  def _check(self, prompt_ids, num_samples, max_new_tokens, temperature, top_p, top_k):
    if num_samples < 1 or max_new_tokens < 1:
      raise ValueError(f"num_samples={num_samples} and max_new_tokens={max_new_tokens} "
                       "must be >= 1")
    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
      raise ValueError(f"temperature={temperature} (>= 0), top_p={top_p} (in (0, 1]) or "
                       f"top_k={top_k} (>= 0) is out of range")
    longest = max((len(ids) for ids in prompt_ids), default=0)
    if min((len(ids) for ids in prompt_ids), default=1) == 0:
      raise ValueError("an empty prompt (no tokens and no BOS) cannot be continued")
    if longest > self.prompt_buckets[-1]:
      raise ValueError(f"a prompt has {longest} tokens, more than the largest prompt bucket "
                       f"{self.prompt_buckets[-1]}; add a larger bucket (prompt_buckets=...)")
    limit = self.config.max_position_embeddings
    if longest + max_new_tokens > limit:
      raise ValueError(f"prompt ({longest} tokens) + max_new_tokens={max_new_tokens} exceeds the "
                       f"model's max_position_embeddings={limit}; shorten one of them")


def _cut(text: str, stop_strings: Sequence[str]) -> str:
  """``text`` before the first occurrence of any stop string."""
  ends = [i for i in (text.find(s) for s in stop_strings) if i >= 0]
  return text[:min(ends)] if ends else text
