"""Losses, metrics, the optimiser and the pure jitted step functions.

Training runs `steps_per_dispatch` optimiser steps per compiled call (a `lax.scan` whose
body draws its batch on device from the task's generator), so Python dispatch does not
dominate small models. Everything here is a pure function of (model, task, config);
tests import the same functions the harness uses.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from archbench.benchmarks.core import TrainConfig
from archbench.benchmarks.measure import timing
from archbench.data.spec import BOS, PAD, Stream, Task, TaskSpec


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  step: jax.Array


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
  schedule = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=cfg.lr, warmup_steps=max(cfg.warmup_steps, 1),
      decay_steps=max(cfg.steps, cfg.warmup_steps + 1), end_value=cfg.lr * 0.01)
  # Flattened: the same elementwise maths on one parameter vector instead of ~15 ops per
  # parameter array, which compiles 10-20% faster and runs as fast.
  return optax.flatten(optax.chain(optax.clip_by_global_norm(cfg.clip_norm),
                                   optax.adamw(schedule, weight_decay=cfg.weight_decay)))


def model_args(spec: TaskSpec, batch) -> tuple:
  """Positional inputs of TaskModel: seq2seq adds the teacher-forced decoder input, the
  target shifted right behind BOS; a padded task, the examples' `lengths`."""
  decoder_inputs = None
  if spec.kind == 'seq2seq':
    targets = batch['targets']
    bos = jnp.full((targets.shape[0], 1), BOS, targets.dtype)
    decoder_inputs = jnp.concatenate([bos, targets[:, :-1]], axis=1)
  if 'lengths' in batch:
    return batch['inputs'], decoder_inputs, batch['lengths']
  return (batch['inputs'],) if decoder_inputs is None else (batch['inputs'], decoder_inputs)


def greedy_decode(params, inputs, *, model, spec: TaskSpec, lengths=None) -> jax.Array:
  """Greedy decoding for any model that serves seq2seq: [B, S] source -> [B, T] tokens.

  Each step reruns the model on the decoder input decoded so far (PAD beyond it) and
  reads position i; causality makes the PAD tail invisible to position i. O(T) forward
  passes, which is fine for the short targets used here. `lengths` [B]: the real
  positions of end-padded sources (a padded task).
  """
  b, t = inputs.shape[0], spec.target_length
  decoder_inputs = jnp.full((b, t), PAD, jnp.int32).at[:, 0].set(BOS)

  def body(i, carry):
    decoder_inputs, decoded = carry
    logits = model.apply(params, inputs, decoder_inputs, lengths, train=False)  # [B, T, V]
    token = jnp.argmax(jax.lax.dynamic_index_in_dim(logits, i, 1, keepdims=False), -1)
    decoded = decoded.at[:, i].set(token.astype(jnp.int32))
    decoder_inputs = decoder_inputs.at[:, i + 1].set(token.astype(jnp.int32))  # dropped at T
    return decoder_inputs, decoded

  _, decoded = jax.lax.fori_loop(0, t, body, (decoder_inputs, jnp.zeros((b, t), jnp.int32)))
  return decoded


def decode_stats(decoded, batch, weights) -> dict[str, jax.Array]:
  """Greedy-decoding scores: token accuracy over target positions (EOS included) and
  exact match of the whole target."""
  mask = batch['metric_mask'] > 0
  hits = decoded == batch['targets']
  exact = jnp.all(hits | ~mask, axis=1).astype(jnp.float32)
  return {'greedy_correct': jnp.sum(weights[:, None] * (hits & mask)),
          'exact': jnp.sum(weights * exact)}


def batch_stats(spec: TaskSpec, outputs, batch, weights=None) -> dict[str, jax.Array]:
  """Weighted sums (not means) of the loss and metrics, so that evaluation can add them up
  over batches. `weights` [B] masks padding examples (1 = counts)."""
  targets = batch['targets']
  w = jnp.ones(targets.shape[0]) if weights is None else weights
  if spec.kind == 'regress':
    se = jnp.mean(jnp.square(outputs - targets), axis=-1)  # [B]
    ae = jnp.mean(jnp.abs(outputs - targets), axis=-1)
    return {'loss': jnp.sum(w * se), 'mse': jnp.sum(w * se), 'mae': jnp.sum(w * ae),
            'count': jnp.sum(w)}
  ce = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
  correct = (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)
  if spec.kind == 'classify':
    return {'loss': jnp.sum(w * ce), 'correct': jnp.sum(w * correct), 'count': jnp.sum(w),
            'metric_count': jnp.sum(w)}
  # per_token and seq2seq: [B, T]; the loss and the accuracy may count different positions.
  loss_w = batch['loss_mask'] * w[:, None]
  metric_w = batch['metric_mask'] * w[:, None]
  return {'loss': jnp.sum(loss_w * ce), 'count': jnp.sum(loss_w),
          'correct': jnp.sum(metric_w * correct), 'metric_count': jnp.sum(metric_w),
          'examples': jnp.sum(w)}


def finalize(spec: TaskSpec, sums: dict[str, Any], prefix: str) -> dict[str, float]:
  """Sums -> namespaced means, e.g. {'eval/loss': ..., 'eval/accuracy': ...}."""
  out = {f'{prefix}/loss': float(sums['loss'] / sums['count'])}
  if spec.kind == 'regress':
    out[f'{prefix}/mse'] = float(sums['mse'] / sums['count'])
    out[f'{prefix}/mae'] = float(sums['mae'] / sums['count'])
  else:
    out[f'{prefix}/accuracy'] = float(sums['correct'] / sums['metric_count'])
  if spec.kind == 'per_token' and spec.causal:  # language or pixel modelling: the loss in bits
    out[f'{prefix}/{spec.bits_metric}'] = out[f'{prefix}/loss'] / math.log(2)
  if 'exact' in sums:  # seq2seq evaluation decodes greedily
    out[f'{prefix}/token_accuracy'] = float(sums['greedy_correct'] / sums['metric_count'])
    out[f'{prefix}/exact_match'] = float(sums['exact'] / sums['examples'])
  return out


def loss_fn(params, model, spec: TaskSpec, batch, dropout_key: jax.Array):
  """Mean training loss; `dropout_key` feeds the backbone's dropout (unused where it has
  none, or at rate 0)."""
  outputs = model.apply(params, *model_args(spec, batch), train=True,
                        rngs={'dropout': dropout_key})
  stats = batch_stats(spec, outputs, batch)
  return stats['loss'] / stats['count']


def train_step(state: TrainState, batch, dropout_key: jax.Array, *, model, spec: TaskSpec,
               optimizer: optax.GradientTransformation) -> tuple[TrainState, jax.Array]:
  """One optimiser step on one batch, its dropout masks drawn from `dropout_key`: the unit
  every FLOP count refers to."""
  loss, grads = jax.value_and_grad(loss_fn)(state.params, model, spec, batch, dropout_key)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return TrainState(params, opt_state, state.step + 1), loss


def train_chunk(state: TrainState, key: jax.Array, *, model, task: Task,
                optimizer: optax.GradientTransformation, batch_size: int, num_steps: int,
                parallel=None):
  """`num_steps` optimiser steps in one compiled call, batches drawn on device.

  Step i draws its batch from split(key, num_steps)[i] and its dropout masks from
  split(fold_in(key, Stream.DROPOUT), num_steps)[i]: two streams apart, and the batch keys
  those of a model without dropout.

  `parallel` (a parallel.DataParallel) splits each batch over its devices; the state
  stays replicated. Returns the new state and the mean training loss over the chunk.
  """
  def body(state, keys):
    batch_key, dropout_key = keys
    batch = task.train_batch(batch_key, batch_size)
    if parallel is not None:
      batch = parallel.constrain_batch(batch)
    return train_step(state, batch, dropout_key, model=model, spec=task.spec,
                      optimizer=optimizer)

  keys = (jax.random.split(key, num_steps),
          jax.random.split(jax.random.fold_in(key, int(Stream.DROPOUT)), num_steps))
  state, losses = jax.lax.scan(body, state, keys)
  if parallel is not None:
    state = parallel.constrain_replicated(state)
  return state, jnp.mean(losses)


def init_state(model, task: Task, optimizer, key: jax.Array, batch_size: int) -> TrainState:
  """Parameters and optimiser state, built in one compiled call (eager Flax init would
  compile every small op on its own). It runs once, so it is compiled for compile speed;
  the random numbers are the same integer maths either way."""
  def init(key):
    batch = task.train_batch(jax.random.PRNGKey(0), batch_size)
    params = model.init(key, *model_args(task.spec, batch), train=False)
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
  compiled, _ = timing.compile_ahead(init, key, fast=True)
  return compiled(key)


def pad_eval_set(eval_data: dict, eval_batch_size: int, multiple: int = 1):
  """Pad the held-out set to whole batches: arrays [N_b, B, ...] plus example weights
  [N_b, B] that are 0 on padding, so one compiled scan evaluates everything. B is a
  multiple of `multiple` (the devices a batch is split over). Done in numpy: eager jax
  ops would each compile for their shapes."""
  n = len(eval_data['targets'])
  b = -(-min(eval_batch_size, n) // multiple) * multiple
  num_batches = -(-n // b)
  pad = num_batches * b - n

  def reshape(a):
    a = np.asarray(a)
    a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a
    return jnp.asarray(a.reshape(num_batches, b, *a.shape[1:]))
  weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  return jax.tree_util.tree_map(reshape, eval_data), jnp.asarray(weights.reshape(num_batches, b))


def evaluate(params, batches, weights, *, model, spec: TaskSpec) -> dict[str, jax.Array]:
  """Summed loss/metric statistics over the padded held-out set (see pad_eval_set);
  seq2seq tasks are also decoded greedily and scored on the decoded tokens."""
  def stats(xs):
    batch, w = xs
    out = batch_stats(spec, model.apply(params, *model_args(spec, batch), train=False),
                      batch, w)
    if spec.kind == 'seq2seq':
      decoded = greedy_decode(params, batch['inputs'], model=model, spec=spec,
                              lengths=batch.get('lengths'))
      out.update(decode_stats(decoded, batch, w))
    return out

  def body(total, xs):
    return jax.tree_util.tree_map(jnp.add, total, stats(xs)), None

  first = jax.tree_util.tree_map(lambda a: a[0], (batches, weights))
  zero = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                jax.eval_shape(stats, first))
  total, _ = jax.lax.scan(body, zero, (batches, weights))
  return total
