"""What a metric key means, in one place: how keys are built, which direction is better,
whether a metric is bounded in [0, 1], and how it is labelled and printed. The report, the
comparison of runs and the reproductions all derive from it.

Keys are namespaced: train/… and eval/… measured, baseline/<key> the task's constant
predictor's value of <key>, lrd/… the long-range probes, length/<L>/<name> the metric
<name> (eval/<name>) on a held-out set of length L, ood/<name> its mean over the lengths
beyond training. Perf keys live in the record's own `perf` section.

Direction: a record's `task_spec` names its task's headline metric and says whether higher
is better; that comes first. Every other metric is looked up in METRICS by the end of its
name (eval/token_accuracy is an accuracy); a name METRICS does not know counts as higher is
better and unbounded.
"""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Metric:
  """label: shown in table headers; bounded: in [0, 1], so compared in absolute points and
  printed to three decimals (unbounded ones span decades: three significant digits)."""
  label: str
  higher_is_better: bool
  bounded: bool


METRICS = {
    'accuracy': Metric('accuracy', higher_is_better=True, bounded=True),
    'exact_match': Metric('exact match', higher_is_better=True, bounded=True),
    'mse': Metric('MSE', higher_is_better=False, bounded=False),
    'mae': Metric('MAE', higher_is_better=False, bounded=False),
    'loss': Metric('loss', higher_is_better=False, bounded=False),
    'bits_per_char': Metric('bits/char', higher_is_better=False, bounded=False),
}


# ---------------------------------------------------------------------------------------
# Building and reading keys.

def eval_key(name: str) -> str:
  return f'eval/{name}'


def baseline_key(key: str) -> str:
  """The task's constant predictor's value of `key` (e.g. baseline/eval/mse)."""
  return f'baseline/{key}'


def length_key(length: int, name: str) -> str:
  """eval/<name> on a held-out set whose sequences all have length `length`."""
  return f'length/{length}/{name}'


def ood_key(name: str) -> str:
  """The mean of length/<L>/<name> over the lengths L beyond training."""
  return f'ood/{name}'


def lrd_key(name: str) -> str:
  """A long-range probe's figure (lrd/length, lrd/grad_init, lrd/rate_trained, ...)."""
  return f'lrd/{name}'


def lengths_of(metrics: dict[str, Any]) -> dict[int, set[str]]:
  """L -> the metric names recorded at evaluation length L (length/<L>/<name> keys)."""
  out: dict[int, set] = {}
  for key in metrics:
    parts = key.split('/')
    if len(parts) == 3 and parts[0] == 'length' and parts[1].isdigit():
      out.setdefault(int(parts[1]), set()).add(parts[2])
  return out


def measured_key(key: str) -> str:
  """The eval/ metric a key measures: baseline/eval/mse, length/64/mse and ood/mse are all
  eval/mse's values."""
  parts = key.split('/')
  if parts[0] == 'baseline' and len(parts) > 1:
    return measured_key('/'.join(parts[1:]))
  if parts[0] == 'length' and len(parts) == 3:
    return eval_key(parts[2])
  if parts[0] == 'ood' and len(parts) == 2:
    return eval_key(parts[1])
  return key


# ---------------------------------------------------------------------------------------
# Semantics.

def _known(key: str) -> Metric | None:
  """The METRICS entry whose name ends the name of the metric `key` measures."""
  name = measured_key(key).rsplit('/', 1)[-1]
  return next((m for suffix, m in METRICS.items() if name.endswith(suffix)), None)


def higher_is_better(key: str, spec: dict | None = None) -> bool:
  """Whether a larger value of `key` is better: the task's spec when it names the metric
  `key` measures, else METRICS, else higher."""
  spec = spec or {}
  if spec.get('metric') == measured_key(key) and spec.get('higher_is_better') is not None:
    return bool(spec['higher_is_better'])
  known = _known(key)
  return known.higher_is_better if known else True


def is_bounded(key: str) -> bool:
  """Whether `key` lies in [0, 1] (accuracies, exact-match rates)."""
  known = _known(key)
  return bool(known and known.bounded)


def label(key: str) -> str | None:
  """The header name of an eval/ metric METRICS knows by its exact name (eval/mse: 'MSE'),
  else None: callers show the key itself."""
  namespace, _, name = key.partition('/')
  return METRICS[name].label if namespace == 'eval' and name in METRICS else None


def arrow(key: str, spec: dict | None = None) -> str:
  return '↑' if higher_is_better(key, spec) else '↓'


def value_format(key: str | None) -> str:
  """Bounded metrics to three decimals; the others to three significant digits, since they
  span decades (0.167 at the baseline, 1e-5 solved)."""
  return '{:.3f}' if key and is_bounded(key) else '{:.3g}'


def task_spec(record) -> dict[str, Any]:
  return (record.get('config') or {}).get('task_spec') or {}


def headline_metric(record) -> str | None:
  """The task's headline metric, as its spec named it (records of failed cells that never
  built their task fall back to what their metrics hold)."""
  named = task_spec(record).get('metric')
  if named:
    return named
  values = record.get('metrics', {})
  for key in ('eval/accuracy', 'eval/mse', 'eval/loss'):
    if baseline_key(key) in values or (key in values and key != 'eval/loss'):
      return key
  return 'eval/loss' if 'eval/loss' in values else None
