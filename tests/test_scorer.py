"""spectrax.scoring.scorer against transformers' PyTorch models, one (prompt, option) per forward.

Tiny random Llama and Gemma 3 models (Gemma: sliding window 5, soft-capping,
so the shared-prefix mask's window and positions are exercised) are built in
PyTorch, saved, loaded with ``load_hf`` and scored with the conftest
SentencePiece tokenizer. Packed shared-prefix scores must equal torch's
per-option log-likelihoods within 1e-4 (float32).
"""

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from spectrax.scoring import layout as scoring_layout  # noqa: E402
from spectrax.parallel import sharding  # noqa: E402
from spectrax.data.episodes import format_episode  # noqa: E402
from spectrax.models import load_hf  # noqa: E402
from spectrax.models.attention import attention_mask  # noqa: E402
from spectrax.models.config import GLOBAL_WINDOW  # noqa: E402
from spectrax.scoring.scorer import Scorer, ScoreRequest  # noqa: E402

TOL = 1e-4
BUCKETS = (32, 64, 128)
WORDS = "Heads Tails coin flips bias draw number red blue ball urn the a Question Answer".split()


def hf_config(family, vocab):
  common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, attn_implementation="eager", max_position_embeddings=256)
  if family == "gemma3":
    return transformers.Gemma3TextConfig(
        **common, num_hidden_layers=2, head_dim=16, query_pre_attn_scalar=24, sliding_window=5,
        layer_types=["sliding_attention", "full_attention"], final_logit_softcapping=5.0)
  return transformers.LlamaConfig(**common, num_hidden_layers=2, tie_word_embeddings=False)


def randomize(model, seed):
  gen = torch.Generator().manual_seed(seed)
  zero_centred = "Gemma" in type(model).__name__
  with torch.no_grad():
    for name, p in model.named_parameters():
      noise = torch.randn(p.shape, generator=gen)
      p.copy_(noise * 0.2 + (0.0 if zero_centred else 1.0) if "norm" in name else noise * 0.15)
  return model


@pytest.fixture(scope="module")
def models(tmp_path_factory, sp_tokenizer):
  """{family: (torch model, spectrax Scorer)}."""
  out = {}
  for seed, family in enumerate(("llama", "gemma3")):
    torch.manual_seed(seed)
    ref = randomize(transformers.AutoModelForCausalLM.from_config(
        hf_config(family, sp_tokenizer.vocab_size)).eval(), seed)
    path = str(tmp_path_factory.mktemp(family))
    ref.save_pretrained(path)
    out[family] = (ref, Scorer(load_hf(path), sp_tokenizer, buckets=BUCKETS, rows_per_batch=4))
  return out


def torch_option_score(model, prompt_ids, option_ids):
  """Summed log p(option | prompt) and greedy flag from one full forward of prompt + option."""
  ids = list(prompt_ids) + list(option_ids)
  with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].float()
  logp = torch.log_softmax(logits, -1).numpy()
  p = len(prompt_ids)
  rows = np.arange(p - 1, len(ids) - 1)
  targets = np.asarray(option_ids, np.int64)
  greedy = bool((logp[rows].argmax(-1) == targets).all())
  return float(logp[rows, targets].sum()), greedy


def make_requests(n, seed=0):
  rng = np.random.RandomState(seed)
  reqs = []
  for i in range(n):
    prompt = " ".join(rng.choice(WORDS, rng.randint(1, 14)))
    k = rng.randint(2, 6)
    options = [" " + " ".join(rng.choice(WORDS, rng.randint(1, 3))) for _ in range(k)]
    reqs.append(ScoreRequest(f"r{i}", options, prompt=prompt))
  return reqs


def prompt_ids(tok, text):
  return [tok.bos_id] + tok.encode(text)


@pytest.fixture(scope="module")
def requests_():
  return make_requests(14)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_matches_torch_per_option(models, requests_, sp_tokenizer, family):
  ref, scorer = models[family]
  results = list(scorer.score(requests_))
  assert [r.id for r in results] == [r.id for r in requests_]
  worst = 0.0
  for req, res in zip(requests_, results):
    p = prompt_ids(sp_tokenizer, req.prompt)
    for k, option in enumerate(req.options):
      joint = prompt_ids(sp_tokenizer, req.prompt + option)
      assert joint[:len(p)] == p and not res.boundary_mismatch[k]
      want, greedy = torch_option_score(ref, p, joint[len(p):])
      assert res.num_tokens[k] == len(joint) - len(p)
      worst = max(worst, abs(res.logprobs[k] - want))
      assert res.greedy[k] == greedy, (req.id, k)
  assert worst <= TOL, f"max |ours - torch| = {worst:.3g}"
  assert not any(r.truncated for r in results)


def test_greedy_flag_true_for_the_models_own_continuation(models, requests_, sp_tokenizer):
  """Control for the test above, where random options are never greedy."""
  ref, scorer = models["llama"]
  checked = 0
  for req in requests_:
    p = prompt_ids(sp_tokenizer, req.prompt)
    with torch.no_grad():
      best = int(ref(torch.tensor([p])).logits[0, -1].argmax())
    text = sp_tokenizer.decode([best])
    if prompt_ids(sp_tokenizer, req.prompt + text)[len(p):] != [best]:
      continue  # Does not round-trip through text; try another prompt.
    res, = scorer.score([ScoreRequest(req.id, [text, " Heads"], prompt=req.prompt)])
    assert res.greedy == [True, False] and res.num_tokens[0] == 1
    checked += 1
  assert checked >= 3


def test_layout_shares_rows_uses_buckets_and_pads(models, requests_):
  """The requests above really exercise packing: shared rows, several buckets, padding rows."""
  _, scorer = models["llama"]
  blocks = [scorer._encode(r).block for r in requests_]  # pylint: disable=protected-access
  plan = scoring_layout.layout(blocks, BUCKETS, 4, teacher_forced=False)
  rows = {(p.batch, p.row) for p in plan.placements}
  assert len(rows) < len(blocks)
  assert len({b["tokens"].shape[1] for b in plan.batches}) >= 2
  assert any((b["segment_ids"] == 0).all(axis=1).any() for b in plan.batches)
  # Prompt tokens carry no prefix segment; option tokens point at their prompt's segment.
  b = plan.batches[0]
  opt = b["prefix_segment_ids"][0] != 0
  assert opt.any() and set(b["prefix_segment_ids"][0][opt]) <= set(b["segment_ids"][0][~opt])


def test_packed_equals_each_request_alone(models, requests_):
  _, scorer = models["gemma3"]
  together = list(scorer.score(requests_))
  for req, packed in zip(requests_, together):
    alone, = scorer.score([req])
    np.testing.assert_allclose(packed.logprobs, alone.logprobs, atol=1e-5, rtol=0)
    assert packed.greedy == alone.greedy and packed.num_tokens == alone.num_tokens


def test_data_parallel_mesh_matches_single_device(models, requests_, sp_tokenizer, tmp_path):
  ref, single = models["llama"]
  ref.save_pretrained(str(tmp_path))
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2, "tensor": 1})
  scorer = Scorer(load_hf(str(tmp_path), mesh=mesh), sp_tokenizer, mesh=mesh, buckets=BUCKETS,
                  rows_per_batch=8)
  got = list(scorer.score(requests_))
  want = list(single.score(requests_))
  for a, b in zip(got, want):
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
  # Rows are split over data x fsdp = 8 devices: 4 rows per batch round up to 8.
  assert Scorer(scorer_model(scorer), sp_tokenizer, mesh=mesh, rows_per_batch=4).rows_per_batch == 8


def scorer_model(scorer):
  from flax import nnx  # pylint: disable=g-import-not-at-top
  return nnx.merge(scorer.graphdef, scorer.state)


def test_boundary_mismatch_is_reported_not_fixed(models, sp_tokenizer):
  ref, scorer = models["llama"]
  # "Hea" + "ds" tokenises jointly as He|ad|s, but the prompt alone ends He|a.
  req = ScoreRequest("split", ["ds", " Tails"], prompt="the coin Hea")
  before = scorer.stats["boundary_mismatches"]
  res, = scorer.score([req])
  assert res.boundary_mismatch == [True, False]
  assert scorer.stats["boundary_mismatches"] == before + 1
  # Scored as the prompt's own tokens followed by the option tokenised alone.
  p = prompt_ids(sp_tokenizer, req.prompt)
  want, _ = torch_option_score(ref, p, sp_tokenizer.encode("ds", continuation=True))
  assert abs(res.logprobs[0] - want) <= TOL


def test_over_long_request_errors_or_truncates_with_count(models, sp_tokenizer):
  ref, scorer = models["llama"]
  long_prompt = " ".join(["red ball"] * 60)
  req = ScoreRequest("too-long", [" Heads", " Tails"], prompt=long_prompt)
  with pytest.raises(ValueError, match="'too-long'.*left_truncate"):
    list(scorer.score([req]))
  truncating = Scorer(scorer_model(scorer), sp_tokenizer, buckets=BUCKETS, rows_per_batch=4,
                      left_truncate=True)
  res, = truncating.score([req])
  assert res.truncated and truncating.stats["truncated"] == 1
  p = prompt_ids(sp_tokenizer, long_prompt)
  for k, option in enumerate(req.options):
    suffix = prompt_ids(sp_tokenizer, long_prompt + option)[len(p):]
    keep = BUCKETS[-1] - sum(res.num_tokens) - 1
    want, _ = torch_option_score(ref, [sp_tokenizer.bos_id] + p[-keep:], suffix)
    assert abs(res.logprobs[k] - want) <= TOL


def test_empty_option_is_an_error_not_probability_one(models):
  _, scorer = models["llama"]
  with pytest.raises(ValueError, match="'e': option '' has no tokens"):
    list(scorer.score([ScoreRequest("e", ["", " Heads"], prompt="the coin")]))


def test_messages_and_template_equal_formatted_prompt(models):
  _, scorer = models["llama"]
  messages = [{"role": "description", "content": "A coin."},
              {"role": "output", "content": "Heads"}]
  by_messages, = scorer.score([ScoreRequest("m", ["Heads", "Tails"], messages=messages,
                                            template="colon")])
  text = "".join(t for t, _ in format_episode(messages, "colon", add_generation_prompt=True))
  assert text.endswith("Output:")
  by_prompt, = scorer.score([ScoreRequest("p", [" Heads", " Tails"], prompt=text)])
  assert by_messages.logprobs == by_prompt.logprobs


def test_bad_requests_name_the_id(models):
  _, scorer = models["llama"]
  with pytest.raises(ValueError, match="'x'.*exactly one of 'prompt' and 'messages'"):
    list(scorer.score([ScoreRequest("x", ["a"])]))
  with pytest.raises(ValueError, match="'y'.*'options' is empty"):
    list(scorer.score([ScoreRequest("y", [], prompt="a")]))


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_score_episodes_matches_torch(models, family):
  ref, scorer = models[family]
  rng = np.random.RandomState(3)
  seqs = [np.concatenate([[1], rng.randint(3, 300, n)]).astype(np.int32)
          for n in (5, 40, 17, 90, 2)]
  greedy = list(seqs[0])
  for _ in range(6):  # The model's own continuation: greedy flags that are True.
    with torch.no_grad():
      greedy.append(int(ref(torch.tensor([greedy])).logits[0, -1].argmax()))
  seqs.append(np.asarray(greedy, np.int32))
  got = scorer.score_episodes(seqs)
  assert got[-1]["greedy"][-6:].all() and not got[1]["greedy"].all()
  for seq, out in zip(seqs, got):
    with torch.no_grad():
      logits = ref(torch.from_numpy(seq.astype(np.int64)[None])).logits[0].float()
    logp = torch.log_softmax(logits, -1).numpy()[:-1]
    targets = seq[1:]
    assert out["logprob"].shape == (len(seq) - 1,) and out["logprob"].dtype == np.float32
    np.testing.assert_allclose(out["logprob"], logp[np.arange(len(targets)), targets], atol=TOL)
    np.testing.assert_array_equal(out["greedy"], logp.argmax(-1) == targets)
    np.testing.assert_allclose(out["top_prob"], np.exp(logp.max(-1)), atol=TOL)


def test_shared_prefix_mask_exact():
  # Prompt (segment 1), options 2 and 3 pointing at it, then padding.
  seg = jnp.array([[1, 1, 2, 2, 3, 0]])
  prefix = jnp.array([[0, 0, 1, 1, 1, 0]])
  pos = jnp.array([[0, 1, 2, 3, 2, 0]])
  want = np.array([
      [1, 0, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [1, 1, 1, 0, 0, 0],
      [1, 1, 1, 1, 0, 0],
      [1, 1, 0, 0, 1, 0],  # option 3 sees the prompt and itself, not option 2
      [0, 0, 0, 0, 0, 0],
  ], bool)
  got = np.asarray(attention_mask(seg, pos, GLOBAL_WINDOW, prefix))[0]
  np.testing.assert_array_equal(got, want)
  # The window still counts by position: at window 2, token 4 (position 2) loses position 0.
  assert not np.asarray(attention_mask(seg, pos, 2, prefix))[0, 4, 0]


def test_splash_falls_back_for_shared_prefix(models, requests_):
  """splash cannot mask shared prefixes; the model switches to xla for them."""
  from spectrax.models import reconfigure  # pylint: disable=g-import-not-at-top
  _, scorer = models["llama"]
  model = reconfigure(scorer_model(scorer), attention_backend="splash")
  splash = Scorer(model, scorer.tokenizer, buckets=(128,), rows_per_batch=4)
  dense = Scorer(scorer_model(scorer), scorer.tokenizer, buckets=(128,), rows_per_batch=4)
  for a, b in zip(splash.score(requests_[:4]), dense.score(requests_[:4])):
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
