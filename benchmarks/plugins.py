"""Plug-ins: a user's architectures, tasks, evaluators, report sections and claims,
registered from the user's own code.

A plug-in is a Python file or an importable module that, when imported, calls
`archbench.archs.register`, `archbench.data.register`,
`archbench.benchmarks.harness.evaluators.register` (a way of measuring a cell) or
`archbench.benchmarks.results.sections.register` (its part of the report; keep it free of
JAX, so that `archbench report --plugin FILE DIR` renders it without) or
`archbench.benchmarks.claims.register` (a claim about the families, with its experiment
and decision rule: `archbench claims`). It is loaded by
`--plugin PATH_OR_MODULE`
(repeatable), or, for an installed package, through the entry-point group
`archbench.plugins` (each entry point names a module, loaded on start-up). Once loaded, a
plug-in takes part in every suite, budget, FLOP count and registry-parametrised test
exactly like a built-in (tests: `pytest --plugin PATH`).

Worker processes (suites with workers > 1) load the same plug-ins before running cells.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import pathlib
import sys

from archbench.benchmarks.core import UsageError, one_line

ENTRY_POINT_GROUP = 'archbench.plugins'

_loaded: list[str] = []  # what load() imported, in order (for worker processes, records)


def loaded() -> list[str]:
  return list(_loaded)


def _load_file(path: pathlib.Path) -> None:
  path = path.resolve()
  # One module per file, named by its path: loading the same file twice is a no-op, and
  # two plug-ins both called model.py do not collide.
  name = f'archbench_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}'
  if name in sys.modules:
    return
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  try:
    spec.loader.exec_module(module)
  except BaseException:
    del sys.modules[name]
    raise


def load(source: str) -> None:
  """Import one plug-in: a path to a .py file, or a module name."""
  if source in _loaded:
    return
  path = pathlib.Path(source)
  try:
    if source.endswith('.py') or path.is_file():
      if not path.is_file():
        raise UsageError(f'--plugin {source}: no such file')
      _load_file(path)
    else:
      importlib.import_module(source)
  except UsageError:
    raise
  except ModuleNotFoundError as e:
    raise UsageError(f'--plugin {source}: not a file, and no module named {e.name!r} '
                     'can be imported') from None
  except Exception as e:  # the plug-in's own error: say whose it is, in one line
    raise UsageError(f'--plugin {source} failed to load: {one_line(e)}') from None
  _loaded.append(source)


def load_entry_points() -> None:
  """Import every module registered under the `archbench.plugins` entry-point group."""
  for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
    load(entry_point.value.split(':')[0])


def load_all(sources: list[str] | tuple[str, ...] = ()) -> None:
  """Entry points, then the given plug-ins (what the CLI and worker processes call)."""
  load_entry_points()
  for source in sources:
    load(source)
