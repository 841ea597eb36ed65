"""World Values Survey converter (data_pipelines/sources/wvs.py).

No .sav fixture can be written without pyreadstat (not a dependency), so
the row building is tested on an in-memory stand-in of what
`pyreadstat.read_sav` returns: data, variable labels and value labels.
"""

from __future__ import annotations

import math
import sys
import types

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import wvs

NAN = math.nan
SPEC = wvs.TASKS[0]
FILE = "wvs/WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav"
COLUMNS = ["B_COUNTRY", "N_TOWN", "S_INTLANGUAGE", "D_INTERVIEW", "Q1", "Q2",
           "Q46", "Q261", "Q288", "Q_MODE", "X003"]
COLUMN_LABELS = {
    "B_COUNTRY": "ISO 3166-1 numeric country code",
    "N_TOWN": "Settlement type", "S_INTLANGUAGE": "Language of interview",
    "D_INTERVIEW": "Interview ID",
    "Q1": "Important in life: Family",
    "Q2": "Important in life: Friends",
    "Q46": "Feeling of happiness",
    "Q261": "Year of birth",
    "Q288": "Scale of incomes",
    "Q_MODE": "Mode of data collection",
    "X003": "Age",
}
IMPORTANCE = {1.0: "Not at all important", 2.0: "Not very important",
              3.0: "Rather important", 4.0: "Very important"}
VALUE_LABELS = {
    "B_COUNTRY": {20.0: "Andorra", 32.0: "Argentina", 276.0: "Germany"},
    "N_TOWN": {1.0: "Under 5,000", 2.0: "5000-20 000"},
    "S_INTLANGUAGE": {1.0: "English", 2.0: "Espa\u00f1ol"},
    "Q1": IMPORTANCE, "Q2": IMPORTANCE,
    "Q46": {1.0: "Not at all happy", 2.0: "Not very happy",
            3.0: "Quite happy", 4.0: "Very happy"},
    # 18 labels: more than 17, skipped.
    "Q288": {float(v): f"step {v}" for v in range(-5, 14) if v != 0},
    "Q_MODE": {1.0: "Face-to-face", 2.0: "Online"},
    "X003": {},
}
RECORDS = [  # one per respondent, in file order
    {"B_COUNTRY": 276.0, "N_TOWN": 2.0, "S_INTLANGUAGE": NAN,
     "D_INTERVIEW": 1.0, "Q1": 4.0, "Q2": NAN, "Q46": 3.0, "Q261": 1970.0,
     "Q288": 5.0, "Q_MODE": 1.0, "X003": 53.0},
    {"B_COUNTRY": 32.0, "N_TOWN": 1.0, "S_INTLANGUAGE": 2.0,
     "D_INTERVIEW": 2.0, "Q1": 1.0, "Q2": 2.0, "Q46": NAN, "Q261": NAN,
     "Q288": NAN, "Q_MODE": 2.0, "X003": 20.0},
    {"B_COUNTRY": 20.0, "N_TOWN": NAN, "S_INTLANGUAGE": 1.0,
     "D_INTERVIEW": 3.0, "Q1": 3.0, "Q2": 3.0, "Q46": 4.0, "Q261": 2001.0,
     "Q288": 1.0, "Q_MODE": 1.0, "X003": 22.0},
]
Q1 = ("Important in life: Family\nOptions:\nA: Very important\n"
      "B: Rather important\nC: Not very important\nD: Not at all important")
Q46 = ("Feeling of happiness\nOptions:\nA: Very happy\nB: Quite happy\n"
       "C: Not very happy\nD: Not at all happy")
Q_MODE = "Mode of data collection\nOptions:\nA: Online\nB: Face-to-face"


def _instances(records=RECORDS, value_labels=VALUE_LABELS):
  out = list(wvs.build_instances("f.sav", range(len(records)), records,
                                 COLUMNS, COLUMN_LABELS, value_labels))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert (SPEC.name, SPEC.suite_split, SPEC.kind, SPEC.fixed_k, SPEC.mean_k,
          SPEC.chunk_all_rows, SPEC.episodes_per_instance, SPEC.orderings,
          SPEC.max_episodes, SPEC.p_desc, SPEC.default_descriptions) == (
              "wvs_individual", "test", "icl", None, None, False, 1, 1,
              None, 0.6, ())
  raw = SPEC.raw_files[0]
  assert raw.path == FILE and raw.download.target == FILE
  assert "worldvaluessurvey.org" in raw.download.manual
  assert "pip install pyreadstat" in raw.download.manual


def test_rows():
  first, second, third = _instances()
  assert [i.id for i in (first, second, third)] == ["0", "1", "2"]
  # Q2 missing, Q261 skipped by name, Q288 (18 labels) and X003 (not a Q
  # column) never asked; Q_MODE starts with Q and is asked, as the release.
  assert first.rows == [Row(input=Q1, output="A"), Row(input=Q46, output="B"),
                        Row(input=Q_MODE, output="B")]
  assert second.rows[0] == Row(input=Q1, output="D")
  assert second.rows[1] == Row(
      input=Q1.replace("Family", "Friends"), output="C")
  assert [r.input for r in second.rows] == [
      Q1, Q1.replace("Family", "Friends"), Q_MODE]
  assert [r.output for r in third.rows] == ["B", "B", "A", "B"]


def test_descriptions():
  first, second, third = _instances()
  assert first.descriptions == [
      "response ~ question + options",
      "Responses from this user: {'ISO 3166-1 numeric country code': "
      "'Germany', 'Settlement type': '5000-20 000'}"]
  # A Python repr: non-ASCII kept, single quotes.
  assert second.descriptions[1] == (
      "Responses from this user: {'ISO 3166-1 numeric country code': "
      "'Argentina', 'Settlement type': 'Under 5,000', "
      "'Language of interview': 'Espa\u00f1ol'}")
  assert "'N_TOWN'" not in third.descriptions[1]
  assert "Settlement type" not in third.descriptions[1]


def test_unlabelled_answer_names_file_row_and_column():
  records = [dict(RECORDS[0]), dict(RECORDS[1], Q46=7.0)]
  with pytest.raises(ValueError, match=r"f\.sav, row 1, column 'Q46': the "
                     r"value 7\.0 has no value label"):
    _instances(records)


def test_missing_demographic_column():
  with pytest.raises(ValueError, match=r"missing column\(s\) \['N_TOWN'\]"):
    list(wvs.build_instances("f.sav", [0], RECORDS[:1],
                             [c for c in COLUMNS if c != "N_TOWN"],
                             COLUMN_LABELS, VALUE_LABELS))


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    list(SPEC.generate(BuildContext(seed=0, raw_dir=str(tmp_path))))
  assert FILE in str(e.value)


def _raw_file(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  path.write_bytes(b"stand-in")
  return path


def test_without_pyreadstat_says_how_to_install(tmp_path, monkeypatch):
  _raw_file(tmp_path)
  monkeypatch.setitem(sys.modules, "pyreadstat", None)  # import fails
  with pytest.raises(ImportError, match=r"pip install pyreadstat"):
    list(SPEC.generate(BuildContext(seed=0, raw_dir=str(tmp_path))))


class _Rows:
  def __init__(self, records):
    self._records = records

  def __getitem__(self, picks):
    return _Frame([self._records[i] for i in picks])


class _Frame:
  """The few pandas.DataFrame members generate() uses."""

  def __init__(self, records):
    self.records = records
    self.columns = COLUMNS
    self.iloc = _Rows(records)

  def __len__(self):
    return len(self.records)

  def to_dict(self, orient):
    assert orient == "records"
    return [dict(r) for r in self.records]


def test_generate_draws_respondents(tmp_path, monkeypatch):
  path = _raw_file(tmp_path)
  many = [dict(RECORDS[i % 3], D_INTERVIEW=float(i)) for i in range(2100)]
  calls = []

  def read_sav(p):
    calls.append(p)
    return _Frame(many), types.SimpleNamespace(
        column_names_to_labels=COLUMN_LABELS,
        variable_value_labels=VALUE_LABELS)

  monkeypatch.setitem(sys.modules, "pyreadstat",
                      types.SimpleNamespace(read_sav=read_sav))
  build = lambda seed: list(SPEC.generate(BuildContext(seed=seed,
                                                       raw_dir=str(tmp_path))))
  out = build(0)
  assert calls == [str(path)]
  ids = [int(i.id) for i in out]
  assert len(ids) == wvs.N_RESPONDENTS == len(set(ids))
  assert ids != sorted(ids)  # a random draw, not the file's first 2000
  assert [i.id for i in build(0)] == [i.id for i in out]
  assert [i.id for i in build(1)] != [i.id for i in out]
  for inst in out[:30]:
    assert inst.rows == list(wvs.build_instances(
        "x", [0], [many[int(inst.id)]], COLUMNS, COLUMN_LABELS,
        VALUE_LABELS))[0].rows


def test_unreadable_file(tmp_path, monkeypatch):
  _raw_file(tmp_path)

  def read_sav(p):
    raise RuntimeError("bad magic")

  monkeypatch.setitem(sys.modules, "pyreadstat",
                      types.SimpleNamespace(read_sav=read_sav))
  with pytest.raises(ValueError, match=r"\.sav: cannot read as SPSS \.sav: "
                     r"bad magic"):
    list(SPEC.generate(BuildContext(seed=0, raw_dir=str(tmp_path))))


def test_seventeen_labels_are_kept():
  labels = dict(VALUE_LABELS, Q288={float(v): f"step {v}"
                                    for v in range(1, 18)})
  first = _instances(value_labels=labels)[0]
  assert first.rows[2] == Row(
      input="Scale of incomes\nOptions:\n" + "\n".join(
          f"{chr(ord('A') + i)}: step {17 - i}" for i in range(17)),
      output="M")  # value 5 = 'step 5', 13th from the top
