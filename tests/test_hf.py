"""spectrax.models against transformers' PyTorch models: import, export, convert.

Tiny random models of each family are built in PyTorch (float32, non-trivial
norm weights, GQA), saved with ``save_pretrained`` and loaded with
``load_hf``; logits must agree within 1e-4 of the logit scale.
"""

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cli_runs import assert_one_error_line, run_cli  # noqa: E402
from spectrax.checkpoints import convert_weights  # noqa: E402
from spectrax.checkpoints import params_dir as params_io  # noqa: E402
from spectrax.models import ModelConfig, load_hf, save_hf, transfer_special_tokens  # noqa: E402
from spectrax.models.hf import SafetensorsReader  # noqa: E402

VOCAB = 256
TOL = 1e-4  # max |ours - transformers| relative to max |logit|


def hf_configs():
  """One tiny config per family exercising its special features."""
  common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, attn_implementation="eager", max_position_embeddings=128)
  return {
      # Sliding window 5 < length, local and global layers, separate rope bases,
      # linear global scaling, query_pre_attn_scalar != head_dim, soft-capping.
      "gemma3": transformers.Gemma3TextConfig(
          **common, num_hidden_layers=4, head_dim=16, query_pre_attn_scalar=24, sliding_window=5,
          layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
          rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 10_000.0},
                           "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
          final_logit_softcapping=5.0),
      # Llama 3.1 frequency scaling with thresholds that split head_dim 16's frequencies.
      "llama": transformers.LlamaConfig(
          **{**common, "max_position_embeddings": 64}, num_hidden_layers=3, tie_word_embeddings=False,
          rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
                           "rope_theta": 10_000.0}),
      # QK-norm, head_dim (32) != hidden / heads (16), tied head.
      "qwen3": transformers.Qwen3Config(**common, num_hidden_layers=3, head_dim=32,
                                        tie_word_embeddings=True),
  }


def randomize(model, seed=0):
  """Weights large enough that attention is peaked and norms matter."""
  gen = torch.Generator().manual_seed(seed)
  zero_centred = "Gemma" in type(model).__name__
  with torch.no_grad():
    for name, p in model.named_parameters():
      noise = torch.randn(p.shape, generator=gen)
      if "norm" in name:
        p.copy_(noise * 0.2 + (0.0 if zero_centred else 1.0))
      else:
        p.copy_(noise * 0.15)
  return model


def torch_logits(model, tokens):
  with torch.no_grad():
    return model(torch.tensor(np.asarray(tokens))).logits.float().numpy()


def assert_close(ours, ref, tol=TOL):
  scale = float(np.abs(ref).max())
  diff = float(np.abs(np.asarray(ours, np.float32) - ref).max())
  assert diff <= tol * scale, f"max diff {diff:.3g} > {tol} * logit scale {scale:.3g}"


@pytest.fixture(scope="module")
def tokens():
  return np.random.RandomState(0).randint(0, VOCAB, (4, 24)).astype(np.int32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tokens):
  """{family: (hf_dir, reference logits)} of saved tiny random models."""
  out = {}
  for i, (family, cfg) in enumerate(hf_configs().items()):
    model = randomize(transformers.AutoModelForCausalLM.from_config(cfg).eval(), seed=i)
    path = str(tmp_path_factory.mktemp(family))
    model.save_pretrained(path)
    out[family] = (path, torch_logits(model, tokens))
  return out


@pytest.fixture(scope="module")
def loaded(checkpoints):
  return {family: load_hf(path) for family, (path, _) in checkpoints.items()}


@pytest.mark.parametrize("family", ["gemma3", "llama", "qwen3"])
def test_logits_match_transformers(family, checkpoints, loaded, tokens):
  _, ref = checkpoints[family]
  assert_close(loaded[family].logits(jnp.asarray(tokens)), ref)


def test_gemma_window_is_exercised(checkpoints, tokens):
  """Control: treating the local layers as global must break the match."""
  path, ref = checkpoints["gemma3"]
  model = load_hf(path, layer_windows=(None,) * 4)
  diff = np.abs(np.asarray(model.logits(jnp.asarray(tokens))) - ref).max()
  assert diff > 100 * TOL * np.abs(ref).max()


def test_bf16_load_within_bf16_tolerance(checkpoints, tokens):
  path, ref = checkpoints["llama"]
  model = load_hf(path, param_dtype="bfloat16", dtype="bfloat16")
  assert model.embed[...].dtype == jnp.bfloat16
  logits = np.asarray(model.logits(jnp.asarray(tokens)))
  assert np.isfinite(logits).all()
  assert_close(logits, ref, tol=3e-2)
  # bf16 is not float32: the comparison above is not vacuous.
  assert np.abs(logits - ref).max() > TOL * np.abs(ref).max()


@pytest.mark.parametrize("family", ["gemma3", "llama", "qwen3"])
def test_export_roundtrip_through_transformers(family, checkpoints, loaded, tokens, tmp_path):
  src, ref = checkpoints[family]
  model = loaded[family]
  files = save_hf(model, model.config, str(tmp_path), max_shard_bytes=64_000)
  assert len(files) > 1 and os.path.exists(tmp_path / "model.safetensors.index.json")
  back = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), attn_implementation="eager")
  assert_close(torch_logits(back, tokens), ref)
  # Tensors are bit-identical to the source checkpoint's.
  a, b = SafetensorsReader(src), SafetensorsReader(str(tmp_path))
  for name in b.files:
    np.testing.assert_array_equal(a.get(name), b.get(name), err_msg=name)
  a.close(), b.close()


def test_bf16_export_loads_in_transformers(checkpoints, loaded, tokens, tmp_path):
  src, _ = checkpoints["llama"]
  model = loaded["llama"]
  save_hf(model, model.config, str(tmp_path), dtype="bfloat16")
  reader = SafetensorsReader(str(tmp_path))
  assert reader.get("model.norm.weight").dtype.name == "bfloat16"
  reader.close()
  back = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), attn_implementation="eager")
  assert back.dtype == torch.bfloat16
  # Same rounding as transformers casting the float32 source itself: identical logits.
  cast = transformers.AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager",
                                                           dtype=torch.bfloat16)
  np.testing.assert_array_equal(torch_logits(back, tokens), torch_logits(cast, tokens))


def test_sharded_source_checkpoint_loads(checkpoints, loaded, tokens, tmp_path):
  """A model.safetensors.index.json + shards source equals the single file."""
  model = loaded["qwen3"]
  save_hf(model, model.config, str(tmp_path), max_shard_bytes=20_000)
  again = load_hf(str(tmp_path))
  np.testing.assert_array_equal(np.asarray(again.logits(jnp.asarray(tokens))),
                                np.asarray(model.logits(jnp.asarray(tokens))))


def test_checkpoint_problems_listed_in_one_error(checkpoints, tmp_path):
  from safetensors.numpy import save_file
  src, _ = checkpoints["llama"]
  reader = SafetensorsReader(src)
  tensors = {n: reader.get(n) for n in reader.files}
  reader.close()
  del tensors["model.layers.1.mlp.up_proj.weight"]
  tensors["model.layers.0.mlp.extra.weight"] = np.zeros(3, np.float32)
  tensors["model.norm.weight"] = np.zeros(63, np.float32)
  save_file(tensors, str(tmp_path / "model.safetensors"))
  shutil.copy(os.path.join(src, "config.json"), tmp_path)
  with pytest.raises(ValueError) as err:
    load_hf(str(tmp_path))
  msg = str(err.value)
  assert "missing (1): model.layers.1.mlp.up_proj.weight" in msg
  assert "unexpected (1): model.layers.0.mlp.extra.weight" in msg
  assert "mis-shaped (1): model.norm.weight: file (63,), config wants (64,)" in msg


def test_gemma3_multimodal_checkpoint(tmp_path, tokens):
  """Gemma3ForConditionalGeneration (the 4b/12b/27b format): text decoder read, vision ignored."""
  # Real Gemma 3 configs have no final soft-cap; transformers 5.24's multimodal
  # class would not apply one (its text-only class does), so leave it unset.
  text = hf_configs()["gemma3"]
  text.final_logit_softcapping = None
  vision = transformers.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=28, patch_size=14)
  cfg = transformers.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                  mm_tokens_per_image=4, image_token_index=VOCAB - 1,
                                  boi_token_index=VOCAB - 3, eoi_token_index=VOCAB - 2)
  cfg._attn_implementation = "eager"
  model = randomize(transformers.Gemma3ForConditionalGeneration(cfg).eval(), seed=7)
  model.save_pretrained(str(tmp_path))
  text_tokens = tokens % (VOCAB - 3)  # no image tokens
  ref = torch_logits(model, text_tokens)
  ours = load_hf(str(tmp_path))
  assert ours.config.family == "gemma3" and ours.config.layer_windows == (5, None, 5, None)
  assert_close(ours.logits(jnp.asarray(text_tokens)), ref)


def test_unsupported_config_values_refused(checkpoints, tmp_path):
  src, _ = checkpoints["llama"]
  with open(os.path.join(src, "config.json")) as fh:
    raw = json.load(fh)
  with pytest.raises(ValueError, match="attention_bias=True is not implemented"):
    ModelConfig.from_hf({**raw, "attention_bias": True})
  with pytest.raises(ValueError, match=r"unknown config keys \['my_new_scaling'\]"):
    ModelConfig.from_hf({**raw, "my_new_scaling": 2.0})
  assert ModelConfig.from_hf({**raw, "my_new_scaling": 2.0}, ignore_fields=("my_new_scaling",))
  with pytest.raises(ValueError, match="model_type='mistral' is not supported"):
    ModelConfig.from_hf({**raw, "model_type": "mistral"})
  gemma_src, _ = checkpoints["gemma3"]
  with open(os.path.join(gemma_src, "config.json")) as fh:
    gemma = json.load(fh)
  assert ModelConfig.from_hf({**gemma, "attn_logit_softcapping": None})
  with pytest.raises(ValueError, match="attn_logit_softcapping=50.0 is not implemented"):
    ModelConfig.from_hf({**gemma, "attn_logit_softcapping": 50.0})


def write_tokenizer(directory, special):
  """A word-level tokenizer whose special tokens sit at fixed ids."""
  from tokenizers import Tokenizer, models, pre_tokenizers
  vocab = {f"w{i}": i for i in range(VOCAB - len(special))}
  vocab.update({tok: VOCAB - len(special) + k for k, tok in enumerate(special)})
  tok = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=list(special))
  fast.save_pretrained(directory)


def test_transfer_special_tokens_and_convert_cli(checkpoints, tokens, tmp_path, capsys):
  """HF base + instruct -> spectrax (rows copied) -> HF; only the special rows change."""
  special = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
  base_src, ref = checkpoints["llama"]
  base = str(tmp_path / "base")
  shutil.copytree(base_src, base)
  write_tokenizer(base, special)
  instruct = str(tmp_path / "instruct")
  inst_model = randomize(transformers.AutoModelForCausalLM.from_config(hf_configs()["llama"]), seed=11)
  inst_model.save_pretrained(instruct)
  write_tokenizer(instruct, special)

  ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "hf_out")
  convert_weights.convert(convert_weights.Source("hf", base), to_spectrax=ckpt,
                          transfer_from=instruct, mesh_axes={"data": 1, "fsdp": -1, "tensor": 1})
  printed = capsys.readouterr().out
  for k, tok in enumerate(special):
    assert f"{VOCAB - 3 + k}  {tok}" in printed
  proc = run_cli("spectrax.convert", f"--from_spectrax={ckpt}", f"--to_hf={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert os.path.exists(os.path.join(out, "tokenizer.json"))

  ids = [VOCAB - 3, VOCAB - 2, VOCAB - 1]
  r_base, r_inst, r_out = (SafetensorsReader(d) for d in (base, instruct, out))
  for name in ("model.embed_tokens.weight", "lm_head.weight"):
    got, was, want = r_out.get(name), r_base.get(name), r_inst.get(name)
    np.testing.assert_array_equal(got[ids], want[ids])
    np.testing.assert_array_equal(got[:ids[0]], was[:ids[0]])
  for r in (r_base, r_inst, r_out):
    r.close()
  # Every other tensor is untouched: on tokens that avoid the special ids, the
  # logits of the other vocabulary entries match the base model's.
  load = lambda d: transformers.AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager")  # noqa: E731
  plain = tokens % ids[0]
  assert_close(torch_logits(load(out), plain)[..., :ids[0]], torch_logits(load(base), plain)[..., :ids[0]])
  restored = params_io.load_params_dir(ckpt)
  assert restored.config == load_hf(base).config


def test_transfer_refuses_multi_piece_token(checkpoints, loaded, tmp_path):
  src, _ = checkpoints["qwen3"]
  instruct = str(tmp_path / "instruct")
  shutil.copytree(src, instruct)
  write_tokenizer(instruct, ("<|im_start|>",))
  with pytest.raises(ValueError, match="'<|im_end|>' is not a single token"):
    transfer_special_tokens(loaded["qwen3"], instruct, ("<|im_start|>", "<|im_end|>"))


def test_training_workdir_exports_to_transformers(tiny_run, tmp_path):
  """`convert --from_workdir` writes the trained model as an HF directory that
  transformers loads with the same logits and the run's tokenizer."""
  from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "hf")
  proc = run_cli("spectrax.convert", f"--from_workdir={tiny_run[0]}", "--step=8",
                 f"--to_hf={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "tokenizer.model" in os.listdir(out)
  ours = load_model(workdir=tiny_run[0])
  ids = np.asarray([ours.tokenizer.encode("<start_of_turn>output\nHeads<end_of_turn>\n")],
                   np.int32)
  ref = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
  assert_close(np.asarray(ours.model.logits(jnp.asarray(ids))), torch_logits(ref, ids))
  proc = run_cli("spectrax.convert", f"--from_hf={out}", "--step=3",
                 f"--to_spectrax={tmp_path / 'x'}")
  assert_one_error_line(proc, "--step goes with --from_workdir")
