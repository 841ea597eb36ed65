"""Meshes, logical-axis rules, and sharded loading on 8 CPU devices (see conftest.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from spectrax.checkpoints import params_dir as params_io
from spectrax.parallel import sharding
from spectrax.models import ModelConfig, Transformer, init_model, load_hf, reconfigure, save_hf

RULES = sharding.DEFAULT_RULES


@pytest.fixture(scope="module")
def mesh():
  if jax.device_count() < 8:
    pytest.skip("needs 8 devices: run under tests/conftest.py (jax_num_cpu_devices=8)")
  return sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 2})


def test_make_mesh_fills_the_rest(mesh):
  assert dict(mesh.shape) == {"data": 1, "fsdp": 4, "tensor": 2}


def test_make_mesh_errors_list_valid_sizes():
  with pytest.raises(ValueError, match=r"divisors of 8 \(\[1, 2, 4, 8\]\)"):
    sharding.make_mesh({"data": 3, "fsdp": -1})
  with pytest.raises(ValueError, match="multiply to 4 but there are 8 devices"):
    sharding.make_mesh({"data": 2, "fsdp": 2})
  with pytest.raises(ValueError, match="at most one -1"):
    sharding.make_mesh({"data": -1, "fsdp": -1})


def test_logical_to_spec(mesh):
  assert sharding.logical_to_spec(("batch", "length", "embed"), RULES, mesh) == P("fsdp", None, None)
  # data has size 1 and is dropped; fsdp is claimed by batch first.
  assert sharding.logical_to_spec(("layers", "embed", "heads", "head_dim"), RULES, mesh) == \
      P(None, "fsdp", "tensor", None)
  with pytest.raises(ValueError, match="logical axis 'experts' has no rule"):
    sharding.logical_to_spec(("experts",), RULES, mesh)
  with pytest.raises(ValueError, match="names mesh axes \\['pipe'\\] that the mesh lacks"):
    sharding.logical_to_spec(("embed",), (("embed", "pipe"),), mesh)


def tiny_config(**overrides):
  return ModelConfig.from_hf(dict(model_type="llama", vocab_size=128, hidden_size=32,
                                  intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, tie_word_embeddings=False), **overrides)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  """A random model saved in HF format (no PyTorch needed)."""
  cfg = tiny_config()
  model = init_model(cfg)
  path = str(tmp_path_factory.mktemp("hf"))
  save_hf(model, cfg, path, max_shard_bytes=30_000)
  return path


@pytest.fixture(scope="module")
def tokens():
  return jnp.asarray(np.random.RandomState(0).randint(0, 128, (4, 16)).astype(np.int32))


def test_sharded_load_equals_unsharded(mesh, hf_dir, tokens):
  plain = load_hf(hf_dir)
  sharded = load_hf(hf_dir, mesh=mesh, rules=RULES)
  assert sharded.layers.attn.q[...].sharding.spec == P(None, "fsdp", "tensor", None)
  assert sharded.lm_head[...].sharding.spec == P("tensor", "fsdp")
  assert len(sharded.layers.mlp.down[...].addressable_shards) == 8
  for a, b in zip(jax.tree.leaves(nnx.state(plain)), jax.tree.leaves(nnx.state(sharded))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  graphdef, state = nnx.split(sharded)
  data_sharding = jax.NamedSharding(mesh, sharding.logical_to_spec(("batch", "length"), RULES, mesh))

  @jax.jit
  def logits(state, tokens):
    with sharding.axis_rules(mesh, RULES):
      return nnx.merge(graphdef, state).logits(tokens)

  got = logits(state, jax.device_put(tokens, data_sharding))
  np.testing.assert_allclose(np.asarray(got), np.asarray(plain.logits(tokens)), atol=1e-5)


def test_restore_params_into_mesh(mesh, hf_dir, tmp_path):
  model = load_hf(hf_dir)
  params_io.save_params_dir(str(tmp_path / "ckpt"), model, model.config)
  restored = params_io.load_params_dir(str(tmp_path / "ckpt"), mesh=mesh, rules=RULES)
  assert restored.layers.mlp.gate[...].sharding.spec == P(None, "fsdp", "tensor")
  for a, b in zip(jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(restored))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_indivisible_dimension_is_named(mesh):
  cfg = tiny_config(num_kv_heads=1)
  _, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
  with pytest.raises(ValueError, match=r"\['layers'\]\['attn'\]\['k'\].*dimension 1 cannot be split "
                                       r"over mesh axes \('tensor',\)"):
    sharding.shardings(abstract, mesh, RULES)


def test_splash_under_shard_map_matches_dense(mesh, hf_dir):
  """The splash kernel (interpret mode on CPU) sharded over batch and heads."""
  model = load_hf(hf_dir, mesh=mesh, rules=RULES)
  splash = reconfigure(model, attention_backend="splash")
  tokens = jnp.asarray(np.random.RandomState(1).randint(0, 128, (4, 128)).astype(np.int32))
  seg = jnp.asarray(np.repeat([[1] * 60 + [2] * 60 + [0] * 8], 4, axis=0).astype(np.int32))
  pos = jnp.asarray(np.repeat([list(range(60)) * 2 + [0] * 8], 4, axis=0).astype(np.int32))

  def run(m):
    graphdef, state = nnx.split(m)

    @jax.jit
    def f(state, tokens, pos, seg):
      with sharding.axis_rules(mesh, RULES):
        return nnx.merge(graphdef, state).logits(tokens, pos, seg)
    return np.asarray(f(state, tokens, pos, seg))

  want, got = run(model), run(splash)
  np.testing.assert_allclose(got[:, :120], want[:, :120], atol=1e-5 * np.abs(want).max())


def test_init_model_creates_sharded_params(mesh):
  model = init_model(tiny_config(), mesh=mesh, rules=RULES, seed=3)
  assert model.embed[...].sharding.spec == P("tensor", "fsdp")
  assert model.layers.attn.o[...].sharding.spec == P(None, "tensor", None, "fsdp")
  same = init_model(tiny_config(), seed=3)  # unsharded, same seed: same values
  np.testing.assert_array_equal(np.asarray(model.layers.mlp.up[...]), np.asarray(same.layers.mlp.up[...]))
