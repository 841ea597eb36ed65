"""spectrax.sampler and models/decode.py: KV-cache decoding against the full forward.

Tiny random models (a Gemma 3 one whose sliding window, 4, is shorter than
prompt + generation, and a Llama one) over a 130-token character vocabulary,
so completions are readable strings and stop strings are exact.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats
from test_models import random_model, tiny_config

from spectrax.parallel import sharding
from spectrax.models import decode, load_hf, reconfigure
from spectrax.scoring.sampler import Sampler, sample_token
from spectrax.data.tokenizer import Tokenizer

VOCAB, BOS, EOS = 130, 128, 129
PROMPT_LENS = (3, 7, 12)  # across both buckets (8, 16)
NEW = 10


class CharTokenizer(Tokenizer):
  """ASCII characters are ids 0-127; BOS 128, EOS 129."""

  vocab_size, bos_id, eos_id = VOCAB, BOS, EOS

  def _encode(self, text):
    return [ord(c) for c in text]

  def id_to_piece(self, token_id):
    return {BOS: "<s>", EOS: "</s>"}.get(token_id, chr(token_id))

  def piece_to_id(self, piece):
    return {"<s>": BOS, "</s>": EOS}.get(piece, ord(piece) if len(piece) == 1 else None)

  def decode(self, ids):
    return "".join(self.id_to_piece(int(i)) for i in ids)


@pytest.fixture(scope="module")
def models():
  # Untied heads: a tied random model's greedy output just repeats its last token.
  return {f: random_model(tiny_config(f, vocab_size=VOCAB, eos_token_id=None, bos_token_id=None,
                                      tie_embeddings=False))
          for f in ("gemma3", "llama")}


@pytest.fixture(scope="module")
def samplers(models):
  return {f: Sampler(m, CharTokenizer(), prompt_buckets=(8, 16), batch_size=4)
          for f, m in models.items()}


@pytest.fixture(scope="module")
def prompts():
  rng = np.random.RandomState(0)
  return [[BOS] + list(rng.randint(0, 128, n - 1)) for n in PROMPT_LENS]


def greedy_reference(model, prompt, steps, length=32):
  """Argmax of the full forward on the growing sequence (right-padded: causal)."""
  logits_fn = jax.jit(model.logits)
  seq = list(prompt)
  for _ in range(steps):
    buf = np.zeros((1, length), np.int32)
    buf[0, :len(seq)] = seq
    seq.append(int(np.argmax(np.asarray(logits_fn(jnp.asarray(buf)))[0, len(seq) - 1])))
    if seq[-1] == EOS:
      return seq[len(prompt):-1]
  return seq[len(prompt):]


@pytest.mark.parametrize("family", ["gemma3", "llama"])
def test_greedy_matches_full_forward(family, models, samplers, prompts):
  got = samplers[family].generate_ids(prompts, max_new_tokens=NEW, temperature=0)
  for prompt, (ids,) in zip(prompts, got):
    assert ids == greedy_reference(models[family], prompt, NEW)


def _extend_logits(model, tokens, cache, slot):
  hidden, cache = decode.extend(model, tokens, cache, slot)
  return model.logits_from_hidden(hidden), cache


@pytest.mark.parametrize("family", ["gemma3", "llama"])
def test_cache_logits_match_full_forward(family, models):
  """Teacher-forced: prefill two left-padded prompts, then feed 8 fixed tokens."""
  model = models[family]
  rng = np.random.RandomState(1)
  lens, bucket, steps = (5, 9), 12, 8
  rows = [rng.randint(0, 128, n + steps) for n in lens]  # prompt + forced continuation
  tokens = np.zeros((2, bucket), np.int32)
  for r, n in enumerate(lens):
    tokens[r, bucket - n:] = rows[r][:n]
  full = np.zeros((2, max(lens) + steps), np.int32)
  for r, row in enumerate(rows):
    full[r, :len(row)] = row
  ref = np.asarray(jax.jit(model.logits)(jnp.asarray(full)))

  cache = decode.init_cache(model.config, 2, bucket + steps, np.array([bucket - n for n in lens]))
  step = nnx.jit(_extend_logits)
  logits, cache = step(model, jnp.asarray(tokens), cache, 0)
  for t in range(steps + 1):
    for r, n in enumerate(lens):
      np.testing.assert_allclose(np.asarray(logits)[r, -1], ref[r, n - 1 + t], atol=1e-4, rtol=0)
    if t < steps:
      forced = jnp.asarray([[row[n + t]] for row, n in zip(rows, lens)], jnp.int32)
      logits, cache = step(model, forced, cache, bucket + t)
  if family == "gemma3":  # control: the window changes these logits
    wide = reconfigure(model, layer_windows=(None,) * model.config.num_layers)
    assert np.abs(np.asarray(jax.jit(wide.logits)(jnp.asarray(full))) - ref).max() > 1e-2


def test_greedy_matches_transformers_generate(tmp_path_factory, prompts):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from test_hf import randomize  # pylint: disable=g-import-not-at-top
  cfg = transformers.LlamaConfig(
      vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_attention_heads=4,
      num_key_value_heads=2, num_hidden_layers=3, max_position_embeddings=64,
      attn_implementation="eager", tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS)
  hf = randomize(transformers.AutoModelForCausalLM.from_config(cfg).eval())
  path = str(tmp_path_factory.mktemp("llama"))
  hf.save_pretrained(path)
  ours = Sampler(load_hf(path), CharTokenizer(), prompt_buckets=(16,), batch_size=4)
  got = ours.generate_ids(prompts, max_new_tokens=NEW, temperature=0)
  for prompt, (ids,) in zip(prompts, got):
    with torch.no_grad():
      out = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=NEW,
                        eos_token_id=EOS, pad_token_id=EOS)[0, len(prompt):].tolist()
    assert ids == (out[:out.index(EOS)] if EOS in out else out)
    assert len(ids) > 3  # not a trivial early stop

  # The same model sharded over a (data 2, fsdp 2, tensor 2) mesh gives the same ids.
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  sharded = Sampler(load_hf(path, mesh=mesh), CharTokenizer(), mesh=mesh, prompt_buckets=(16,),
                    batch_size=4)
  assert sharded.generate_ids(prompts, max_new_tokens=NEW, temperature=0) == got


def test_stops_cut_completions(samplers):
  """Sampled at temperature 1: the same seed draws the same tokens up to the stop."""
  sampler = samplers["llama"]
  kwargs = dict(max_new_tokens=NEW, temperature=1.0, seed=3)
  (ids,), = sampler.generate_ids([[BOS, 65, 66]], **kwargs)
  (text,), = sampler.sample(["AB"], **kwargs)
  assert text == CharTokenizer().decode(ids) and len(set(text)) > 4, text
  stop_id = ids[5]
  cut = ids[:ids.index(stop_id)]
  assert sampler.generate_ids([[BOS, 65, 66]], stop_token_ids=[stop_id], **kwargs) == [[cut]]
  expected = CharTokenizer().decode(cut)
  assert sampler.sample(["AB"], stop_token_ids=[stop_id], **kwargs) == [[expected]]
  for stop in (text[5], text[4:7], "never"):  # one token (early exit), several tokens, absent
    expected = text[:text.find(stop)] if stop in text else text
    assert sampler.sample(["AB"], stop_strings=["never!", stop], **kwargs) == [[expected]]


def test_batching_matches_one_at_a_time(samplers, prompts):
  sampler = samplers["gemma3"]  # batch 4 holds 6 rows in 2 batches, two buckets
  batched = sampler.generate_ids(prompts, num_samples=2, max_new_tokens=NEW, temperature=0)
  for prompt, samples in zip(prompts, batched):
    alone = sampler.generate_ids([prompt], max_new_tokens=NEW, temperature=0)[0][0]
    assert samples == [alone, alone]


def test_sampling_is_deterministic_per_seed(samplers):
  sampler = samplers["gemma3"]
  one = sampler.sample(["Hello", "World!"], num_samples=3, max_new_tokens=NEW, seed=7)
  assert one == sampler.sample(["Hello", "World!"], num_samples=3, max_new_tokens=NEW, seed=7)
  assert one != sampler.sample(["Hello", "World!"], num_samples=3, max_new_tokens=NEW, seed=8)
  assert len(set(one[0])) == 3  # samples of one prompt differ


def test_top_k_1_and_tiny_top_p_are_greedy(samplers, prompts):
  sampler = samplers["gemma3"]
  greedy = sampler.generate_ids(prompts, max_new_tokens=NEW, temperature=0)
  assert sampler.generate_ids(prompts, max_new_tokens=NEW, top_k=1, seed=5) == greedy
  assert sampler.generate_ids(prompts, max_new_tokens=NEW, top_p=1e-6, seed=5) == greedy


def chi_square_ok(tokens, probs):
  """Pearson chi-square at p = 1e-3, bins with expected count < 5 merged."""
  n = len(tokens)
  observed = np.bincount(tokens, minlength=len(probs))
  big = probs * n >= 5
  obs = np.append(observed[big], observed[~big].sum())
  exp = np.append(probs[big] * n, probs[~big].sum() * n)
  obs, exp = (obs, exp) if exp[-1] >= 5 else (obs[:-1], exp[:-1])
  return ((obs - exp) ** 2 / exp).sum() < stats.chi2.ppf(0.999, len(obs) - 1)


@pytest.mark.parametrize("top_k,top_p", [(0, None), (3, None), (0, 0.75), (5, 0.6)])
def test_sample_token_distribution(top_k, top_p):
  n, temperature = 6000, 0.7
  logits = jnp.asarray(np.random.RandomState(0).randn(1, 10).repeat(n, 0), jnp.float32)
  keys = jax.random.split(jax.random.key(0), n)
  tokens = np.asarray(sample_token(logits, keys, temperature, top_k=top_k, top_p=top_p))
  probs = np.asarray(jax.nn.softmax(logits[0] / temperature), np.float64)
  order = np.argsort(-probs)
  keep = np.zeros(10, bool)
  keep[order[:top_k or 10]] = True
  if top_p is not None:  # the smallest prefix of the kept, renormalised, reaching top_p
    kept = probs[order] * keep[order] / (probs * keep).sum()
    keep[order[np.cumsum(kept) - kept >= top_p]] = False
  target = np.where(keep, probs, 0) / (probs * keep).sum()
  assert set(tokens) <= set(np.flatnonzero(keep))
  assert chi_square_ok(tokens, target)
  assert not chi_square_ok(tokens, np.roll(target, 1))  # control: power


def test_first_token_distribution_matches_softmax(models):
  """End to end: 2000 first tokens at T=1.5 against softmax(model logits / T)."""
  model = models["llama"]
  sampler = Sampler(model, CharTokenizer(), prompt_buckets=(8,), batch_size=500)
  prompt = [BOS, ord("H"), ord("i")]
  (samples,) = sampler.generate_ids([prompt], num_samples=2000, max_new_tokens=1, temperature=1.5)
  tokens = np.array([ids[0] if ids else EOS for ids in samples])  # EOS is cut
  logits = np.asarray(model.logits(jnp.asarray([prompt])))[0, -1]
  probs = np.asarray(jax.nn.softmax(jnp.asarray(logits) / 1.5), np.float64)
  assert chi_square_ok(tokens, probs)
  assert not chi_square_ok(tokens, np.asarray(jax.nn.softmax(jnp.asarray(logits)), np.float64))


def test_errors_name_the_fix(samplers):
  sampler = samplers["llama"]
  with pytest.raises(ValueError, match="largest prompt bucket 16"):
    sampler.sample(["x" * 40])
  with pytest.raises(ValueError, match="max_position_embeddings"):
    sampler.sample(["x"], max_new_tokens=1000)
  with pytest.raises(ValueError, match="top_p"):
    sampler.sample(["x"], top_p=0.0)
  with pytest.raises(ValueError, match=r"seed=2147483648: use an integer in \[0, 2\*\*31\)"):
    sampler.sample(["x"], seed=2**31)
