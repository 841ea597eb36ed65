r"""Converts checkpoints between Hugging Face and spectrax formats.

  # HF -> spectrax (orbax), copying the chat special-token rows from the instruct model:
  python -m spectrax.convert --from_hf=gemma-3-12b-pt --to_spectrax=ckpt/base \
      --transfer_special_tokens_from=gemma-3-12b-it
  # spectrax -> HF (safetensors shards + index, config.json, tokenizer files):
  python -m spectrax.convert --from_spectrax=ckpt/base --to_hf=out/hf --dtype=bfloat16
  # a training run (its newest checkpoint, or --step) -> HF, for vLLM / transformers:
  python -m spectrax.convert --from_workdir=runs/gemma12b --to_hf=out/tuned --dtype=bfloat16
  # a LoRA run -> a PEFT adapter (adapter_config.json + adapter_model.safetensors) for its base,
  # and/or the merged model (base + alpha/rank * B A):
  python -m spectrax.convert --from_workdir=runs/gemma12b_lora --to_peft=out/adapter
  python -m spectrax.convert --from_workdir=runs/gemma12b_lora --to_hf=out/merged --merge

One source (--from_hf, --from_spectrax or --from_workdir), any of the
targets (--to_peft: a LoRA run only). Parameters are placed on all local devices (--mesh, FSDP by
default), so a model larger than one accelerator converts as long as it fits
the host set.
"""

from __future__ import annotations

from absl import flags

from spectrax import cli
from spectrax.checkpoints import convert_weights
from spectrax.checkpoints.run_dir import RunDirError
from spectrax.checkpoints.training_state import CheckpointRestoreError
from spectrax.models.config import HFCheckpointError

_FROM_HF = flags.DEFINE_string("from_hf", None, "HF model directory (config.json + safetensors).")
_FROM_SPECTRAX = flags.DEFINE_string("from_spectrax", None,
                                     "spectrax checkpoint directory (save_params_dir).")
_FROM_WORKDIR = flags.DEFINE_string("from_workdir", None,
                                    "A python -m spectrax.train run directory.")
_STEP = flags.DEFINE_integer("step", None, "With --from_workdir: the checkpoint step "
                             "(default: the newest readable).", lower_bound=0)
_TO_SPECTRAX = flags.DEFINE_string("to_spectrax", None,
                                   "Write a spectrax checkpoint here (must not exist).")
_TO_HF = flags.DEFINE_string("to_hf", None, "Write an HF directory here.")
_TO_PEFT = flags.DEFINE_string("to_peft", None, "A LoRA run's adapters as a PEFT adapter "
                               "directory here (with --from_workdir).")
_MERGE = flags.DEFINE_bool("merge", False, "A LoRA run's --to_hf/--to_spectrax: the base with "
                           "the adapters merged in.")
_TRANSFER_FROM = flags.DEFINE_string(
    "transfer_special_tokens_from", None,
    "Copy special-token embedding/head rows from this HF instruct model directory.")
_TEMPLATE = flags.DEFINE_enum("template", None,
                              sorted(set(convert_weights.FAMILY_TEMPLATE.values())),
                              "Whose special tokens to transfer (default: by model family).")
_SPECIAL_TOKENS = flags.DEFINE_string("special_tokens", None,
                                      "Comma-separated tokens; overrides --template.")
_TOKENIZER_DIR = flags.DEFINE_string("tokenizer_dir", None,
                                     "Tokenizer files to write (default: the source's).")
_PARAM_DTYPE = flags.DEFINE_string("param_dtype", "float32", "Dtype of the loaded parameters.")
_DTYPE = flags.DEFINE_string("dtype", None,
                             "Tensor dtype written by --to_hf (default: param_dtype).")
_MAX_SHARD_GB = flags.DEFINE_float("max_shard_gb", 4.0, "Safetensors shard size for --to_hf.")
_MESH = flags.DEFINE_string("mesh", "data:1,fsdp:-1,tensor:1", "Device mesh, axis:size pairs.")


def _source() -> convert_weights.Source:
  given = [(kind, flag.value) for kind, flag in
           (("hf", _FROM_HF), ("spectrax", _FROM_SPECTRAX), ("workdir", _FROM_WORKDIR))
           if flag.value is not None]
  if len(given) != 1:
    raise cli.UserError("give exactly one source: --from_hf, --from_spectrax or "
                        "--from_workdir.")
  (kind, path), = given
  return convert_weights.Source(kind, path, _STEP.value)


def _mesh_axes(text: str) -> dict[str, int]:
  try:
    return {k: int(v) for k, v in (part.split(":") for part in text.split(","))}
  except ValueError:
    raise cli.UserError(f"--mesh={text!r}: write axis:size pairs, e.g. "
                        "data:1,fsdp:-1,tensor:1") from None


def main(argv):
  del argv
  convert_weights.convert(
      _source(), to_spectrax=_TO_SPECTRAX.value, to_hf=_TO_HF.value,
      to_peft=_TO_PEFT.value, merge=_MERGE.value,
      transfer_from=_TRANSFER_FROM.value, template=_TEMPLATE.value,
      special_tokens=_SPECIAL_TOKENS.value, tokenizer_dir=_TOKENIZER_DIR.value,
      param_dtype=_PARAM_DTYPE.value, dtype=_DTYPE.value, max_shard_gb=_MAX_SHARD_GB.value,
      mesh_axes=_mesh_axes(_MESH.value))


if __name__ == "__main__":
  cli.run(main, expected=(convert_weights.ConvertError, FileNotFoundError, RunDirError,
                          CheckpointRestoreError, HFCheckpointError))
