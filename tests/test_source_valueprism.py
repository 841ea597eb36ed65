"""ValuePrism converter (data_pipelines/sources/valueprism.py) on its fixture."""

from __future__ import annotations

import ast
import csv
import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import valueprism

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {s.name: s for s in valueprism.TASKS}
S1 = "Lying to a friend to protect their feelings"
S12 = "Quitting a job without notice"


def _build(name, raw_dir=RAW, seed=0):
  out = list(SPECS[name].generate(BuildContext(seed=seed, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(name)
  return out


def test_task_table():
  got = {s.name: (s.suite_split, s.mean_k, s.fixed_k, s.episodes_per_instance,
                  s.chunk_all_rows, s.max_episodes, s.p_desc)
         for s in valueprism.TASKS}
  assert got == {
      "valueprism_situation": ("train", 256, None, 1, True, None, 0.6),
      "valueprism_vrd": ("train", 32, None, 1, True, 500, 0.6),
      "valueprism_vrds_noncontextual": ("train", 256, None, 1, True, None,
                                        0.6),
      "valueprism_misc": ("train", 32, None, 1, False, None, 0.6),
  }
  assert [s.test_fraction for s in valueprism.TASKS] == [0.05, 0.05, 0.0,
                                                         0.05]
  for spec in valueprism.TASKS:
    assert spec.raw_files == (valueprism.RAW,)
    assert spec.raw_files[0].download.manual


def test_situation():
  (inst,) = _build("valueprism_situation")
  outputs = [r.output for r in inst.rows]
  assert len(outputs) == 12  # the row without a situation is left out
  assert outputs[0] == S1
  assert "Café owner refusing service to a naïve customer" in outputs
  assert "Telling your boss\nthat a coworker cheated" in outputs
  assert all(r.input is None for r in inst.rows)
  assert SPECS["valueprism_situation"].default_descriptions == (
      "Generate a situation.", "Situations to do moral reasoning over")


def test_vrd():
  (inst,) = _build("valueprism_vrd")
  assert len(inst.rows) == 12
  by_input = {r.input: r.output for r in inst.rows}
  right = ("{'text': 'Autonomy', 'vrd': 'Right', 'explanation': 'One may "
           "leave a job freely.', 'valence': 'Supports'}")
  duty = ("{'text': 'Honesty', 'vrd': 'Duty', 'explanation': 'Tell the "
          "employer in advance.', 'valence': 'Opposes'}")
  assert by_input[S12] in (f"[{right}, {duty}]", f"[{duty}, {right}]")
  first = ast.literal_eval(by_input[S1])
  assert sorted(d["text"] for d in first) == [
      "Autonomy", "Duty to be honest", "Honesty", "Well-being"]
  assert {"text": "Duty to be honest", "vrd": "Duty",
          "explanation": 'Friends are owed "the truth".',
          "valence": "Opposes"} in first
  diary = ast.literal_eval(by_input["Reading your partner's diary"])
  assert {"text": "Well-being", "vrd": "Value", "explanation": None,
          "valence": "Either"} in diary
  third = ast.literal_eval(
      by_input["Refusing a blood transfusion for religious reasons"])
  assert len(third) == 4  # the row without a text is left out
  # Seeded: the same seed gives the same order.
  (again,) = _build("valueprism_vrd")
  assert again.rows == inst.rows
  assert SPECS["valueprism_vrd"].default_descriptions[0].startswith(
      "You will be given a situation and be asked to do moral reasoning")


def test_vrds_noncontextual():
  got = {i.id: ([r.output for r in i.rows], i.descriptions)
         for i in _build("valueprism_vrds_noncontextual")}
  assert got == {
      "Value": (["Autonomy", "Well-being", "Honesty"],
                ["Value (wrt moral reasoning)"]),
      "Right": (["Right to life", "Autonomy"],
                ["Right (wrt moral reasoning)"]),
      "Duty": (["Duty to be honest", "Honesty"],
               ["Duty (wrt moral reasoning)"]),
  }


def test_misc():
  got = {i.id: i for i in _build("valueprism_misc")}
  # Honesty has 9 Value rows (< 10), so only two values qualify.
  assert set(got) == {"Autonomy", "Well-being"}
  autonomy = [r.output for r in got["Autonomy"].rows]
  # 11 situations as a Value plus one where Autonomy is a Right.
  assert len(autonomy) == 12 and autonomy[-1] == S12
  assert len(got["Well-being"].rows) == 10
  assert got["Autonomy"].descriptions == [
      "Generate a situation relating to Autonomy."]


def test_misc_cap_is_seeded(monkeypatch):
  monkeypatch.setattr(valueprism, "MAX_VALUES", 1)
  chosen = {seed: [i.id for i in _build("valueprism_misc", seed=seed)]
            for seed in range(8)}
  assert all(len(ids) == 1 for ids in chosen.values())
  assert {ids[0] for ids in chosen.values()} == {"Autonomy", "Well-being"}
  assert chosen[3] == [i.id for i in _build("valueprism_misc", seed=3)]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(name, raw_dir=str(tmp_path))
  assert "valueprism/full.csv" in str(e.value)


def test_unknown_vrd_names_file_line_and_column(tmp_path):
  path = tmp_path / "valueprism" / "full.csv"
  path.parent.mkdir()
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(valueprism.COLUMNS)
    writer.writerow(["A situation", "Value", "Care", "x", "Supports"])
    writer.writerow(["A situation", "Virtue", "Care", "x", "Supports"])
  with pytest.raises(ValueError, match=r"full\.csv, line 3, column 'vrd'"):
    _build("valueprism_situation", raw_dir=str(tmp_path))


def test_missing_column(tmp_path):
  path = tmp_path / "valueprism" / "full.csv"
  path.parent.mkdir()
  path.write_text("situation,vrd,text,explanation\nA,Value,Care,x\n")
  with pytest.raises(ValueError, match="missing column"):
    _build("valueprism_vrd", raw_dir=str(tmp_path))
