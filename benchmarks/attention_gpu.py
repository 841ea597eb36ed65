r"""The cuDNN attention paths against the float32 reference, and their speed, on the local GPU.

  python benchmarks/attention_gpu.py                     # a Hopper GPU: seq 2048, 8 rows
  python benchmarks/attention_gpu.py --seq=256 --rows=2  # CPU: the reference and xla only

Packed rows of 700-1023-token episodes (as the Spectrum Suite gives) and one
row of the most episodes the packed path takes (`max_segments_for`), in two
shapes: the ~1B benchmark model's (16 query heads on 4 kv heads, head_dim 128,
global) and a Gemma 3-like local layer (8 on 4, head_dim 256, window 1024).
For each backend: the largest error of the output and of dQ/dK/dV on real
tokens relative to the float32 dense reference's largest value, and the
milliseconds of one jitted forward+backward. `cudnn_packed` is
`attention_backend="cudnn"` on Hopper; `cudnn_masked` the dense-mask form
(before Hopper, and the path before this change). The last line is one JSON
object.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.harness import arg  # noqa: E402


def packed_rows(rows: int, seq: int, max_segments: int):
  """Segment ids and positions: long episodes in every row but the last, which holds
  `max_segments` equal episodes."""
  rng = np.random.default_rng(0)
  seg, pos = np.zeros((rows, seq), np.int32), np.zeros((rows, seq), np.int32)
  for r in range(rows):
    if r == rows - 1:
      lengths = [seq // max_segments] * max_segments
    else:
      lengths, at = [], 0
      while at < seq - 8:
        lengths.append(min(int(rng.integers(700, 1024)), seq - at))
        at += lengths[-1]
    at = 0
    for s, n in enumerate(lengths, 1):
      seg[r, at:at + n], pos[r, at:at + n], at = s, np.arange(n), at + n
  return seg, pos


def main():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from spectrax.models import attention as A  # pylint: disable=g-import-not-at-top
  from spectrax.models.config import GLOBAL_WINDOW  # pylint: disable=g-import-not-at-top
  seq, rows, repeats = arg("seq", 2048), arg("rows", 8), arg("repeats", 10)
  gpu = jax.default_backend() == "gpu"
  dtype = jnp.bfloat16 if gpu else jnp.float32  # CPU XLA lacks some bf16 -> f32 dots
  m = A.max_segments_for(seq)
  seg_np, pos_np = packed_rows(rows, seq, m)
  seg, pos = jnp.asarray(seg_np), jnp.asarray(pos_np)
  real = (seg != 0)[..., None, None]
  result = {"device": jax.devices()[0].device_kind, "jax": jax.__version__, "seq": seq,
            "rows": rows, "max_segments": m,
            "episodes_per_row": [len(set(r.tolist()) - {0}) for r in seg_np]}
  for name, n, kv, h, window in [("1b_global", 16, 4, 128, None),
                                 ("gemma_local", 8, 4, 256, min(1024, seq // 2))]:
    keys = jax.random.split(jax.random.key(0), 4)
    q = jax.random.normal(keys[0], (rows, seq, n, h), dtype)
    k, v = (jax.random.normal(key, (rows, seq, kv, h), dtype) for key in keys[1:3])
    cotangent = jax.random.normal(keys[3], q.shape, jnp.float32)
    scale = h ** -0.5
    mask = A.attention_mask(seg, pos, GLOBAL_WINDOW if window is None else window)
    local = jnp.asarray(window is not None)
    f32 = lambda x: x.astype(jnp.float32)  # noqa: E731
    backends = {
        "reference": lambda q, k, v: A.dense_attention(f32(q), f32(k), f32(v), mask, scale),
        "xla": lambda q, k, v: A.sdpa_attention(q, k, v, mask, scale, "xla")}
    case = {}
    if gpu:
      try:
        cc = jax.devices()[0].compute_capability
        case["layout"] = A.cudnn_layout(h, dtype, cc, jax.devices()[0].device_kind)
        case["kv_heads_repeated"] = not A._packed_offsets_stride_kv_heads()  # pylint: disable=protected-access
        backends["cudnn_masked"] = lambda q, k, v: A.sdpa_attention(q, k, v, mask, scale, "cudnn")
        if case["layout"] == "packed":
          backends["cudnn_packed"] = lambda q, k, v: A.cudnn_attention(
              q, k, v, seg, local, scale, window, m)
      except A.AttentionBackendError as e:
        case["cudnn_error"] = str(e)
    outputs = {}
    for backend, fn in backends.items():
      def loss(q, k, v, fn=fn):
        out = fn(q, k, v)
        return jnp.sum(jnp.where(real, f32(out) * cotangent, 0)), out
      step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))
      try:
        (_, out), grads = jax.block_until_ready(step(q, k, v))
        t = time.perf_counter()
        for _ in range(repeats):
          jax.block_until_ready(step(q, k, v))
        case[f"{backend}_ms"] = round((time.perf_counter() - t) / repeats * 1e3, 3)
        outputs[backend] = [np.asarray(f32(x)) for x in (out, *grads)]
      except Exception as e:  # pylint: disable=broad-except  # report and go on
        case[f"{backend}_error"] = f"{type(e).__name__}: {str(e)[:300]}"
    want = outputs["reference"]
    valid = seg_np != 0
    for backend, got in outputs.items():
      if backend != "reference":
        case[f"{backend}_rel_error"] = {
            part: float(np.abs(g[valid] - w[valid]).max() / np.abs(w[valid]).max())
            for part, g, w in zip(("out", "dq", "dk", "dv"), got, want)}
        case[f"{backend}_finite"] = bool(all(np.isfinite(g).all() for g in got))
    result[name] = case
    print(name, json.dumps(case))
  print(json.dumps(result))


if __name__ == "__main__":
  main()
