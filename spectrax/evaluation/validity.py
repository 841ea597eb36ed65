"""Validity checks of the 22 valid-output-coverage tasks (docs/method.md#diversity-tasks).

A diversity instance stores how its generations are checked:
`extra["match"]` is one of

  exact                            text ∈ valid (case-sensitive, unstripped)
  strip_lower                      text.strip().lower() == v.lower(), v ∈ valid
  lower_no_surrounding_whitespace  text == text.strip() and the lower-cased
                                   text is a lower-cased member of valid
  function                         a rule per task key (`FUNCTIONS` below)

`ValidityCheck(task, match, options, extra)` (or `check_for_record`) is a
callable text -> bool that also knows its finite valid set (for coverage)
and which member a valid text matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MATCH_MODES = ("exact", "strip_lower", "lower_no_surrounding_whitespace",
               "function")

_EMAIL = re.compile(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}")
_PROFESSIONAL_SUFFIXES = (".com", ".org", ".edu", ".gov")
_US_PHONE = (re.compile(r"\d{3}-\d{3}-\d{4}"),
             re.compile(r"\(\d{3}\) \d{3}-\d{4}"),
             re.compile(r"\d{3} \d{3} \d{4}"))
_INTERNATIONAL_PHONE = re.compile(r"\+\d{1,3}([-\s]?\d+)+")


def _dotted_part_ok(part: str, max_len: int) -> bool:
  return (1 <= len(part) <= max_len and not part.startswith(".")
          and not part.endswith(".") and ".." not in part)


def is_email(text: str) -> bool:
  """basic_emails: the address regex and sane local/domain parts."""
  s = text.strip()
  if s.count("@") != 1 or not _EMAIL.fullmatch(s):
    return False
  local, domain = s.split("@")
  return _dotted_part_ok(local, 64) and _dotted_part_ok(domain, 255)


def is_professional_email(text: str) -> bool:
  """professional_emails: an email whose domain ends .com/.org/.edu/.gov."""
  return is_email(text) and text.strip().split("@")[1].lower().endswith(
      _PROFESSIONAL_SUFFIXES)


def is_us_phone_number(text: str) -> bool:
  """`ddd-ddd-dddd`, `(ddd) ddd-dddd` or `ddd ddd dddd` after stripping."""
  s = text.strip()
  return any(p.fullmatch(s) for p in _US_PHONE)


def is_international_phone_number(text: str) -> bool:
  """`+` and a 1–3 digit code, 7–15 digits in all, ≤ 6 spaces/hyphens."""
  s = text.strip()
  if not s.startswith("+"):
    return False
  digits = sum(c.isdigit() for c in s)
  separators = s.count(" ") + s.count("-")
  return (7 <= digits <= 15 and separators <= 6
          and _INTERNATIONAL_PHONE.fullmatch(s) is not None)


def _parse_int(text: str) -> int | None:
  """Python's int(), as the released checks use (accepts '+7', '1_009')."""
  try:
    return int(text)
  except ValueError:
    return None


def _canonical_int(text: str) -> int | None:
  """An int written without surrounding space or a leading zero."""
  if text != text.strip() or (len(text) > 1 and text.startswith("0")):
    return None
  return _parse_int(text)


# Deterministic Miller–Rabin witnesses for n < 3.3e24; for larger n the
# test is probabilistic with error below 4^-12 per composite.
_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def is_prime(n: int) -> bool:
  """Primality of any Python int."""
  if n < 2:
    return False
  for p in _WITNESSES:
    if n % p == 0:
      return n == p
  d, s = n - 1, 0
  while d % 2 == 0:
    d, s = d // 2, s + 1
  for a in _WITNESSES:
    x = pow(a, d, n)
    if x in (1, n - 1):
      continue
    for _ in range(s - 1):
      x = x * x % n
      if x == n - 1:
        break
    else:
      return False
  return True


def is_prime_text(text: str) -> bool:
  """prime_numbers: a prime, any size; no surrounding space, no leading 0."""
  n = _canonical_int(text)
  return n is not None and is_prime(n)


def is_small_prime_text(text: str) -> bool:
  """small_prime_numbers: as prime_numbers, and below 100."""
  n = _canonical_int(text)
  return n is not None and n < 100 and is_prime(n)


def is_random_seed(text: str) -> bool:
  """random_seed: int(text) in [0, 2^32) (int() strips whitespace itself)."""
  n = _parse_int(text)
  return n is not None and 0 <= n < 2**32


def is_rng_1_100(text: str) -> bool:
  """rng_1_100: 1 ≤ n ≤ 100, no surrounding space, no leading 0."""
  n = _canonical_int(text)
  return n is not None and 1 <= n <= 100


def car_make_model_check(pairs: Sequence[Sequence[str]]
                         ) -> Callable[[str], bool]:
  """car_make_model: some reference (make, model) has both as
  case-insensitive substrings of the (unstripped) text."""
  by_make: dict[str, list[str]] = {}
  for pair in pairs:
    if len(pair) != 2:
      raise ValueError(f"reference_make_model_pairs entries must be "
                       f"[make, model], got {pair!r}; rebuild the suite's "
                       "diversity task.")
    by_make.setdefault(pair[0].lower(), []).append(pair[1].lower())

  def check(text: str) -> bool:
    low = text.lower()
    return any(make in low and any(model in low for model in models)
               for make, models in by_make.items())

  return check


def _function_rule(task: str, extra: Mapping[str, Any]
                   ) -> Callable[[str], bool]:
  if task == "car_make_model":
    pairs = extra.get("reference_make_model_pairs")
    if not pairs:
      raise ValueError("diversity task 'car_make_model' needs "
                       "extra['reference_make_model_pairs']; rebuild the "
                       "suite's diversity task from diversity_tasks.json.")
    return car_make_model_check(pairs)
  try:
    return FUNCTIONS[task]
  except KeyError:
    raise ValueError(
        f"diversity task {task!r} has match 'function' but no rule is known "
        f"for it; known: {sorted(FUNCTIONS) + ['car_make_model']}. Add its "
        "rule to spectrax/evaluation/validity.py or give it a finite valid "
        "set with match 'exact'.") from None


FUNCTIONS: dict[str, Callable[[str], bool]] = {
    "basic_emails": is_email,
    "professional_emails": is_professional_email,
    "us_phone_numbers": is_us_phone_number,
    "international_phone_numbers": is_international_phone_number,
    "prime_numbers": is_prime_text,
    "small_prime_numbers": is_small_prime_text,
    "random_seed": is_random_seed,
    "rng_1_100": is_rng_1_100,
}


class ValidityCheck:
  """A callable validity check of one task.

  Attributes:
    task: the task key.
    match: its match mode.
    valid_set: the finite valid set as stored (None: open-ended).
  """

  def __init__(self, task: str, match: str, options: Sequence[str],
               extra: Mapping[str, Any]):
    if match not in MATCH_MODES:
      raise ValueError(f"diversity task {task!r}: extra['match']={match!r}; "
                       f"use one of {MATCH_MODES}.")
    self.task = task
    self.match = match
    self.valid_set = frozenset(options) if options else None
    if match != "function" and not self.valid_set:
      raise ValueError(f"diversity task {task!r}: match {match!r} needs the "
                       "valid set in `options`, which is empty.")
    # lower-cased member -> the member, for the case-insensitive modes.
    self._lower = {o.lower(): o for o in options}
    self._function = _function_rule(task, extra) if match == "function" \
        else None

  def __call__(self, text: str) -> bool:
    if self.match == "exact":
      return text in self.valid_set
    if self.match == "strip_lower":
      return text.strip().lower() in self._lower
    if self.match == "lower_no_surrounding_whitespace":
      return text == text.strip() and text.lower() in self._lower
    return bool(self._function(text))

  def canonical(self, text: str) -> str | None:
    """The valid-set member a valid `text` counts as (for coverage)."""
    if self.valid_set is None or not self(text):
      return None
    if self.match == "exact":
      return text
    if self.match == "function":
      # Finite function tasks list canonical integers ('+7' counts as '7').
      if text in self.valid_set:
        return text
      n = _parse_int(text)
      return str(n) if n is not None and str(n) in self.valid_set else None
    return self._lower[text.strip().lower()]


def check_for_record(record) -> ValidityCheck:
  """The check of a stored diversity instance (`tasks.InstanceRecord`)."""
  if "match" not in record.extra:
    raise ValueError(f"diversity instance {record.id!r} has no "
                     "extra['match']; rebuild the suite's diversity task.")
  return ValidityCheck(record.id, record.extra["match"], record.options,
                       record.extra)
