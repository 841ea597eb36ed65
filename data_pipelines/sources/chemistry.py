"""Chemistry regression sets from BO-ICL (Ramos et al., 2023): two test tasks.

Raw files, from github ur-whitelab/BO-ICL (formerly BO-LIFT), paper/dataset/data/:
  chemistry/esol_iupac.csv: the ESOL aqueous-solubility set, 927 compounds;
    columns `Compound ID`, `measured log(solubility:mol/L)`,
    `ESOL predicted log(solubility:mol/L)`, `SMILES`, `SELFIES`, `InChI`,
    `IUPAC` (45 compounds have no IUPAC name). CRLF line endings.
  chemistry/train_data_num_feats.csv: oxidative coupling of methane, 1016
    experiments; the converter reads `prompt` (a natural-language synthesis
    description, with a leading space) and `C2_yield`.
The release's download script also fetches oxidative_methane_coupling.csv,
which no loader reads; it is not needed here.

chemistry_esol (docs/method.md#chemistry): the four representations -> the
measured log solubility; every compound once per pass in chunks of 15, each
chunk shown in 5 orderings. chemistry_oxidative: the experiment text -> C2
yield, chunks of 10.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

# The newest commit of the repository when this converter was written; both
# files have been unchanged there since May 2025.
_COMMIT = "43d38efca6fd91116c7550625ffb7859b6185b54"
_RAW = ("https://raw.githubusercontent.com/ur-whitelab/BO-ICL/" + _COMMIT +
        "/paper/dataset/data/")


def _raw(name: str, sha256: str, size: int) -> RawFile:
  return RawFile(
      path=f"chemistry/{name}",
      published_at=("https://github.com/ur-whitelab/BO-ICL/blob/" + _COMMIT +
                    f"/paper/dataset/data/{name}"),
      download=Download(target=f"chemistry/{name}", url=_RAW + name,
                        sha256=sha256, size=size))


ESOL = _raw("esol_iupac.csv",
            "fabf5b4f7ccf894e31ac304256ffa08bef83f62fff0d57f5e4c6acaac4b547cc",
            222184)
OXIDATIVE = _raw(
    "train_data_num_feats.csv",
    "19e016b74c205c4bf9c39ec2915d1604be53b1b88cfa36d32e454c1d2e124efa",
    1745776)

ESOL_GIVEN = ("SMILES", "SELFIES", "InChI", "IUPAC")
ESOL_TARGET = "measured log(solubility:mol/L)"
ESOL_DESCRIPTION = ("Predict the measured log(solubility:mol/L) from SMILES, "
                    "SELFIES, InChI, IUPAC")
OXIDATIVE_DESCRIPTION = (
    "The following is data from a set of chemistry experiments. Predict the "
    "C2_yield from the experiment description.")


def _number(path: str, line: int, column: str, text: str) -> str:
  """A measured value printed as a Python float (`-2.18`, `-2.0`, `4.62`)."""
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not math.isfinite(value):
    raise _common.bad_value(path, f"line {line}", column,
                            f"expected a finite number, got {text!r}")
  return repr(value)


def _given(text: str) -> str | float:
  # A blank cell is NaN to the release's pandas, and json.dumps prints it as
  # a bare NaN: `"IUPAC": NaN` for the 45 compounds without an IUPAC name. We
  # keep that input as released, since it is what the paper's models were
  # evaluated on (docs/method.md#chemistry).
  return math.nan if text in _common.MISSING else text


def generate_esol(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every compound, the four representations -> log S."""
  (path,) = _common.raw_paths("chemistry_esol", ctx, (ESOL,))
  rows = []
  for line, rec in _common.read_csv(path, (*ESOL_GIVEN, ESOL_TARGET)):
    rows.append(Row(
        input=serialise_fields({c: _given(rec[c]) for c in ESOL_GIVEN}),
        output=_number(path, line, ESOL_TARGET, rec[ESOL_TARGET])))
  yield Instance(id="all", rows=rows)


def generate_oxidative(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every experiment, its synthesis text -> C2 yield."""
  (path,) = _common.raw_paths("chemistry_oxidative", ctx, (OXIDATIVE,))
  rows = []
  for line, rec in _common.read_csv(path, ("prompt", "C2_yield")):
    prompt = rec["prompt"]
    if prompt.strip() in _common.MISSING:
      raise _common.bad_value(path, f"line {line}", "prompt",
                              "the experiment description is empty")
    # The text keeps its leading space, as in the file and the release.
    rows.append(Row(input=prompt,
                    output=_number(path, line, "C2_yield", rec["C2_yield"])))
  yield Instance(id="all", rows=rows)


TASKS = [
    # Release: n_per=-1, n_iter=15, permutations_per_iter=5 (62 chunks of
    # 15 -> 310 episodes from the 927 compounds).
    TaskSpec(name="chemistry_esol", suite_split="test", kind="icl",
             generate=generate_esol, fixed_k=15, chunk_all_rows=True,
             orderings=5, default_descriptions=(ESOL_DESCRIPTION,),
             raw_files=(ESOL,),
             about="BO-ICL ESOL: predict a compound's measured log "
             "solubility from its SMILES, SELFIES, InChI and IUPAC name."),
    # Release: n_per=-1, n_iter=10.
    TaskSpec(name="chemistry_oxidative", suite_split="test", kind="icl",
             generate=generate_oxidative, fixed_k=10, chunk_all_rows=True,
             default_descriptions=(OXIDATIVE_DESCRIPTION,),
             raw_files=(OXIDATIVE,),
             about="BO-ICL oxidative coupling of methane: predict the C2 "
             "yield from a catalyst synthesis and reaction description."),
]
