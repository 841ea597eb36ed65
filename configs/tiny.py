r"""The built-in default: a small Gemma-3-style model learns the synthetic suite.

  python -m spectrax.train --config=configs/tiny.py --workdir=runs/tiny

Builds the synthetic Spectrum Suite into ./suite if it is missing (and its
tokenizer), trains from scratch on 2 CPU cores for a few minutes, and ends by
printing the held-out loss on test-split episodes against the first
evaluation. Every 100 steps it also logs the paper's numbers on a small slice
(train.eval_suites): steerability's fixed-k loss on the held-out task
(`flight`) and distributional JS on `urn`.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.suite_dir = "suite"
  c.build_suite_if_missing = True
  c.data.template = "gemma"
  c.data.seq_len = 256
  c.data.max_tokens = 257
  c.data.batch_size = 8
  c.data.num_epochs = 0  # 0 = repeat; train.num_steps decides the length
  c.data.worker_count = 0
  c.data.num_packing_bins = 64
  c.model.hf_config = ml_collections.ConfigDict(dict(
      model_type="gemma3_text", hidden_size=128, intermediate_size=512,
      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
      head_dim=32, vocab_size=0,  # 0 = the tokenizer's vocabulary
      sliding_window=64, sliding_window_pattern=2, query_pre_attn_scalar=32,
      max_position_embeddings=4096))
  c.model.dtype = "float32"
  c.model.remat_policy = "none"
  c.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=-1, tensor=1, dcn_data=1))
  c.optimizer.learning_rate = 3e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 20
  c.optimizer.end_learning_rate_fraction = 0.1
  c.optimizer.weight_decay = 0.01
  c.train.num_steps = 400
  c.train.log_every = 10
  c.train.eval_every = 100
  c.train.eval_batches = 8
  c.train.eval_suites = ("steerability", "distributional")
  c.train.eval_suites_every = 100
  c.train.eval_suites_episodes = 4  # of ~2000 tokens each (flight, cut after k)
  c.train.eval_suites_questions = 32
  c.train.checkpoint_every = 100
  c.train.keep_checkpoints = 2
  return c
