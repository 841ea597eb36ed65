"""Import rules of the package layout, read from the source with `ast`.

Nothing is imported: every module under spectrax/ and data_pipelines/ is
parsed, and every import statement in it (function-level ones included) is
checked against the rules below; so is every absl flag definition (only the
command-line entry points define flags). A failure names the file, the line
and the import.
"""

import ast
import collections
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("spectrax", "data_pipelines")

ENTRY_POINTS = ("spectrax.train", "spectrax.score", "spectrax.evaluate",
                "spectrax.convert", "spectrax.plan", "spectrax.show_batches",
                "spectrax.show_mixture")
# Programs, which alone may define absl flags.
PROGRAMS = ENTRY_POINTS + ("data_pipelines.build", "data_pipelines.download")

# module prefix -> the spectrax packages it must never import (lower layers
# never reach up).
LAYERS = {
    "spectrax.data": ("spectrax.training", "spectrax.scoring",
                      "spectrax.evaluation", "spectrax.checkpoints"),
    "spectrax.parallel": ("spectrax.training", "spectrax.scoring",
                          "spectrax.evaluation", "spectrax.checkpoints"),
    "spectrax.models": ("spectrax.training", "spectrax.scoring",
                        "spectrax.evaluation", "spectrax.checkpoints"),
    "spectrax.checkpoints": ("spectrax.training", "spectrax.scoring",
                             "spectrax.evaluation"),
    "spectrax.scoring": ("spectrax.training", "spectrax.evaluation"),
}

# Modules that run inside Grain worker processes, and what they must not
# import there (optax and orbax import jax themselves).
WORKER_MODULES = ("spectrax.data.templates", "spectrax.data.episodes",
                  "spectrax.data.episode_sampling", "spectrax.data.tokenizer",
                  "spectrax.data.episode_planning")
JAX_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax")

# Violations tolerated while work in progress fixes them, as (module,
# imported name) or (module, DEFINES_FLAGS); keep it empty. An entry that no
# longer occurs fails `test_known_violations_still_occur`.
DEFINES_FLAGS = "absl flags defined at import"
KNOWN_VIOLATIONS = [
]

Import = collections.namedtuple("Import", "module path line target")


def _module_name(path):
  rel = os.path.relpath(path, REPO)[:-len(".py")].split(os.sep)
  if rel[-1] == "__init__":
    rel = rel[:-1]
  return ".".join(rel)


def _modules():
  """{module name: file path} for every .py file of PACKAGES."""
  out = {}
  for package in PACKAGES:
    for root, _, files in os.walk(os.path.join(REPO, package)):
      for f in sorted(files):
        if f.endswith(".py"):
          path = os.path.join(root, f)
          out[_module_name(path)] = path
  return out


MODULES = _modules()


def _parse(path):
  with open(path) as f:
    return ast.parse(f.read(), path)


TREES = {m: _parse(p) for m, p in MODULES.items()}


def _imports(module, path):
  """Every import in the file, at any depth, as dotted names: `import a.b`
  gives `a.b`; `from a import b` gives `a.b` when that is a module of ours,
  else `a`."""
  tree = TREES[module]
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.extend(Import(module, path, node.lineno, a.name) for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        parent = ".".join(parts[:len(parts) - node.level + 1])
        base = f"{parent}.{base}" if base else parent
      for a in node.names:
        full = f"{base}.{a.name}"
        out.append(Import(module, path, node.lineno,
                          full if full in MODULES else base))
  return out


IMPORTS = [i for m, p in sorted(MODULES.items()) for i in _imports(m, p)]


def _flag_definitions(module, path):
  """Calls of `flags.DEFINE_*` (or a bare `DEFINE_*`), as (line, name)."""
  out = []
  for node in ast.walk(TREES[module]):
    if isinstance(node, ast.Call):
      f = node.func
      name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
      if name.startswith("DEFINE_"):
        out.append(Import(module, path, node.lineno, name))
  return out


FLAG_DEFINITIONS = [d for m, p in sorted(MODULES.items())
                    for d in _flag_definitions(m, p)]


def _within(name, prefix):
  return name == prefix or name.startswith(prefix + ".")


def _where(i):
  return f"{os.path.relpath(i.path, REPO)}:{i.line} ({i.module}) imports {i.target}"


def _check(rule):
  """Fails listing every import for which `rule(import)` gives a reason,
  known violations left out."""
  bad = [f"{_where(i)}: {reason}" for i in IMPORTS
         if (reason := rule(i)) and (i.module, i.target) not in KNOWN_VIOLATIONS]
  assert not bad, "\n".join(bad)


def test_the_parser_sees_imports():
  # Guards the rules below against passing because nothing was read.
  pairs = {(i.module, i.target) for i in IMPORTS}
  assert len(MODULES) > 50
  assert ("spectrax.data.episodes", "spectrax.data.templates") in pairs
  assert ("spectrax.data.tokenizer", "sentencepiece") in pairs  # In a function.
  assert ("spectrax.models", "spectrax.models.config") in pairs


def test_data_pipelines_never_import_spectrax():
  _check(lambda i: _within(i.module, "data_pipelines") and
         _within(i.target, "spectrax") and
         "data_pipelines builds records without spectrax")


def test_library_never_imports_an_entry_point():
  def rule(i):
    if i.module in ENTRY_POINTS:
      return None
    hit = [e for e in ENTRY_POINTS if _within(i.target, e)]
    return hit and (f"{hit[0]} is a command-line entry point; move what is "
                    "shared into the library")
  _check(rule)


def test_lower_layers_never_import_higher_ones():
  def rule(i):
    for layer, forbidden in LAYERS.items():
      if _within(i.module, layer):
        hit = [f for f in forbidden if _within(i.target, f)]
        if hit:
          return f"{layer} sits below {hit[0]}"
    return None
  _check(rule)


def test_no_two_modules_share_a_file_name():
  names = collections.defaultdict(list)
  for module, path in MODULES.items():
    if _within(module, "spectrax") and not path.endswith("__init__.py"):
      names[os.path.basename(path)].append(module)
  shared = {n: ms for n, ms in names.items() if len(ms) > 1}
  assert not shared, "\n".join(f"{n}: {', '.join(ms)}"
                                for n, ms in sorted(shared.items()))


def test_worker_modules_never_import_jax():
  def rule(i):
    if i.module in WORKER_MODULES and any(_within(i.target, j)
                                          for j in JAX_PACKAGES):
      return "this module runs in Grain worker processes, which must not load jax"
    return None
  _check(rule)


def _owner(name):
  """The module of ours that importing `name` runs, or None."""
  while name:
    if name in MODULES:
      return name
    name = name.rpartition(".")[0]
  return None


@pytest.mark.parametrize("worker", [m for m in WORKER_MODULES if m in MODULES])
def test_worker_modules_reach_no_jax_through_our_modules(worker):
  # Importing a module runs its packages' __init__ files and, lazily, what its
  # functions import: follow every import of ours from the worker module.
  by_module = collections.defaultdict(list)
  for i in IMPORTS:
    by_module[i.module].append(i)
  seen, todo, chain = set(), [worker], {worker: [worker]}
  while todo:
    module = todo.pop()
    if module in seen:
      continue
    seen.add(module)
    parts = module.split(".")
    parents = [".".join(parts[:n]) for n in range(1, len(parts))]
    for nxt in [p for p in parents if p in MODULES] + [
        o for i in by_module[module] if (o := _owner(i.target))]:
      chain.setdefault(nxt, chain[module] + [nxt])
      todo.append(nxt)
  bad = []
  for m in sorted(seen):
    hits = [i for i in by_module[m]
            if any(_within(i.target, j) for j in JAX_PACKAGES)
            and (i.module, i.target) not in KNOWN_VIOLATIONS]
    if hits:  # The first is enough to name the module.
      bad.append(f"{' -> '.join(chain[m])}: {_where(hits[0])}")
  assert not bad, "\n".join(bad)


def test_only_entry_points_define_flags():
  # A library module that defines flags breaks every other program that
  # defines the same names, and hides the library's inputs in global state.
  bad = [f"{os.path.relpath(d.path, REPO)}:{d.line} ({d.module}) calls "
         f"{d.target}: define flags in the entry point and pass values as "
         "arguments" for d in FLAG_DEFINITIONS
         if d.module not in PROGRAMS
         and (d.module, DEFINES_FLAGS) not in KNOWN_VIOLATIONS]
  assert not bad, "\n".join(bad)


def test_known_violations_still_occur():
  occurring = {(i.module, i.target) for i in IMPORTS} | {
      (d.module, DEFINES_FLAGS) for d in FLAG_DEFINITIONS}
  gone = [v for v in KNOWN_VIOLATIONS if v not in occurring]
  assert not gone, f"fixed, remove from KNOWN_VIOLATIONS: {gone}"
