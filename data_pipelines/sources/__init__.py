"""Converters from real, user-supplied raw files to Spectrum Suite tasks.

Each module converts one source; `TASKS` lists every real-source task. The
converters read their files only when `generate` runs (pyarrow is imported
then too), so importing this package is cheap.
"""

from __future__ import annotations

from data_pipelines.schema import TaskSpec
from data_pipelines.sources import globaloqa, habermas, mmlu, numbergame
from data_pipelines.sources import opinionqa
from data_pipelines.sources import (ambient, collective_alignment,
                                    community_alignment, gsm8k, helpsteer, imdb, issuebench, lewidi,
                                    netflix, prism, titanic,
                                    valueconsistency, valueprism)
from data_pipelines.sources import chatbotarena, chemistry, novacomet
from data_pipelines.sources import (arc, drop, gpqa, hellaswag, truthful_qa,
                                    winogrande, wvs)
from data_pipelines.sources import (diffuse, generativesocialchoice, haikus,
                                    polis, popquorn)
from data_pipelines.sources import (babynames, bare, changemyview, dices,
                                    hatespeech, jeopardy)

TASKS: list[TaskSpec] = [
    *globaloqa.TASKS,
    *numbergame.TASKS,
    *habermas.TASKS,
    *opinionqa.TASKS,
    *polis.TASKS,
    *diffuse.TASKS,
    *generativesocialchoice.TASKS,
    *popquorn.TASKS,
    *haikus.TASKS,
    *hatespeech.TASKS,
    *dices.TASKS,
    *babynames.TASKS,
    *changemyview.TASKS,
    *bare.TASKS,
    *jeopardy.TASKS,
    *mmlu.TASKS,
    *wvs.TASKS,
    *gpqa.TASKS,
    *hellaswag.TASKS,
    *winogrande.TASKS,
    *arc.TASKS,
    *drop.TASKS,
    *truthful_qa.TASKS,
    *novacomet.TASKS,
    *chatbotarena.TASKS,
    *chemistry.TASKS,
    *valueprism.TASKS,
    *valueconsistency.TASKS,
    *issuebench.TASKS,
    *helpsteer.TASKS,
    *imdb.TASKS,
    *gsm8k.TASKS,
    *titanic.TASKS,
    *ambient.TASKS,
    *prism.TASKS,
    *netflix.TASKS,
    *lewidi.TASKS,
    *community_alignment.TASKS,
    *collective_alignment.TASKS,
]
