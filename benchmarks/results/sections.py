"""Report sections: one per study, registered by name, so a new way of measuring brings its
own part of `summary.md` (and so `summary.tex` and `report.html`) and its own plots, with no
edit to the report.

A section reads records alone (pure: no JAX, no harness, no config). `archbench report`
writes, in this order: the run's header and core tables (accuracy, held-out loss), every
registered section's Markdown (the built-in studies first, in BUILT_IN's order, then the
others in registration order), the performance table and the failed cells; the plots follow
the same order, then the training curves. The built-in studies register when report.py
imports them (long_range.py, length_generalization.py, scaling.py, image_samples.py,
spectrograms.py); a plug-in loaded before that still comes after them. An evaluator
(benchmarks/harness/evaluators) names the section that shows what it measured; a section
whose records hold nothing for it returns no blocks and writes no plot.
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


BUILT_IN = ('lrd', 'length', 'scaling', 'images', 'spectrograms')  # in report order
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
  return [s.name for s in all_sections()]


def all_sections() -> list[Section]:
  """Every registered section: the built-in ones in BUILT_IN's order, then the others in
  registration order."""
  built_in = [_SECTIONS[name] for name in BUILT_IN if name in _SECTIONS]
  return built_in + [s for name, s in _SECTIONS.items() if name not in BUILT_IN]
