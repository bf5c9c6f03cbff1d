"""Latency per generated token against context length, through each causal backbone's
token-by-token decoding (its own cache path, as `ArchSpec.decoding` declares it).

A recurrence carries a fixed-size state, so its step should cost the same at any context;
a TCN keeps a buffer of its receptive field, so it is flat too; the KV-cached attention
step reads every cached key and value, so it grows with the cache. The cache is sized to
the context length here (as `generate.sample` sizes it to the generated length): the step
attends over all slots with the unfilled ones masked, so its cost is set by the cache size,
and that is what shows the growth.

Per architecture (the registry's `small` budget; the transformer built causal) and
context length L: a cache of L positions is prefilled with L - n steps on random inputs,
then a compiled loop of n steps (in place, as in generation; each step's output summed so
nothing is dead code) is timed in windows ended by `block_until_ready`, from the same
prefilled cache each time; the first window is warm-up and the figure is the median over
the others, per step. Compile time is measured apart. With recompute (the default), it also
times one whole-model forward pass over L positions: what a sampler without a cache pays
for every token.

    python tools/perf_generation.py [--lengths 64 256 1024 4096]
        [--archs decoder,lstm] [--batch 1] [--out DIR] [--no_recompute]

4 min 40 s with the defaults on the 2-core Xeon of results/generation-cpu/ (about half of
it the recompute passes at L=4096). It prints figures and writes records (generation.json,
generation.md, generation.png under --out); it asserts nothing.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from archbench import archs
from archbench.archs import decoding
from archbench.benchmarks.measure import timing
from archbench.benchmarks.results import records

DEFAULT_LENGTHS = (64, 256, 1024, 4096)
SIZE = 'small'


def decoding_archs() -> list[str]:
  """Registered architectures that decode token by token (causal configs)."""
  return [n for n in archs.names() if archs.get(n).decoding is not None]


def causal_config(spec: archs.ArchSpec):
  cfg = spec.config(SIZE)
  return dataclasses.replace(cfg, causal=True) if spec.causal is None else cfg


def _window(module, params, cache, xs):
  """n decode steps of `module` (a `decoding.Stepwise`) over xs [n, B, 1, D] from `cache`;
  returns the summed outputs, so every step's whole computation is live."""
  def body(carry, x_t):
    cache, total = carry
    cache, y_t = decoding.step(module, params, cache, x_t)
    return (cache, total + y_t), None

  (_, total), _ = jax.lax.scan(body, (cache, jnp.zeros_like(xs[0])), xs)
  return total


def _prefill(module, params, cache, xs):
  def body(cache, x_t):
    return decoding.step(module, params, cache, x_t)[0], None

  return jax.lax.scan(body, cache, xs)[0]


def measure(name: str, length: int, *, batch: int, steps: int, windows: int,
            recompute: bool) -> dict[str, Any]:
  """One (architecture, context length) point: ms per cached step, and optionally per
  whole-model recompute."""
  spec = archs.get(name)
  cfg = causal_config(spec)
  module = spec.build(cfg)
  stepwise = decoding.Stepwise(module, spec.decoding_for(cfg))
  d = cfg.width
  n = max(1, min(steps, length // 4))  # the window's steps sit at contexts L - n + 1 .. L
  rng = np.random.default_rng(0)
  inputs = lambda t: jnp.asarray(rng.standard_normal((t, batch, 1, d)), jnp.float32)
  sequence = jnp.swapaxes(inputs(length)[:, :, 0], 0, 1)  # [B, L, D]
  params = jax.jit(module.init)(jax.random.PRNGKey(0), sequence)['params']
  variables = {'params': {'backbone': params}}  # as `stepwise` holds the backbone

  cache = jax.jit(functools.partial(decoding.init_cache, stepwise))(sequence)
  prefill, _ = timing.compile_ahead(functools.partial(_prefill, stepwise), variables, cache,
                                    inputs(length - n))
  cache = jax.block_until_ready(prefill(variables, cache, inputs(length - n)))
  xs = inputs(n)
  window, compile_s = timing.compile_ahead(functools.partial(_window, stepwise), variables,
                                           cache, xs)
  chrono = timing.Chrono(warmup_windows=1)
  for _ in range(windows + 1):
    chrono.time(window, variables, cache, xs, steps=n)
  low, high = chrono.spread_s
  row = {'arch': name, 'context': length, 'batch': batch, 'steps_per_window': n,
         'windows': chrono.timed_windows, 'step_ms': 1e3 * chrono.median_s,
         'step_ms_min': 1e3 * low, 'step_ms_max': 1e3 * high, 'step_compile_s': compile_s,
         'params': spec.param_count(cfg), 'config': records.to_jsonable(cfg)}
  if recompute:
    forward, forward_compile_s = timing.compile_ahead(
        lambda p, x: module.apply({'params': p}, x), params, sequence)
    chrono = timing.Chrono(warmup_windows=1)
    for _ in range(max(2, windows // 2) + 1):
      chrono.time(forward, params, sequence)
    row.update(recompute_ms=1e3 * chrono.median_s, recompute_compile_s=forward_compile_s)
  return row


def markdown(rows: list[dict], env: dict[str, Any], lengths: list[int], batch: int) -> str:
  """ms per token, one row per architecture and one column per context length, then the
  growth from the shortest to the longest context; recompute figures where measured."""
  by_arch: dict[str, dict[int, dict]] = {}
  for r in rows:
    by_arch.setdefault(r['arch'], {})[r['context']] = r
  head = ' | '.join(f'L={n}' for n in lengths)
  lines = [
      '# Generation latency per token against context length', '',
      f"Measured on {env['cpu']} ({env['cpu_count']} cores), backend {env['backend']} "
      f"({env['device_kind']}), jax {env['jax']}, flax {env['flax']}, commit "
      f"{env['git_commit']}, {env['utc_time']}. Batch {batch}, `{SIZE}` budget. Machines "
      'of this kind differ by up to 2x: compare within this table.', '',
      f"Command: `{env['command']}`", '',
      'Cached decode step (the backbone only, through its own cache path as '
      '`ArchSpec.decoding` declares it; cache sized L), median ms per token:', '',
      f'| arch | params | {head} | L={lengths[-1]} / L={lengths[0]} |',
      '|---|---|' + '---|' * len(lengths) + '---|']
  for name, points in by_arch.items():
    cells = [f"{points[n]['step_ms']:.3f}" if n in points else '' for n in lengths]
    first, last = points.get(lengths[0]), points.get(lengths[-1])
    growth = f"{last['step_ms'] / first['step_ms']:.1f}x" if first and last else ''
    params = next(iter(points.values()))['params']
    lines.append(f"| {name} | {params:,} | {' | '.join(cells)} | {growth} |")
  if any('recompute_ms' in r for r in rows):
    lines += ['', 'Without a cache: one whole-model forward pass over L positions, what a '
              'sampler that recomputes pays per token (ms):', '',
              f'| arch | {head} |', '|---|' + '---|' * len(lengths)]
    for name, points in by_arch.items():
      cells = [f"{points[n]['recompute_ms']:.2f}" if 'recompute_ms' in points.get(n, {})
               else '' for n in lengths]
      lines.append(f"| {name} | {' | '.join(cells)} |")
  return '\n'.join(lines) + '\n'


def plot(rows: list[dict], env: dict[str, Any], path: pathlib.Path, batch: int) -> None:
  import matplotlib
  matplotlib.use('Agg')  # files only, no display
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  names = list(dict.fromkeys(r['arch'] for r in rows))
  for name in names:
    points = sorted((r['context'], r['step_ms']) for r in rows if r['arch'] == name)
    ax.plot(*zip(*points), marker='o', label=name)
  ax.set_xscale('log', base=2)
  ax.set_yscale('log')
  ax.set_xlabel('context length L (cache size)')
  ax.set_ylabel('ms per token (cached decode step)')
  ax.set_title(f"Generation latency, batch {batch}, {SIZE} budget\n{env['cpu']} "
               f"({env['cpu_count']} cores), {env['backend']}", fontsize=9)
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
