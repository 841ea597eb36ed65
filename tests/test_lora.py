"""LoRA: adapters in the model, the LoRA trainer (frozen base, exact resume,
base identity), merge-on-load, PEFT and merged HF export, honest FLOPs."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_train_config
from spectrax.models import ModelConfig, init_model
from spectrax.models import lora as lora_lib
from spectrax.training import loop as train_lib
from spectrax.training import run_config

TINY = dict(model_type="gemma3_text", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=50,
            sliding_window=4, sliding_window_pattern=2, query_pre_attn_scalar=16,
            max_position_embeddings=64)


def _random_adapters(cfg, lora, seed=1):
  w = lora_lib.init_adapters(cfg, lora, jax.random.key(seed))
  return jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.key(seed + 1), x.shape), w)


def test_adapters_apply_and_merge():
  cfg = ModelConfig.from_hf(TINY)
  model = init_model(cfg)
  lora = lora_lib.LoraConfig(rank=4, alpha=8.0)
  tokens = jnp.asarray(np.random.RandomState(0).randint(0, 50, (2, 12)), jnp.int32)
  base = model.logits(tokens)
  fresh = lora_lib.init_adapters(cfg, lora, jax.random.key(0))  # B = 0: no change
  np.testing.assert_allclose(
      model.logits_from_hidden(model(tokens, lora=lora_lib.Adapters(lora, fresh))), base, atol=1e-6)
  weights = _random_adapters(cfg, lora)
  adapted = model.logits_from_hidden(model(tokens, lora=lora_lib.Adapters(lora, weights)))
  assert float(jnp.abs(adapted - base).max()) > 1e-2
  merged = lora_lib.merge_into(nnx.state(init_model(cfg), nnx.Param), weights, lora)
  np.testing.assert_allclose(nnx.merge(nnx.graphdef(model), merged).logits(tokens), adapted,
                             atol=1e-5)


def test_adapters_shard_like_their_base():
  from spectrax.parallel import sharding
  cfg = ModelConfig.from_hf({**TINY, "num_attention_heads": 4, "num_key_value_heads": 2,
                             "intermediate_size": 64})
  mesh = sharding.make_mesh({"data": 1, "fsdp": 4, "tensor": 2})
  sh = lora_lib.adapter_shardings(cfg, lora_lib.LoraConfig(rank=4), mesh, sharding.DEFAULT_RULES)
  assert sh["q"]["a"].spec == jax.sharding.PartitionSpec(None, "fsdp", None)
  assert sh["q"]["b"].spec == jax.sharding.PartitionSpec(None, None, "tensor", None)
  assert sh["o"]["a"].spec == jax.sharding.PartitionSpec(None, "tensor", None, None)
  assert sh["down"]["a"].spec == jax.sharding.PartitionSpec(None, "tensor", None)
  assert sh["down"]["b"].spec == jax.sharding.PartitionSpec(None, None, "fsdp")


def test_lora_flops_count_no_base_weight_gradients():
  from spectrax.training import flops
  cfg = ModelConfig.from_hf(TINY)
  seg = np.ones((2, 16), np.int32)
  lora = lora_lib.LoraConfig(rank=4)
  full = flops.train_step_flops(cfg, seg)
  attn = flops.attention_flops(cfg, seg)
  mm = flops.matmul_flops_per_token(cfg) * 32
  adapters = 2 * lora_lib.num_adapter_params(cfg, lora) * 32
  assert full == 3 * (mm + attn)
  assert flops.train_step_flops(cfg, seg, lora=lora) == 2 * mm + 3 * attn + 3 * adapters
  est = flops.train_step_flops_estimate(cfg, 32, 16, lora=lora)
  assert est == pytest.approx(2 * mm + 3 * attn + 3 * adapters)


def _lora_config(suite, **train):
  c = tiny_train_config(suite, **train)
  c.lora.rank = 4
  c.lora.alpha = 8.0
  c.optimizer.learning_rate = 1e-2
  return c


@pytest.fixture(scope="module")
def lora_run(tiny_suite_dir, tmp_path_factory, request):
  """An uninterrupted 8-step LoRA run; the frozen base as it was given and after."""
  from spectrax.training import step as step_lib
  captured = {}
  real = step_lib.Trainer.set_frozen

  def capture(self, params):
    captured["before"] = jax.tree.map(lambda x: np.array(x), params)
    captured["live"] = params
    return real(self, params)
  mp = pytest.MonkeyPatch()
  mp.setattr(step_lib.Trainer, "set_frozen", capture)
  try:
    workdir = str(tmp_path_factory.mktemp("lora_run"))
    summary = train_lib.train(_lora_config(tiny_suite_dir), workdir)
  finally:
    mp.undo()
  return workdir, summary, captured


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_lora_run_learns_with_the_base_bitwise_unchanged(lora_run):
  workdir, summary, captured = lora_run
  assert summary["final_eval_loss"] < summary["first_eval_loss"]
  before = jax.tree.leaves(captured["before"])
  after = jax.tree.leaves(captured["live"])
  assert len(before) == len(after) > 0
  for b, a in zip(before, after):
    np.testing.assert_array_equal(np.asarray(a), b)
  # Checkpoints hold adapters, their optimizer state and the step only.
  from spectrax.checkpoints.training_state import Checkpointer
  ckpt_dir = os.path.join(workdir, "checkpoints")
  with Checkpointer(ckpt_dir, read_only=True) as ckpt:
    config = ckpt.restore_config()
  assert config["lora_base"]["source"] == "init" and len(config["lora_base"]["fingerprint"]) == 64
  stored = os.listdir(os.path.join(ckpt_dir, "8", "state", "d")) and open(
      os.path.join(ckpt_dir, "8", "state", "_METADATA")).read()
  assert "params.q.a" in stored and "params.layers" not in stored
  info = json.load(open(os.path.join(workdir, "run.json")))
  assert info["lora"]["config"]["rank"] == 4
  assert info["lora"]["base"]["fingerprint"] == config["lora_base"]["fingerprint"]


def test_lora_resume_continues_exactly(tiny_suite_dir, tmp_path, lora_run):
  workdir = str(tmp_path)
  c = _lora_config(tiny_suite_dir)
  first = train_lib.train(c, workdir, stop_after=4)
  assert first["step"] == 4
  resumed = train_lib.train(c, workdir)
  assert _losses(workdir) == _losses(lora_run[0])
  assert resumed["final_eval_loss"] == lora_run[1]["final_eval_loss"]


def test_lora_run_refuses_another_base(tiny_suite_dir, lora_run, tmp_path):
  import shutil
  from spectrax.checkpoints.lora_base import BaseMismatchError
  workdir = str(shutil.copytree(lora_run[0], tmp_path / "run"))
  before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  run_json = open(os.path.join(workdir, "run.json")).read()
  c = _lora_config(tiny_suite_dir, num_steps=10, seed=1)  # another random base
  with pytest.raises(BaseMismatchError, match=r"adapts another base: it was trained on random "
                                              r"init \(seed 0\).*random init \(seed 1\)"):
    train_lib.train(c, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before
  assert open(os.path.join(workdir, "run.json")).read() == run_json
  assert not os.path.exists(os.path.join(workdir, "train.lock"))


def test_lora_config_errors(tiny_suite_dir):
  c = _lora_config(tiny_suite_dir)
  c.lora.targets = "q,attn"
  with pytest.raises(run_config.ConfigError, match="lora.targets='q,attn'"):
    run_config.validate(c)
  c = _lora_config(tiny_suite_dir)
  c.lora.rank = -1
  with pytest.raises(run_config.ConfigError, match="lora.rank=-1"):
    run_config.validate(c)
  c.lora.rank = 0
  assert run_config.lora_config(c) is None


# --- PEFT round trip on the torch reference model (tests/test_hf.py builds those).


@pytest.fixture(scope="module")
def hf_lora(tiny_suite_dir, tmp_path_factory):
  """A tiny HF Llama base, a LoRA run on it, and the base's torch model."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  del torch
  from test_hf import randomize
  from spectrax.data.suite_reader import Suite
  cfg = transformers.LlamaConfig(
      vocab_size=512, hidden_size=64, intermediate_size=128, num_attention_heads=4,
      num_key_value_heads=2, num_hidden_layers=2, max_position_embeddings=128,
      tie_word_embeddings=False, attn_implementation="eager")
  base = str(tmp_path_factory.mktemp("hf_base"))
  randomize(transformers.AutoModelForCausalLM.from_config(cfg).eval(), seed=3).save_pretrained(base)
  other = str(tmp_path_factory.mktemp("hf_other"))
  randomize(transformers.AutoModelForCausalLM.from_config(cfg).eval(), seed=4).save_pretrained(other)
  c = _lora_config(tiny_suite_dir, num_steps=4, eval_every=0, checkpoint_every=2)
  c.init_from_hf = base
  c.data.tokenizer = Suite(tiny_suite_dir).tokenizer_path
  c.lora.targets = "q,k,v,o,gate,up,down"
  c.optimizer.learning_rate = 3e-2
  workdir = str(tmp_path_factory.mktemp("hf_lora_run"))
  train_lib.train(c, workdir)
  return base, other, workdir, c


def test_peft_adapter_matches_spectrax_logits(hf_lora, tmp_path):
  transformers = pytest.importorskip("transformers")
  peft = pytest.importorskip("peft")
  from cli_runs import run_cli
  from test_hf import assert_close, torch_logits
  from spectrax.checkpoints.loading import load_model
  base, _, workdir, _ = hf_lora
  out = str(tmp_path / "adapter")
  proc = run_cli("spectrax.convert", f"--from_workdir={workdir}", f"--to_peft={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert {"adapter_config.json", "adapter_model.safetensors"} <= set(os.listdir(out))
  tokens = np.random.RandomState(0).randint(0, 400, (2, 20)).astype(np.int32)
  torch_base = transformers.AutoModelForCausalLM.from_pretrained(base, attn_implementation="eager")
  base_logits = torch_logits(torch_base, tokens)
  adapted = peft.PeftModel.from_pretrained(torch_base, out).eval()
  ref = torch_logits(adapted, tokens)
  ours = np.asarray(load_model(workdir=workdir).model.logits(jnp.asarray(tokens)))
  assert_close(ours, ref)
  # The adapters really change the model (the comparison is not vacuous).
  assert np.abs(ref - base_logits).max() > 100 * 1e-4 * np.abs(ref).max()


def test_merged_export_is_base_plus_scaled_ba(hf_lora, tmp_path):
  from safetensors.numpy import load_file
  from spectrax.checkpoints import convert_weights
  from spectrax.models.hf import SafetensorsReader
  base, _, workdir, c = hf_lora
  src = convert_weights.Source("workdir", workdir)
  with pytest.raises(convert_weights.ConvertError, match="is a LoRA run: add --merge"):
    convert_weights.convert(src, to_hf=str(tmp_path / "x"))
  peft_dir, out = str(tmp_path / "adapter"), str(tmp_path / "merged")
  convert_weights.convert(src, to_hf=out, to_peft=peft_dir, merge=True)
  adapter = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
  scale = c.lora.alpha / c.lora.rank
  a, b = SafetensorsReader(base), SafetensorsReader(out)
  merged = 0
  for name in a.files:
    module = "base_model.model." + name[:-len(".weight")]
    if f"{module}.lora_A.weight" in adapter:
      want = a.get(name) + scale * (adapter[f"{module}.lora_B.weight"]
                                    @ adapter[f"{module}.lora_A.weight"])
      np.testing.assert_allclose(b.get(name), want, rtol=1e-5, atol=1e-6, err_msg=name)
      assert np.abs(b.get(name) - a.get(name)).max() > 1e-4, name
      merged += 1
    else:
      np.testing.assert_array_equal(b.get(name), a.get(name), err_msg=name)
  a.close(), b.close()
  assert merged == 2 * 7


def test_lora_run_refuses_another_hf_base(hf_lora):
  from spectrax.checkpoints.lora_base import BaseMismatchError
  _, other, workdir, c = hf_lora
  c = c.copy_and_resolve_references()
  c.init_from_hf = other
  c.train.num_steps = 6
  with pytest.raises(BaseMismatchError, match="adapts another base"):
    train_lib.train(c, workdir)


def test_scoring_loads_a_lora_run_merged(tiny_suite_dir, lora_run):
  """load_model(workdir=RUN) (scoring, sampling, evaluation) merges the adapters
  on load: its held-out loss is the run's final evaluation."""
  from spectrax.checkpoints.loading import load_model
  from spectrax.parallel import sharding
  from spectrax.training.step import OptimizerConfig, Trainer, make_optimizer
  workdir, summary, _ = lora_run
  loaded = load_model(workdir=workdir)
  assert loaded.name.endswith("@8") and loaded.template == "gemma"
  c = _lora_config(tiny_suite_dir)
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  trainer = Trainer(loaded.model.config, make_optimizer(OptimizerConfig(), 1)[0],
                    mesh, sharding.DEFAULT_RULES)
  loss = train_lib.evaluate(trainer.eval_fn(), nnx.state(loaded.model, nnx.Param), c, None,
                            trainer.batch_sharding, c.train.eval_batches)
  assert loss == pytest.approx(summary["final_eval_loss"], rel=1e-5)


@pytest.mark.parametrize("name", ["gemma12b", "llama8b", "qwen14b"])
def test_one_gpu_lora_configs(name):
  import importlib
  c = importlib.import_module(f"configs.{name}").get_config("lora")
  c.init_from_hf = ""
  lora = run_config.lora_config(c)
  assert lora.rank == 16 and lora.targets == tuple(lora_lib.TARGETS)
  assert c.mesh.to_dict() == {"data": 1, "fsdp": 1, "tensor": 1}
  assert c.model.remat_policy == "full" and c.model.dtype == "bfloat16"
  assert c.data.batch_size % c.train.microbatches == 0
  cfg = run_config.model_config(c, 0)
  assert cfg.param_dtype == "bfloat16"  # the frozen base: no float32 master copy
