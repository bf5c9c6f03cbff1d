"""Evaluators: named ways of measuring a cell beyond its held-out evaluation, registered like
architectures and tasks (base.py: the contract and the registry). Built in:

  length_sweep  marks a point of an accuracy-versus-length sweep (lrd/length)
  gradient      the gradient-versus-distance probe, at initialisation and trained (lrd/…)
  cost          forward-only inference timing, in place of the held-out evaluation
  lengths       accuracy at every evaluation length (length/<L>/…, ood/…)
  sampling      samples from a language model, scored by the task
  spectrograms  log-mel spectrograms of a few held-out examples per class (speech tasks)

A plug-in (`--plugin FILE`) adds its own with `register(EvaluatorSpec(...))` and its report
section with benchmarks.results.sections.register; examples/weight_norm.py is one.
"""
from archbench.benchmarks.harness.evaluators.base import (  # noqa: F401
    BUILT_IN, Context, EvaluatorSpec, all_evaluators, describe, for_cell, get, list_lines,
    names, register)
