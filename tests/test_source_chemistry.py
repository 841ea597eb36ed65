"""Tests of data_pipelines/sources/chemistry.py on real BO-ICL rows.

Fixtures: tests/fixtures/raw/chemistry/ (see PROVENANCE.md there).
"""

from __future__ import annotations

import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import chemistry

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in chemistry.TASKS}


def _build(name, raw_dir=FIXTURES, seed=0):
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_specs_match_the_release():
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.fixed_k,
                  s.episodes_per_instance, s.chunk_all_rows, s.orderings,
                  s.max_episodes, s.p_desc) for s in chemistry.TASKS}
  assert got == {
      "chemistry_esol": ("test", "icl", None, 15, 1, True, 5, None, 0.6),
      "chemistry_oxidative": ("test", "icl", None, 10, 1, True, 1, None, 0.6),
  }
  assert SPECS["chemistry_esol"].default_descriptions == (
      "Predict the measured log(solubility:mol/L) from SMILES, SELFIES, "
      "InChI, IUPAC",)
  assert SPECS["chemistry_oxidative"].default_descriptions == (
      "The following is data from a set of chemistry experiments. Predict "
      "the C2_yield from the experiment description.",)
  for spec in chemistry.TASKS:
    assert spec.about
    (raw,) = spec.raw_files
    assert raw.download.url == (
        "https://raw.githubusercontent.com/ur-whitelab/BO-ICL/"
        "43d38efca6fd91116c7550625ffb7859b6185b54/paper/dataset/data/"
        + os.path.basename(raw.path))
    assert raw.download.target == raw.path
    assert len(raw.download.sha256) == 64 and raw.download.size > 100_000


def test_esol_rows():
  (inst,) = _build("chemistry_esol")
  assert inst.id == "all" and inst.descriptions == []
  assert len(inst.rows) == 27  # every compound of the fixture, file order.
  assert inst.rows[0] == Row(
      input=('{"SMILES": "ClCC(Cl)(Cl)Cl", "SELFIES": '
             '"[Cl][C][C][Branch1][C][Cl][Branch1][C][Cl][Cl]", "InChI": '
             '"InChI=1S/C2H2Cl4/c3-1-2(4,5)6/h1H2", "IUPAC": '
             '"1,1,1,2-tetrachloroethane"}'),
      output="-2.18")
  # `-2.0` stays a Python float, not `-2`.
  assert inst.rows[1].output == "-2.0"
  assert inst.rows[1].input.endswith('"IUPAC": "1,1,1-trichloroethane"}')
  # No IUPAC name: a bare NaN, as the release's json.dumps of pandas' NaN.
  assert inst.rows[24] == Row(
      input=('{"SMILES": "CCC#C", "SELFIES": "[C][C][C][#C]", "InChI": '
             '"InChI=1S/C4H6/c1-3-4-2/h1H,4H2,2H3", "IUPAC": NaN}'),
      output="-1.24")
  assert [r.output for r in inst.rows[24:]] == ["-1.24", "-3.01", "-2.36"]
  assert sum(r.input.endswith('"IUPAC": NaN}') for r in inst.rows) == 3


def test_oxidative_rows():
  (inst,) = _build("chemistry_oxidative")
  assert inst.id == "all" and len(inst.rows) == 20
  assert inst.rows[0] == Row(
      input=(" To synthesize the catalyst Mn-FeMoO4/SiO2 for the oxidative "
             "coupling of methane, Support (1.0 g) is impregnated with 4.5 mL "
             "of an aqueous solution consisting of Mn ( 0.37 mol) , Fe ( "
             "0.185 mol) , Mo ( 0.185 mol) , at 50 \u00b0C for 6 h. The "
             "reaction was then ran at 900 \u00b0C. The total flow rate was "
             "15 mL/min (Ar: 10.5 mL/min, CH4: 3.0 mL/min, O2: 1.5 mL/min), "
             "leading to a reactant contact time of 0.5 s."),
      output="4.62")
  assert [r.output for r in inst.rows[:7]] == [
      "4.62", "4.39", "6.12", "1.32", "1.43", "5.2", "13.9"]
  assert inst.rows[18].output == "2.0"
  assert all(r.input.startswith(" To synthesize the catalyst ")
             for r in inst.rows)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(name, tmp_path)
  (raw,) = SPECS[name].raw_files
  assert raw.path in str(e.value) and raw.published_at in str(e.value)


def _copy_with(tmp_path, name, old, new):
  src = os.path.join(FIXTURES, "chemistry", name)
  os.makedirs(tmp_path / "chemistry", exist_ok=True)
  for other in os.listdir(os.path.dirname(src)):
    shutil.copy(os.path.join(os.path.dirname(src), other),
                tmp_path / "chemistry" / other)
  with open(src, newline="", encoding="utf-8") as f:
    text = f.read()
  assert old in text
  with open(tmp_path / "chemistry" / name, "w", newline="",
            encoding="utf-8") as f:
    f.write(text.replace(old, new, 1))


def test_esol_bad_measurement_names_file_line_column(tmp_path):
  # File line 3 (the second compound) gets an unreadable measurement.
  _copy_with(tmp_path, "esol_iupac.csv", ",-2.0,-2.232,", ",n/a?,-2.232,")
  with pytest.raises(ValueError) as e:
    _build("chemistry_esol", tmp_path)
  message = str(e.value)
  assert "esol_iupac.csv, line 3, column 'measured log(solubility:mol/L)'" in (
      message)
  assert "'n/a?'" in message


def test_oxidative_blank_yield_names_file_line_column(tmp_path):
  _copy_with(tmp_path, "train_data_num_feats.csv", ",0.5,4.39,", ",0.5,,")
  with pytest.raises(ValueError,
                     match=r"train_data_num_feats\.csv, line 3, column "
                     r"'C2_yield'"):
    _build("chemistry_oxidative", tmp_path)


def test_missing_column(tmp_path):
  _copy_with(tmp_path, "esol_iupac.csv", ",SELFIES,", ",SELFIE,")
  with pytest.raises(ValueError, match=r"missing column\(s\) \['SELFIES'\]"):
    _build("chemistry_esol", tmp_path)
