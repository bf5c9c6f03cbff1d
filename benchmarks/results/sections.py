"""Report sections: one per study, registered by name, so a new way of measuring brings its
own part of `summary.md` (and so `summary.tex` and `report.html`) and its own plots, with no
edit to the report.

A section reads records alone (pure: no JAX, no harness, no config). `archbench report`
writes, in this order: the run's header and core tables (accuracy, held-out loss), every
registered section's Markdown in registration order (built-in studies first, then plug-ins),
the performance table and the failed cells; the plots follow the same order, then the
training curves. An evaluator (benchmarks/harness/evaluators) names the section that shows
what it measured; a section whose records hold nothing for it returns no blocks and writes
no plot.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable

Records = list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Section:
  """`markdown(records)`: blocks of summary.md ('## Heading', a paragraph, a table made by
  records.markdown_table), joined by blank lines; [] when the run has nothing for it.
  `plots(out_dir, records)`: writes PNG files into out_dir and returns their paths (in the
  order report.html shows them); None for a section without plots."""
  name: str
  markdown: Callable[[Records], list[str]]
  plots: Callable[[pathlib.Path, Records], list[pathlib.Path]] | None = None


_SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
  """Add a section (a plug-in's too); registering a name again replaces it in place."""
  _SECTIONS[section.name] = section
  return section


def get(name: str) -> Section:
  if name not in _SECTIONS:
    raise KeyError(f'unknown report section {name!r}; valid: {", ".join(_SECTIONS)}')
  return _SECTIONS[name]


def names() -> list[str]:
  return list(_SECTIONS)


def all_sections() -> list[Section]:
  """Every registered section, in registration order."""
  return list(_SECTIONS.values())
