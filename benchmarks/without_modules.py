"""Runs a script with some modules made unimportable, as on a machine that lacks them.

  python benchmarks/without_modules.py grain,ml_collections -- benchmarks/scorer.py --requests=8

`benchmarks/gpu.sh --check` uses it to prove, here, that the GPU benchmarks need
nothing the lent H200's image lacks (it has jax, flax, optax, orbax,
transformers; no grain, ml_collections, tensorflow_datasets, array_record).
"""

import runpy
import sys


def hide(names) -> None:
  """Makes each top-level module in `names` look absent, as on a machine that lacks it.

  `sys.modules[name] = None` is what Python itself treats as "not importable":
  `import name` (and `import name.sub`) raises ModuleNotFoundError, and
  `importlib.util.find_spec(name)` returns None, so availability probes (e.g.
  transformers' and accelerate's `is_*_available`) answer "no" instead of
  failing, exactly as they do where the package is not installed.
  """
  for name in names:
    if name in sys.modules and sys.modules[name] is not None:
      raise RuntimeError(f"{name} is already imported; hide it before anything imports it")
    sys.modules[name] = None


def main():
  if len(sys.argv) < 4 or sys.argv[2] != "--":
    sys.exit("usage: python benchmarks/without_modules.py NAME,NAME -- SCRIPT [ARGS]")
  hide(sys.argv[1].split(","))
  script = sys.argv[3]
  sys.argv = sys.argv[3:]
  runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
  main()
