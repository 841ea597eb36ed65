"""Converters from real, user-supplied raw files to Spectrum Suite tasks.

Each module converts one source; `TASKS` lists every real-source task. The
converters read their files only when `generate` runs (pyarrow is imported
then too), so importing this package is cheap.
"""

from __future__ import annotations

from data_pipelines.schema import TaskSpec
from data_pipelines.sources import globaloqa, habermas, mmlu, numbergame
from data_pipelines.sources import opinionqa

TASKS: list[TaskSpec] = [
    *globaloqa.TASKS,
    *numbergame.TASKS,
    *habermas.TASKS,
    *opinionqa.TASKS,
    *mmlu.TASKS,
]
