"""The gradient probe (evaluator 'gradient'): how strongly the readout depends on inputs k
steps back, at initialisation and after training.

The gradient probe measures, for every input position t, the norm of the derivative of
the readout with respect to the input representation at t (after the task's input
adapter, so every family is measured at the same place), and reports it against the
distance k = (L - 1) - t from the readout, which sits at the last position L - 1:

* classify / regress: the exact gradient of each example's loss;
* per_token / seq2seq: the Frobenius norm of the Jacobian of the last position's output,
  estimated from a few random vector-Jacobian products (E‖Jᵀu‖² = ‖J‖²_F for u ~ N(0, I)).

Norms are averaged over the examples of a fixed probe batch. A curve is summarised by
three figures (see `summarize`): the fitted exponential decay rate per step, the effective
horizon and the far/near ratio. Theory in one line each: an Elman RNN's curve decays like
ρ^k for recurrent spectral radius ρ (Bengio et al. 1994; Pascanu et al. 2013), attention's
path length is constant (no decay), a TCN's is exactly zero beyond its receptive field.

It runs on the cells whose probes hold 'gradient' (a sweep's `gradient_probe_at` in a suite
config, benchmarks/config.py). The accuracy-versus-length probe is a sweep of ordinary cells
(evaluator 'length_sweep'); `long_range.longest_solved` (results/) reads their records.

Shapes: B batch, L positions, D width of the input representation, O readout outputs.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register
from archbench.benchmarks.measure import timing
from archbench.data.spec import Stream, TaskSpec

HORIZON_FLOOR = 1e-3  # the horizon is the farthest k whose norm is >= this x the maximum
FIT_FLOOR = 1e-30     # norms below this (exact zeros, float underflow) are left out of fits


def position_norms(readout: Callable[[jax.Array], jax.Array], x: jax.Array,
                   key: jax.Array | None = None, num_vjps: int | None = None) -> jax.Array:
  """[L]: the batch mean over b of ‖∂readout_b / ∂x_{b,t}‖ for every position t.

  x: [B, L, ...], examples independent of each other (no batch statistics).
  num_vjps None: `readout(x)` is a scalar, the sum over examples of a per-example quantity
    (e.g. the loss), and the norms are those of its exact gradient.
  num_vjps n: `readout(x)` is [B, O], and the norms are of the Jacobian of example b's
    outputs, estimated from n Gaussian probe vectors.
  """
  if num_vjps is None:
    grads = jax.grad(readout)(x)[None]                                # [1, B, L, ...]
  else:
    y, vjp = jax.vjp(readout, x)
    cotangents = jax.random.normal(key, (num_vjps, *y.shape), y.dtype)
    grads = jax.vmap(lambda u: vjp(u)[0])(cotangents)                 # [V, B, L, ...]
  squares = jnp.sum(jnp.square(grads).reshape(*grads.shape[:3], -1), axis=-1)  # [V, B, L]
  return jnp.mean(jnp.sqrt(jnp.mean(squares, axis=0)), axis=0)        # [L]


def by_distance(norms) -> np.ndarray:
  """Position-indexed norms [L] -> distance-indexed [L]: entry k is position L - 1 - k."""
  return np.asarray(norms)[::-1].copy()


def summarize(curve) -> dict[str, float]:
  """The three figures of a distance curve (entry k = norm at distance k):

  rate: least-squares slope of ln(norm) against k, per step, over the k whose norm is not
    (numerically) zero: ln a for a curve ∝ a^k; near 0 for no systematic decay.
  horizon: the largest k whose norm is at least HORIZON_FLOOR x the curve's maximum.
  far_near: mean norm over the farthest quarter of distances over the mean over the
    nearest quarter (1 = no decay; 0 = nothing reaches far).
  """
  c = np.asarray(curve, np.float64)
  k = np.arange(len(c))
  peak = c.max()
  usable = c > max(FIT_FLOOR, peak * 1e-12) if peak > 0 else np.zeros_like(c, bool)
  rate = float(np.polyfit(k[usable], np.log(c[usable]), 1)[0]) if usable.sum() >= 2 else math.nan
  horizon = int(k[c >= HORIZON_FLOOR * peak].max()) if peak > 0 else 0
  quarter = max(1, len(c) // 4)
  near = c[:quarter].mean()
  return {'rate': rate, 'horizon': horizon,
          'far_near': float(c[-quarter:].mean() / near) if near > 0 else math.nan}


def _readout(model, params, spec: TaskSpec, batch) -> Callable[[jax.Array], jax.Array]:
  """offset -> the readout, with `offset` added to the model's input representation (see
  TaskModel's `embedded_offset`): the derivative with respect to the offset at 0 is the
  derivative with respect to the representation."""
  args = train_lib.model_args(spec, batch)

  def readout(offset):
    outputs = model.apply(params, *args, train=False, embedded_offset=offset)
    if spec.kind in ('classify', 'regress'):  # summed per-example losses
      return train_lib.batch_stats(spec, outputs, batch)['loss']
    return outputs[:, -1]                     # [B, O] the last position's output
  return readout


def gradient_profile(model, params, spec: TaskSpec, batch, key: jax.Array | None = None,
                     num_vjps: int = 4) -> jax.Array:
  """[L] position-indexed norms of the readout's derivative with respect to the model's
  input representation (see the module docstring). Jittable with model and spec static."""
  offset = jnp.zeros(model.offset_shape(*train_lib.model_args(spec, batch)), jnp.float32)
  per_token = spec.kind in ('per_token', 'seq2seq')
  return position_norms(_readout(model, params, spec, batch), offset, key,
                        num_vjps if per_token else None)


class GradientProbe:
  """The gradient probe of one cell, compiled once and applied to the parameters at
  initialisation and after training, on the same fixed batch (the first `num_examples`
  validation examples: the test set is read once, after training, by the evaluation) and
  the same probe vectors (from `key`)."""

  def __init__(self, model, task, params, key: jax.Array, num_examples: int = 64,
               num_vjps: int = 4, fast_compile: bool = False):
    held_out = task.eval_data if task.val_data is None else task.val_data
    batch = {k: jnp.asarray(v[:num_examples]) for k, v in held_out.items()}
    profile = functools.partial(gradient_profile, model=model, spec=task.spec, batch=batch,
                                key=key, num_vjps=num_vjps)
    self._compiled, self.compile_s = timing.compile_ahead(
        lambda p: profile(params=p), params, fast=fast_compile)

  def measure(self, params, when: str) -> dict[str, object]:
    """lrd/ metrics: the curve by distance (`lrd/grad_<when>`) and its three figures."""
    curve = by_distance(jax.device_get(self._compiled(params)))
    figures = summarize(curve)
    return {f'lrd/grad_{when}': [float(v) for v in curve],
            **{f'lrd/{name}_{when}': value for name, value in figures.items()}}


def _before_training(ctx: Context) -> None:
  """The curve at initialisation; the probe is compiled once, for both."""
  spec = ctx.task.spec
  if spec.padded and not (spec.kind == 'seq2seq' and ctx.model.input_kind == 'encdec'):
    # Distances count back from the last position, which a padded example leaves to
    # padding (or, for a prefix LM, moves by the packing): the curve would measure that
    # instead of the example. An encoder-decoder reads its padded source apart, where
    # padding only gets no gradient.
    raise UsageError(f'the gradient probe needs a task without padding; {spec.name} pads '
                     'its examples (probe adding, copy, selective_copy or mqar)')
  probe = GradientProbe(ctx.model, ctx.task, ctx.params, ctx.key(Stream.PROBE),
                        fast_compile=ctx.fast_compile)
  ctx.kept['gradient'] = probe
  ctx.metrics.update(probe.measure(ctx.params, 'init'))
  ctx.perf['probe_compile_s'] = probe.compile_s


def _after_training(ctx: Context) -> None:
  ctx.metrics.update(ctx.kept['gradient'].measure(ctx.params, 'trained'))


register(EvaluatorSpec(
    name='gradient',
    description='gradient-versus-distance curve of the readout, at initialisation and '
                'trained, with its decay rate, horizon and far/near ratio',
    applies=lambda cell, task: 'gradient' in cell.probes,
    before_training=_before_training, after_training=_after_training,
    metrics=tuple(f'lrd/{name}_<init|trained>' for name in
                  ('grad', 'rate', 'horizon', 'far_near')),
    perf=('probe_compile_s',), section='lrd'))
