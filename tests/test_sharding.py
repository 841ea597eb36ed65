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


def test_without_axis_takes_a_mesh_axis_out_of_every_rule():
  rules = (("batch", ("data", "fsdp")), ("embed", "fsdp"), ("seq", "data"),
           ("vocab", ("data", "tensor", "fsdp")), ("length", None))
  assert sharding.without_axis(rules, "data") == (
      ("batch", "fsdp"), ("embed", "fsdp"), ("seq", None),
      ("vocab", ("tensor", "fsdp")), ("length", None))


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


# -- node-local FSDP: data across nodes / slices ---------------------------------


def _rows(mesh):
  """Device ids of each data row (data axis first)."""
  arr = np.moveaxis(mesh.devices, list(mesh.axis_names).index("data"), 0)
  return [sorted(d.id for d in row.flat) for row in arr]


def test_node_local_mesh_on_one_process_splits_the_device_list(mesh):
  # Two simulated "nodes" of 4 devices: FSDP within each, data across them.
  m = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": 2})
  assert dict(m.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
  assert _rows(m) == [[0, 1, 2, 3], [4, 5, 6, 7]]
  m = sharding.make_mesh({"data": 2, "fsdp": -1, "tensor": 1, "dcn_data": 2})
  assert dict(m.shape) == {"data": 4, "fsdp": 2, "tensor": 1}
  assert _rows(m) == [[0, 1], [2, 3], [4, 5], [6, 7]]
  # -1: one group per process; a single process is one group, the plain mesh.
  m = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": -1})
  assert dict(m.shape) == {"data": 1, "fsdp": 8, "tensor": 1}
  with pytest.raises(ValueError, match=r"do not fit 4 devices per group of dcn_data=2"):
    sharding.make_mesh({"data": 1, "fsdp": 8, "tensor": 1, "dcn_data": 2})
  with pytest.raises(ValueError, match=r"dcn_data=3 groups cannot split 8 devices"):
    sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": 3})
  with pytest.raises(ValueError, match="has no data axis"):
    sharding.make_mesh({"fsdp": -1, "dcn_data": 2})


def test_node_local_mesh_keeps_fsdp_within_a_node(mesh):
  """The batch splits over data x fsdp and weights over fsdp only, so each
  node holds a whole copy of the parameters (FSDP never crosses nodes)."""
  m = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": 2})
  spec = sharding.logical_to_spec(("layers", "embed", "mlp"), RULES, m)
  assert spec == P(None, "fsdp", None)
  up = jax.device_put(jnp.zeros((2, 32, 64)), jax.NamedSharding(m, spec))
  for node in range(2):
    ids = {d.id for d in m.devices[node].flat}
    pieces = {tuple((sl.start, sl.stop) for sl in s.index)
              for s in up.addressable_shards if s.device.id in ids}
    assert len(pieces) == 4  # The node's 4 devices hold 4 different quarters.
  assert sharding.logical_to_spec(("batch", "length"), RULES, m) == P(("data", "fsdp"), None)


class _FakeDevice:
  """What the mesh builders read off a device, for topologies this machine lacks."""

  def __init__(self, id_, process_index, platform="gpu", slice_index=None):
    self.id, self.process_index, self.platform = id_, process_index, platform
    self.device_kind = "fake"
    if slice_index is not None:
      self.slice_index = slice_index

  def __repr__(self):
    return f"D{self.id}"


def _ids(arr):
  return np.vectorize(lambda d: d.id)(arr)


def test_hybrid_device_array_keeps_each_node_on_its_own_data_rows():
  # Two 8-GPU nodes, one process each, listed interleaved: each node's GPUs
  # form one data row (create_hybrid_device_mesh, processes as granules).
  devs = [_FakeDevice(8 * p + i, p) for i in range(8) for p in range(2)]
  arr = sharding.hybrid_device_array([("data", 1), ("fsdp", -1), ("tensor", 1)], devs, 2)
  assert arr.shape == (2, 8, 1)
  np.testing.assert_array_equal(_ids(arr)[:, :, 0], [list(range(8)), list(range(8, 16))])
  # fsdp first in the axis order: the data axis is still the one across nodes.
  arr = sharding.hybrid_device_array([("fsdp", 4), ("data", -1)], devs, 2)
  assert arr.shape == (4, 4)
  for col in range(4):
    assert len({d.process_index for d in arr[:, col]}) == 1
  # One process per GPU (16 processes on 2 nodes): groups of 8 processes.
  devs = [_FakeDevice(i, i) for i in range(16)]
  arr = sharding.hybrid_device_array([("data", 1), ("fsdp", -1), ("tensor", 1)], devs, 2)
  np.testing.assert_array_equal(_ids(arr)[:, :, 0], [list(range(8)), list(range(8, 16))])
  with pytest.raises(ValueError, match=r"devices are on 16 processes \(nodes\); use "
                                       r"dcn_data=1 or 2 or 4 or 8 or 16"):
    sharding.hybrid_device_array([("data", 1), ("fsdp", -1)], devs, 3)


def test_hybrid_device_array_across_tpu_slices():
  # Two slices of 4 chips (each slice: 2 hosts); granules are slices, not hosts.
  devs = [_FakeDevice(4 * s + i, 2 * s + i // 2, platform="tpu", slice_index=s)
          for s in range(2) for i in range(4)]
  assert [[d.id for d in g] for g in sharding.granules(devs)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
  with pytest.raises(ValueError, match=r"devices are on 2 TPU slices; use dcn_data=2"):
    sharding.hybrid_device_array([("data", 1), ("fsdp", -1)], devs, 4)


_TWO_PROCESSES = r"""
import json, sys
from spectrax.parallel import distributed, sharding
import jax
distributed.initialize(cpu_devices=4)
m = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": -1})
print(json.dumps({"shape": dict(m.shape),
                  "rows": [[d.process_index for d in row.flat] for row in m.devices]}))
"""


def test_node_local_mesh_over_two_real_processes(tmp_path):
  """Two jax processes of 4 CPU devices (gloo): dcn_data=-1 puts each
  process's devices on its own data row, through create_hybrid_device_mesh."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  procs = []
  for i in range(2):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAX_")}
    env.update(JAX_PLATFORMS="cpu", SPECTRAX_COORDINATOR=f"localhost:{port}",
               SPECTRAX_NUM_PROCESSES="2", SPECTRAX_PROCESS_ID=str(i), PYTHONPATH=repo)
    procs.append(subprocess.Popen([sys.executable, "-c", _TWO_PROCESSES], cwd=repo, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
  for out, _ in outs:
    got = json.loads(out.strip().splitlines()[-1])
    assert got["shape"] == {"data": 2, "fsdp": 4, "tensor": 1}
    assert got["rows"] == [[0] * 4, [1] * 4]
