"""Defaults shared by every config: the paper's recipe (docs/method.md#training-recipe).

Not run directly; `configs/tiny.py`, `gemma12b.py`, `llama8b.py` and
`qwen14b.py` start from it.
"""

import ml_collections

from spectrax.parallel import sharding


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.require_init_from_hf = False  # real-model configs refuse to start fresh
  c.instruct_hint = ""
  # The built Spectrum Suite (python -m data_pipelines.build --out=DIR).
  c.suite_dir = "suite"
  c.build_suite_if_missing = False  # True: build the synthetic tasks first.

  c.data = ml_collections.ConfigDict(dict(
      template="gemma",  # gemma | qwen | llama | colon
      tokenizer="",  # HF dir or .model; "" = init_from_hf's, else the suite's
      tasks=(),  # () = every train-suite ICL task
      seq_len=2048,  # packed row length
      max_tokens=1024,  # episode cap (docs/method.md#episode-sampling)
      batch_size=512,  # global packed rows per step (~1.05M tokens, ~1100 episodes)
      num_epochs=1,
      packing="retained_best_fit",
      num_packing_bins=0,
      worker_count=4,
      seed=0,
      shards=0,  # data streams; fixes the data order for any process count (0 = one per process)
  ))

  # Model: an HF checkpoint to start from, or an architecture to start fresh.
  c.init_from_hf = ""  # HF directory (safetensors + config.json)
  c.transfer_special_tokens_from = ""  # instruct checkpoint (docs/method.md#base-model-preparation)
  c.model = ml_collections.ConfigDict(dict(
      preset="",  # e.g. gemma3-12b; ignored when init_from_hf is set
      hf_config=ml_collections.ConfigDict(),  # HF config.json keys, from scratch
      param_dtype="float32",  # master weights
      dtype="bfloat16",  # compute
      attention_backend="dense",  # dense | xla | cudnn | splash
      remat_policy="full",  # none | full | save_qkv | save_attention | ... (spectrax/models/remat.py)
  ))

  # LoRA (docs/models.md#lora): rank 0 = full fine-tuning. With rank > 0 the
  # model's weights are frozen in the compute dtype and only adapters on the
  # `targets` projections (q,k,v,o,gate,up,down) train, float32, same optimizer.
  c.lora = ml_collections.ConfigDict(dict(
      rank=0, alpha=16.0, dropout=0.0, targets="q,k,v,o,gate,up,down"))

  # dcn_data: how many nodes (GPU hosts) or TPU slices the data axis spans
  # (-1: one per node / slice). With dcn_data > 1 the other sizes describe one
  # node or slice: FSDP stays on NVLink / ICI and only the gradient all-reduce
  # crosses the slow network (sharding.make_mesh). The launch scripts set it.
  c.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=-1, tensor=1, dcn_data=1))
  c.sharding_rules = sharding.DEFAULT_RULES  # logical axis -> mesh axes; override per run

  c.optimizer = ml_collections.ConfigDict(dict(
      learning_rate=3e-6, schedule="linear", warmup_steps=0,
      end_learning_rate_fraction=0.0, b1=0.9, b2=0.999, eps=1e-8,
      weight_decay=0.0, grad_clip_norm=1.0, mu_dtype="float32"))

  c.train = ml_collections.ConfigDict(dict(
      num_steps=0,  # 0 = one pass over data.num_epochs, estimated from the data
      microbatches=1,  # gradient accumulation inside the step
      loss_chunk_size=256,  # positions per logits chunk
      seed=0,
      log_every=10,
      eval_every=200,  # 0 disables periodic evaluation
      eval_batches=8,
      # The paper's numbers during training (spectrax/training/in_training_eval.py):
      # a slice of ("steerability", "distributional") on the suite's held-out
      # tasks every eval_suites_every steps; () = off.
      eval_suites=(),
      eval_suites_every=1000,
      eval_suites_episodes=16,  # steerability episodes per task
      eval_suites_questions=64,  # distributional questions per task
      eval_suites_max_tokens=0,  # steerability episode cap; 0 = data.max_tokens
      eval_suites_tasks=(),  # () = every held-out task of those suites
      checkpoint_every=200,
      keep_checkpoints=3,
      stop_after=0,  # >0: checkpoint and exit 0 after this step; rerun to go on (job time limits)
      skip_nonfinite_steps=False,  # True: skip NaN/inf steps (counted)
      peak_flops_per_device=0.0,  # 0 = look up / measure
      # JAX's compiled programs in WORKDIR/jax_cache, reused by a restart;
      # JAX_COMPILATION_CACHE_DIR, when set, is used instead.
      compilation_cache=True,
  ))
  return c
