"""Convert checkpoints between Hugging Face and spectrax formats.

    # HF -> spectrax (orbax), copying the chat special-token rows from the instruct model:
    python -m spectrax.convert --from_hf=gemma-3-12b-pt --to_spectrax=ckpt/base \
        --transfer_special_tokens_from=gemma-3-12b-it
    # spectrax -> HF (safetensors shards + index, config.json, tokenizer files):
    python -m spectrax.convert --from_spectrax=ckpt/base --to_hf=out/hf --dtype=bfloat16
    # a training run (its newest checkpoint, or --step) -> HF, for vLLM / transformers:
    python -m spectrax.convert --from_workdir=runs/gemma12b --to_hf=out/tuned --dtype=bfloat16

One source (``--from_hf``, ``--from_spectrax`` or ``--from_workdir``), any of
the two targets.
Parameters are placed on all local devices (``--mesh``, FSDP by default), so
a model larger than one accelerator converts as long as it fits the host set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from spectrax.parallel import sharding
from spectrax.models.config import ModelConfig
from spectrax.models.hf import TOKENIZER_FILES, load_hf, save_hf, transfer_special_tokens

# Which template's special tokens a family's base model needs (SPEC §4).
_FAMILY_TEMPLATE = {"gemma3": "gemma", "qwen3": "qwen", "llama": "llama"}
TOKENIZER_SUBDIR = "tokenizer"


def _parse_mesh(text: str) -> dict[str, int]:
  try:
    return {k: int(v) for k, v in (part.split(":") for part in text.split(","))}
  except ValueError:
    raise ValueError(f"--mesh={text!r}: write axis:size pairs, e.g. data:1,fsdp:-1,tensor:1") from None


def special_tokens_for(cfg: ModelConfig, template: str | None, explicit: str | None) -> tuple[str, ...]:
  """The tokens to transfer: ``explicit`` (comma-separated) or the template's special tokens."""
  if explicit:
    return tuple(t for t in explicit.split(",") if t)
  from spectrax.data.templates import get_template
  return get_template(template or _FAMILY_TEMPLATE[cfg.family]).special_tokens


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m spectrax.convert", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--from_hf", help="HF model directory (config.json + safetensors)")
  src.add_argument("--from_spectrax", help="spectrax checkpoint directory (save_params_dir)")
  src.add_argument("--from_workdir", help="a python -m spectrax.train run directory")
  p.add_argument("--step", type=int, help="with --from_workdir: the checkpoint step (default: "
                 "the newest readable)")
  p.add_argument("--to_spectrax", help="write a spectrax checkpoint here (must not exist)")
  p.add_argument("--to_hf", help="write an HF directory here")
  p.add_argument("--transfer_special_tokens_from", metavar="INSTRUCT_DIR",
                 help="copy special-token embedding/head rows from this HF instruct model")
  p.add_argument("--template", choices=sorted(_FAMILY_TEMPLATE.values()),
                 help="whose special tokens to transfer (default: by model family)")
  p.add_argument("--special_tokens", help="comma-separated tokens, overrides --template")
  p.add_argument("--tokenizer_dir", help="tokenizer files for --to_hf (default: the source's)")
  p.add_argument("--param_dtype", default="float32", help="dtype of the loaded parameters")
  p.add_argument("--dtype", default=None, help="tensor dtype written by --to_hf (default: param_dtype)")
  p.add_argument("--max_shard_gb", type=float, default=4.0, help="safetensors shard size for --to_hf")
  p.add_argument("--mesh", default="data:1,fsdp:-1,tensor:1", help="device mesh, axis:size pairs")
  args = p.parse_args(argv)
  if not (args.to_spectrax or args.to_hf):
    p.error("give --to_spectrax and/or --to_hf")
  if args.step is not None and not args.from_workdir:
    p.error("--step goes with --from_workdir")

  from spectrax.checkpoints import params_dir as params_io  # after flag parsing: importing jax is slow
  mesh = sharding.make_mesh(_parse_mesh(args.mesh))
  if args.from_hf:
    model = load_hf(args.from_hf, mesh=mesh, param_dtype=args.param_dtype)
    tokenizer_src = args.from_hf
  elif args.from_workdir:
    from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
    loaded = load_model(workdir=args.from_workdir, step=args.step, mesh=mesh,
                        param_dtype=args.param_dtype)
    model = loaded.model
    print(f"loaded {loaded.name} (template {loaded.template})")
    tokenizer_src = os.path.join(args.from_workdir, TOKENIZER_SUBDIR)
  else:
    model = params_io.load_params_dir(args.from_spectrax, mesh=mesh, param_dtype=args.param_dtype)
    tokenizer_src = os.path.join(args.from_spectrax, TOKENIZER_SUBDIR)
  cfg = model.config
  print(f"loaded {cfg.family} model: {cfg.num_params() / 1e9:.3f}B parameters, {cfg.num_layers} layers")

  if args.transfer_special_tokens_from:
    tokens = special_tokens_for(cfg, args.template, args.special_tokens)
    base_tok = tokenizer_src if os.path.exists(os.path.join(tokenizer_src, "tokenizer_config.json")) else None
    copied = transfer_special_tokens(model, args.transfer_special_tokens_from, tokens, base_tok)
    head = "embedding rows" if cfg.tie_embeddings else "embedding and output-head rows"
    print(f"copied {head} from {args.transfer_special_tokens_from}:")
    for tok, idx in copied.items():
      print(f"  {idx:>8d}  {tok}")

  tokenizer_dir = args.tokenizer_dir or (tokenizer_src if os.path.isdir(tokenizer_src) else None)
  if args.to_spectrax:
    params_io.save_params_dir(args.to_spectrax, model, cfg)
    if tokenizer_dir:
      os.makedirs(os.path.join(args.to_spectrax, TOKENIZER_SUBDIR), exist_ok=True)
      for fn in TOKENIZER_FILES:
        if os.path.exists(os.path.join(tokenizer_dir, fn)):
          shutil.copy(os.path.join(tokenizer_dir, fn), os.path.join(args.to_spectrax, TOKENIZER_SUBDIR, fn))
    print(f"wrote spectrax checkpoint {args.to_spectrax}")
  if args.to_hf:
    files = save_hf(model, cfg, args.to_hf, dtype=args.dtype, tokenizer_dir=tokenizer_dir,
                    max_shard_bytes=int(args.max_shard_gb * (1 << 30)))
    print(f"wrote HF model {args.to_hf} ({len(files)} safetensors file(s))")
  return 0


if __name__ == "__main__":
  sys.exit(main())
