"""The decoder without PyTorch: configs, presets, packing, remat, scanned layers."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from spectrax.models import PRESETS, ModelConfig, Transformer, init_model, preset, reconfigure, to_hf_dict

TINY = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=256)


def tiny_config(family, **overrides):
  if family == "gemma3":
    raw = dict(TINY, model_type="gemma3_text", num_hidden_layers=3, sliding_window=4,
               layer_types=["sliding_attention", "full_attention", "sliding_attention"],
               query_pre_attn_scalar=8)
  else:
    raw = dict(TINY, model_type=family, num_hidden_layers=2)
  return ModelConfig.from_hf(raw, **overrides)


def random_model(cfg, seed=0, std=0.3):
  """A model whose every weight is O(std), so masks and norms visibly matter."""
  graphdef, state = nnx.split(init_model(cfg, seed=seed))

  @jax.jit
  def perturb(state):
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree.unflatten(treedef, [x + std * jax.random.normal(k, x.shape, x.dtype)
                                        for x, k in zip(leaves, keys)])
  return nnx.merge(graphdef, perturb(state))


@pytest.fixture(scope="module")
def gemma():
  return random_model(tiny_config("gemma3"))


def pack(episodes, length):
  """Packs token lists into one row: tokens, positions, segment ids (0 = padding)."""
  tokens, pos, seg = (np.zeros((1, length), np.int32) for _ in range(3))
  start = 0
  for s, ep in enumerate(episodes, 1):
    tokens[0, start:start + len(ep)] = ep
    pos[0, start:start + len(ep)] = np.arange(len(ep))
    seg[0, start:start + len(ep)] = s
    start += len(ep)
  return jnp.asarray(tokens), jnp.asarray(pos), jnp.asarray(seg)


@pytest.mark.parametrize("backend", ["dense", "xla"])
def test_packed_row_equals_episodes_alone(gemma, backend):
  rng = np.random.RandomState(0)
  eps = [rng.randint(0, 128, n) for n in (10, 13)]  # both longer than the window (4)
  model = reconfigure(gemma, attention_backend=backend)
  packed = np.asarray(model.logits(*pack(eps, 28)))
  start = 0
  for ep in eps:
    alone = np.asarray(gemma.logits(jnp.asarray(ep[None])))
    got = packed[0, start:start + len(ep)]
    np.testing.assert_allclose(got, alone[0], atol=1e-5 * np.abs(alone).max())
    start += len(ep)
  assert np.isfinite(packed).all()  # padding rows too


def test_packing_without_segments_would_differ(gemma):
  """Control for the test above: one segment over both episodes changes the second's logits."""
  eps = [np.arange(10), np.arange(20, 33)]
  tokens, pos, _ = pack(eps, 23)
  wrong = np.asarray(gemma.logits(tokens, pos, jnp.ones_like(tokens)))
  alone = np.asarray(gemma.logits(jnp.asarray(eps[1][None])))
  assert np.abs(wrong[0, 10:] - alone[0]).max() > 1e-2 * np.abs(alone).max()


REMAT_TOKENS = np.random.RandomState(1).randint(0, 128, (2, 16))


def loss_and_grad(model):
  graphdef, params = nnx.split(model, nnx.Param)

  def loss(p):
    return jnp.mean(nnx.merge(graphdef, p).logits(jnp.asarray(REMAT_TOKENS)) ** 2)
  return jax.jit(jax.value_and_grad(loss))(params)


@pytest.fixture(scope="module")
def llama_and_grads():
  model = random_model(tiny_config("llama"))
  return model, loss_and_grad(model)


@pytest.mark.parametrize("policy", ["full", "dots_no_batch"])
def test_remat_keeps_loss_and_gradients(llama_and_grads, policy):
  model, (l0, g0) = llama_and_grads
  l1, g1 = loss_and_grad(reconfigure(model, remat_policy=policy))
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
    # Recomputation reorders float sums: equal up to float32 rounding.
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5 * np.abs(b).max())


def test_program_size_does_not_grow_with_depth():
  tokens = jnp.zeros((1, 8), jnp.int32)

  def n_eqns(layers):
    cfg = dataclasses.replace(tiny_config("qwen3"), num_layers=layers, layer_windows=(None,) * layers)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
    fn = lambda s: nnx.merge(graphdef, s)(tokens)  # noqa: E731
    return len(jax.make_jaxpr(fn)(state).jaxpr.eqns)

  assert n_eqns(2) == n_eqns(8)


def test_final_softcap_bounds_logits():
  model = random_model(tiny_config("gemma3", final_logit_softcap=0.5), std=1.0)
  logits = np.asarray(model.logits(jnp.arange(12)[None]))
  assert np.abs(logits).max() <= 0.5 and np.abs(logits).max() > 0.4


def test_gemma_legacy_config_keys():
  """Hub Gemma 3 configs still carry rope_theta / rope_scaling / sliding_window_pattern."""
  raw = dict(TINY, model_type="gemma3_text", num_hidden_layers=7, sliding_window=16,
             sliding_window_pattern=3, rope_theta=1e6, rope_local_base_freq=1e4,
             rope_scaling={"rope_type": "linear", "factor": 8.0})
  cfg = ModelConfig.from_hf(raw)
  assert cfg.layer_windows == (16, 16, None, 16, 16, None, 16)
  assert (cfg.rope_global.kind, cfg.rope_global.factor, cfg.rope_global.theta) == ("linear", 8.0, 1e6)
  assert (cfg.rope_local.kind, cfg.rope_local.theta) == ("default", 1e4)
  freqs = cfg.inv_freq_array()
  np.testing.assert_allclose(freqs[2], cfg.rope_global.inv_freq(8))
  np.testing.assert_allclose(freqs[0], 1e4 ** -(np.arange(0, 8, 2) / 8), rtol=1e-6)


def test_gemma_multimodal_config_reads_text_config():
  raw = {"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
         "text_config": {"model_type": "gemma3_text", "hidden_size": 3840, "intermediate_size": 15360,
                         "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
                         "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
         "vision_config": {"model_type": "siglip_vision_model"}, "eos_token_id": [1, 106]}
  cfg = ModelConfig.from_hf(raw)
  assert cfg == preset("gemma3-12b", eos_token_id=(1, 106), bos_token_id=cfg.bos_token_id,
                       max_position_embeddings=cfg.max_position_embeddings, vocab_size=cfg.vocab_size)
  assert cfg.head_dim == 256 and cfg.tie_embeddings and cfg.attn_scale == 256 ** -0.5


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_hf_dict(name):
  cfg = preset(name)
  assert ModelConfig.from_hf(to_hf_dict(cfg)) == cfg
  assert ModelConfig.from_json(cfg.to_json()) == cfg


def test_preset_parameter_counts():
  # Published totals of the text decoders.
  assert preset("llama3.1-8b").num_params() == 8_030_261_248
  assert preset("qwen3-0.6b").num_params() == 596_049_920
  assert abs(preset("gemma3-1b").num_params() - 999_885_952) < 1e6


def test_unknown_preset_lists_choices():
  with pytest.raises(ValueError, match="valid presets: gemma3-12b, gemma3-1b"):
    preset("gemma3-13b")


def test_runtime_field_validation():
  with pytest.raises(ValueError, match="attention_backend='flash'"):
    tiny_config("llama", attention_backend="flash")


# config.json files as published on the Hugging Face hub.
HUB_CONFIGS = {
    "gemma3-1b": {
        "architectures": ["Gemma3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "attn_logit_softcapping": None, "bos_token_id": 2, "cache_implementation": "hybrid",
        "eos_token_id": 1, "final_logit_softcapping": None, "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152, "initializer_range": 0.02,
        "intermediate_size": 6912, "max_position_embeddings": 32768, "model_type": "gemma3_text",
        "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0,
        "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
        "rope_scaling": None, "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
        "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0", "use_cache": True,
        "vocab_size": 262144},
    "llama3.1-8b": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
        "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
        "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
        "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256},
    "qwen3-14b": {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151643, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 5120, "initializer_range": 0.02, "intermediate_size": 17408,
        "max_position_embeddings": 32768, "max_window_layers": 40, "model_type": "qwen3",
        "num_attention_heads": 40, "num_hidden_layers": 40, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
        "use_cache": True, "use_sliding_window": False, "vocab_size": 151936},
}


@pytest.mark.parametrize("name", sorted(HUB_CONFIGS))
def test_hub_configs_parse_to_presets(name):
  cfg = ModelConfig.from_hf(HUB_CONFIGS[name])
  want = preset(name)
  assert dataclasses.replace(cfg, bos_token_id=want.bos_token_id, eos_token_id=want.eos_token_id,
                             pad_token_id=want.pad_token_id) == want


@pytest.mark.parametrize("text, part", [
    (b'{"model_type": "llama",\n "hidden_size": }', "config.json, line 2: not valid JSON"),
    (b'{"model_type": "\xff"}', "config.json: not UTF-8 text"),
    (b'[1]', "config.json: expected a JSON object, got list"),
])
def test_a_corrupt_hf_config_names_the_file_and_line(tmp_path, text, part):
  from spectrax.models.config import HFCheckpointError  # pylint: disable=g-import-not-at-top
  (tmp_path / "config.json").write_bytes(text)
  with pytest.raises(HFCheckpointError) as e:
    ModelConfig.from_hf(str(tmp_path))
  assert str(e.value).startswith(f"{tmp_path / part}")
  assert "copy or download it again" in str(e.value)


def test_a_corrupt_safetensors_index_names_the_file(tmp_path):
  from spectrax.models import SafetensorsReader  # pylint: disable=g-import-not-at-top
  from spectrax.models.config import HFCheckpointError  # pylint: disable=g-import-not-at-top
  (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": ')
  with pytest.raises(HFCheckpointError, match=re.escape(
      f"{tmp_path / 'model.safetensors.index.json'}, line 1: not valid JSON")):
    SafetensorsReader(str(tmp_path))
  (tmp_path / "model.safetensors.index.json").write_text('{"metadata": {}}')
  with pytest.raises(HFCheckpointError, match='no "weight_map" object'):
    SafetensorsReader(str(tmp_path))
