"""Run config -> validated spectrax objects; every error names field and fix."""

import json
import types

import pytest

from configs import tiny
from spectrax.data.pipeline import DataConfig
from spectrax.models import ModelConfig
from spectrax.training import run_config
from spectrax.training.step import OptimizerConfig


@pytest.fixture
def c():
  return tiny.get_config()


def _set(config, field, value):
  section, _, key = field.rpartition(".")
  (config[section] if section else config)[key] = value


def test_tiny_config_is_valid(c):
  run_config.validate(c)


@pytest.mark.parametrize("changes,message", [
    ({"data.template": "chatml"},
     "data.template='chatml': use one of ['colon', 'gemma', 'llama', 'qwen'] "
     "(--config.data.template=gemma)."),
    ({"data.packing": "greedy"},
     "data.packing='greedy': use one of ['best_fit', 'first_fit', "
     "'retained_best_fit']."),
    ({"data.batch_size": 0}, "data.batch_size must be positive."),
    ({"train.microbatches": 3},
     "train.microbatches=3 must divide data.batch_size=8."),
    ({"train.microbatches": 0},
     "train.microbatches=0 must divide data.batch_size=8."),
    ({"train.num_steps": -1},
     "train.num_steps must be >= 0 (0 = one pass over data.num_epochs)."),
    ({"train.num_steps": 0, "data.num_epochs": 0},
     "train.num_steps=0 means 'one pass over the data', but "
     "data.num_epochs=0 repeats forever: set one of them."),
    ({"train.log_every": 0}, "train.log_every must be >= 1."),
    ({"train.checkpoint_every": 0}, "train.checkpoint_every must be >= 1."),
    ({"train.keep_checkpoints": 0}, "train.keep_checkpoints must be >= 1."),
    ({"init_from_hf": "/nowhere"},
     "init_from_hf='/nowhere' has no config.json: point it at an HF model "
     "directory."),
    ({"transfer_special_tokens_from": "/it"},
     "transfer_special_tokens_from needs init_from_hf (the base checkpoint "
     "the rows are copied into)."),
    ({"optimizer.schedule": "step"},
     "optimizer.schedule='step': use linear, cosine or constant."),
    ({"optimizer.learning_rate": 0.0},
     "optimizer.learning_rate=0.0 must be a finite number > 0.0 "
     "(--config.optimizer.learning_rate=...)."),
    ({"optimizer.learning_rate": float("nan")},
     "optimizer.learning_rate=nan must be a finite number > 0.0 "
     "(--config.optimizer.learning_rate=...)."),
    ({"optimizer.learning_rate": float("inf")},
     "optimizer.learning_rate=inf must be a finite number > 0.0 "
     "(--config.optimizer.learning_rate=...)."),
    ({"optimizer.end_learning_rate_fraction": 1.5},
     "optimizer.end_learning_rate_fraction=1.5 must be a finite number in "
     "[0.0, 1.0] (--config.optimizer.end_learning_rate_fraction=...)."),
    ({"optimizer.b2": float("nan")},
     "optimizer.b2=nan must be a finite number in [0.0, 1.0] "
     "(--config.optimizer.b2=...)."),
    ({"optimizer.weight_decay": -0.1},
     "optimizer.weight_decay=-0.1 must be a finite number >= 0.0 "
     "(--config.optimizer.weight_decay=...)."),
    ({"data.seq_len": 0},
     "data.seq_len=0 must be a finite number >= 2 (--config.data.seq_len=...)."),
    ({"data.worker_count": -1},
     "data.worker_count=-1 must be a finite number >= 0 "
     "(--config.data.worker_count=...)."),
    ({"train.peak_flops_per_device": float("inf")},
     "train.peak_flops_per_device=inf must be a finite number >= 0.0 "
     "(--config.train.peak_flops_per_device=...)."),
    ({"mesh.tensor": 0},
     "mesh.tensor=0: a mesh axis is a whole number >= 1, or -1 for the devices "
     "left over."),
    ({"mesh.dcn_data": 0},
     "mesh.dcn_data=0: the node / TPU slice count is a whole number >= 1, or -1 "
     "for one per node / slice."),
    ({"require_init_from_hf": True, "instruct_hint": "google/gemma-3-12b-pt"},
     "this config fine-tunes a pretrained checkpoint: set "
     "--config.init_from_hf=/path/to/google/gemma-3-12b-pt (an HF directory "
     "with config.json and safetensors)."),
])
def test_validation_errors_name_the_field_and_the_fix(c, changes, message):
  for field, value in changes.items():
    _set(c, field, value)
  with pytest.raises(run_config.ConfigError) as e:
    run_config.validate(c)
  assert str(e.value) == message
  assert isinstance(e.value, ValueError)


def test_no_model_and_an_unknown_mesh_axis(c):
  c.model.hf_config = type(c.model.hf_config)()
  with pytest.raises(run_config.ConfigError) as e:
    run_config.validate(c)
  assert str(e.value) == (
      "no model: set --config.init_from_hf=HF_DIR (a checkpoint), or "
      "model.preset / model.hf_config (from scratch).")
  c.model.preset = "gemma3-12b"
  run_config.validate(c)
  c.mesh.pipeline = 2
  with pytest.raises(run_config.ConfigError) as e:
    run_config.validate(c)
  assert str(e.value) == ("mesh.pipeline: mesh axes are data, fsdp and tensor (and dcn_data, "
                          "the number of nodes or slices the data axis spans).")


def test_check_mesh(c):
  mesh = types.SimpleNamespace(shape={"data": 2, "fsdp": 4, "tensor": 1})
  run_config.check_mesh(c, mesh)  # 8 rows over 2 x 4 devices.
  c.train.microbatches = 2
  with pytest.raises(run_config.ConfigError) as e:
    run_config.check_mesh(c, mesh)
  assert str(e.value) == (
      "data.batch_size=8 / train.microbatches=2 = 4 rows per micro-batch do "
      "not split over mesh data x fsdp = 8 devices; use a batch_size that is "
      "a multiple of 16.")
  # Tensor parallelism does not split the batch.
  run_config.check_mesh(c, types.SimpleNamespace(shape={"tensor": 8}))


def test_data_config_for_training_and_evaluation(c):
  c.suite_dir = "/suites/s"
  c.data.tasks = ["coinflip", "urn"]
  c.data.worker_count = 3
  c.data.seed = 7
  assert run_config.data_config(c) == DataConfig(
      suite_dir="/suites/s", template="gemma", tokenizer=None,
      tasks=("coinflip", "urn"), split="train", seq_len=256, max_tokens=257,
      batch_size=8, seed=7, num_epochs=None, shuffle=True,
      packing="retained_best_fit", num_packing_bins=64, worker_count=3)
  # Evaluation: one ordered pass, in the main process.
  assert run_config.data_config(c, split="test", tokenizer="/tok") == (
      DataConfig(suite_dir="/suites/s", template="gemma", tokenizer="/tok",
                 tasks=("coinflip", "urn"), split="test", seq_len=256,
                 max_tokens=257, batch_size=8, seed=7, num_epochs=1,
                 shuffle=False, packing="retained_best_fit",
                 num_packing_bins=64, worker_count=0))
  c.data.num_epochs = 2
  c.data.tokenizer = "/data_tok"
  train = run_config.data_config(c)
  assert (train.num_epochs, train.tokenizer) == (2, "/data_tok")


def test_tokenizer_path_prefers_data_tokenizer_then_checkpoint(c):
  assert run_config.tokenizer_path(c) is None  # The suite's default.
  c.init_from_hf = "/ckpt"
  assert run_config.tokenizer_path(c) == "/ckpt"
  c.data.tokenizer = "/tok.model"
  assert run_config.tokenizer_path(c) == "/tok.model"


def test_model_config_from_hf_config_takes_the_tokenizer_vocabulary(c):
  cfg = run_config.model_config(c, vocab_size=300)
  assert (cfg.family, cfg.vocab_size, cfg.hidden_size, cfg.num_layers,
          cfg.num_heads, cfg.num_kv_heads, cfg.head_dim) == (
              "gemma3", 300, 128, 4, 4, 2, 32)
  assert cfg.layer_windows == (64, None, 64, None)
  assert (cfg.param_dtype, cfg.dtype, cfg.attention_backend,
          cfg.remat_policy) == ("float32", "float32", "dense", "none")
  # The config is not changed: a later call with another tokenizer follows it.
  assert c.model.hf_config.vocab_size == 0
  assert run_config.model_config(c, vocab_size=512).vocab_size == 512


def test_model_config_refuses_an_unknown_remat_policy(c):
  c.model.remat_policy = "save_qkv_proj"  # MaxText's name, not ours
  with pytest.raises(run_config.ConfigError) as e:
    run_config.model_config(c, vocab_size=300)
  assert str(e.value).startswith(
      "model.remat_policy='save_qkv_proj': use one of none, dots, dots_no_batch, "
      "save_all_but_mlp_hidden, save_attention, save_qkv, save_qkv_offloaded, full "
      "(--config.model.remat_policy=")


def test_model_config_from_a_checkpoint_directory(c, tmp_path):
  hf = c.model.hf_config.to_dict()
  hf["vocab_size"] = 1000
  (tmp_path / "config.json").write_text(json.dumps(hf))
  c.init_from_hf = str(tmp_path)
  c.model.dtype = "bfloat16"
  cfg = run_config.model_config(c, vocab_size=900)
  assert cfg == ModelConfig.from_hf(hf, param_dtype="float32",
                                    dtype="bfloat16",
                                    attention_backend="dense",
                                    remat_policy="none")
  assert cfg.vocab_size == 1000
  with pytest.raises(run_config.ConfigError) as e:
    run_config.model_config(c, vocab_size=1001)
  assert str(e.value) == (
      "the model's vocabulary (1000) is smaller than the tokenizer's (1001): "
      "use the model's own tokenizer (data.tokenizer) or raise "
      "model.hf_config.vocab_size.")


def test_model_config_from_a_preset(c):
  c.model.hf_config = type(c.model.hf_config)()
  c.model.preset = "gemma3-12b"
  cfg = run_config.model_config(c, vocab_size=300)
  assert (cfg.family, cfg.vocab_size, cfg.num_layers, cfg.hidden_size) == (
      "gemma3", 262208, 48, 3840)


def test_optimizer_config_takes_only_its_fields(c):
  c.optimizer.unrelated = 5
  assert run_config.optimizer_config(c) == OptimizerConfig(
      learning_rate=3e-3, schedule="cosine", warmup_steps=20,
      end_learning_rate_fraction=0.1, b1=0.9, b2=0.999, eps=1e-8,
      weight_decay=0.01, grad_clip_norm=1.0, mu_dtype="float32")


def test_train_cli_refuses_a_nan_learning_rate_before_writing(tmp_path):
  from cli_runs import assert_one_error_line, run_cli  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  proc = run_cli("spectrax.train", "--config=configs/tiny.py", f"--workdir={workdir}",
                 "--config.optimizer.learning_rate=nan", timeout=300)
  assert_one_error_line(proc, "optimizer.learning_rate=nan must be a finite number")
  assert not workdir.exists() or not any(workdir.iterdir())
