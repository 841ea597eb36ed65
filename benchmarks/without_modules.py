"""Runs a script with some modules made unimportable, as on a machine that lacks them.

  python benchmarks/without_modules.py grain,ml_collections -- benchmarks/scorer.py --requests=8

`benchmarks/gpu.sh --check` uses it to prove, here, that the GPU benchmarks need
nothing the lent H200's image lacks (it has jax, flax, optax, orbax,
transformers; no grain, ml_collections, tensorflow_datasets, array_record).
"""

import importlib.abc
import runpy
import sys


class _Missing(importlib.abc.MetaPathFinder):

  def __init__(self, names):
    self.names = set(names)

  def find_spec(self, fullname, path=None, target=None):
    if fullname.split(".")[0] in self.names:
      raise ModuleNotFoundError(f"No module named {fullname!r} (hidden by "
                                "benchmarks/without_modules.py: the device "
                                "image lacks it)", name=fullname)
    return None


def main():
  if len(sys.argv) < 4 or sys.argv[2] != "--":
    sys.exit("usage: python benchmarks/without_modules.py NAME,NAME -- SCRIPT [ARGS]")
  sys.meta_path.insert(0, _Missing(sys.argv[1].split(",")))
  script = sys.argv[3]
  sys.argv = sys.argv[3:]
  runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
  main()
