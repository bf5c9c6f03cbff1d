"""Synthetic long-range tasks, generated on device from a `jax.random` key.

Each generator is a pure function `(key, batch_size, ...) -> batch`, so the same key gives
the same batch bit for bit, and the harness can draw training batches inside its compiled
loop. The test set comes from `eval_key(seed)` and the validation set from `val_key(seed)`,
two streams disjoint from training's and from each other.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec, eval_key, val_key


def held_out_sets(generate, seed: int, size: int) -> tuple[dict, dict]:
  """(test, validation): `size` examples each of `generate(key, size)` from the seed's
  test and validation streams, as numpy arrays. Compiled as one program, once for both:
  run op by op, a generator compiled each operation apart, which made building a task
  (and so its spec, which `archbench list` and planning ask for) slow. The examples are
  the same bit for bit (tests/test_data.py)."""
  compiled = jax.jit(generate, static_argnums=1)
  return tuple(jax.tree_util.tree_map(np.asarray, compiled(key, size))
               for key in (eval_key(seed), val_key(seed)))


def generated_task(spec: TaskSpec, params: dict, generate, seed: int, eval_size: int,
                   **extra) -> Task:
  """A task whose batches `generate(key, batch_size)` draws: training batches on device,
  a test set and a validation set of `eval_size` examples each, from their own streams."""
  test, validation = held_out_sets(generate, seed, eval_size)
  return Task(spec, params, lambda key, b: generate(key, b), test, val_data=validation,
              **extra)


# ---------------------------------------------------------------------------------------
# Adding problem (Hochreiter & Schmidhuber 1997; Bai, Kolter & Koltun 2018).

def adding_batch(key: jax.Array, batch_size: int, length: int) -> dict[str, jax.Array]:
  """inputs [B, T, 2]: values ~ U[0, 1) and a mask with exactly two ones at distinct random
  positions; targets [B, 1]: the sum of the two marked values."""
  k_values, k_marks = jax.random.split(key)
  values = jax.random.uniform(k_values, (batch_size, length))
  # The two smallest of T i.i.d. uniforms sit at two distinct positions chosen uniformly.
  noise = jax.random.uniform(k_marks, (batch_size, length))
  marked = jnp.argsort(noise, axis=1)[:, :2]  # [B, 2]
  mask = jnp.zeros((batch_size, length)).at[jnp.arange(batch_size)[:, None], marked].set(1.0)
  targets = jnp.sum(values * mask, axis=1, keepdims=True)
  return {'inputs': jnp.stack([values, mask], axis=-1), 'targets': targets}


# Predicting the mean (1.0) of X1 + X2, X ~ U[0, 1), gives MSE = Var = 2 / 12.
ADDING_BASELINE_MSE = 2.0 / 12.0


@register('adding', 'adding problem: sum of the two marked values among T (MSE)')
def make_adding(seed: int = 0, length: int = 50, eval_size: int = 1000) -> Task:
  if length < 2:
    raise ValueError(f'adding: length must be >= 2 (two marked values), got {length}')
  generate = functools.partial(adding_batch, length=length)
  spec = TaskSpec(
      name='adding', kind='regress', length=length, feature_dim=2, out_dim=1,
      metric='eval/mse', higher_is_better=False,
      baselines={'eval/mse': ADDING_BASELINE_MSE, 'eval/loss': ADDING_BASELINE_MSE},
      solved=0.01)
  return generated_task(spec, {'length': length, 'eval_size': eval_size}, generate, seed,
                        eval_size)


# ---------------------------------------------------------------------------------------
# Copy memory (Arjovsky, Shah & Bengio 2016).

COPY_SYMBOLS = 8           # data symbols are tokens 1..8
COPY_BLANK, COPY_DELIMITER = 0, COPY_SYMBOLS + 1
COPY_RECALL = 10           # how many symbols to remember


def copy_batch(key: jax.Array, batch_size: int, delay: int) -> dict[str, jax.Array]:
  """Sequences of length T + 20 (Arjovsky et al.): 10 symbols from 8, T - 1 blanks, the
  delimiter, then 10 blanks during which the model must output the 10 symbols.

  targets [B, T + 20]: blank everywhere but the last 10 positions, which hold the symbols.
  The loss counts every position; the accuracy counts the 10 recalled symbols.
  """
  symbols = jax.random.randint(key, (batch_size, COPY_RECALL), 1, COPY_SYMBOLS + 1)
  blanks = lambda n: jnp.full((batch_size, n), COPY_BLANK, symbols.dtype)
  delimiter = jnp.full((batch_size, 1), COPY_DELIMITER, symbols.dtype)
  inputs = jnp.concatenate([symbols, blanks(delay - 1), delimiter, blanks(COPY_RECALL)], 1)
  targets = jnp.concatenate([blanks(delay + COPY_RECALL), symbols], axis=1)
  length = delay + 2 * COPY_RECALL
  recall = (jnp.arange(length) >= length - COPY_RECALL).astype(jnp.float32)
  return {'inputs': inputs, 'targets': targets,
          'loss_mask': jnp.ones((batch_size, length)),
          'metric_mask': jnp.broadcast_to(recall, (batch_size, length))}


def copy_baseline_loss(delay: int) -> float:
  """Memoryless predictor: blanks with certainty, then uniform over the 8 symbols for the
  last 10 positions; cross-entropy averaged over all T + 20 positions."""
  return COPY_RECALL * math.log(COPY_SYMBOLS) / (delay + 2 * COPY_RECALL)


@register('copy', 'copy memory: recall 10 symbols after T blanks (per-token accuracy)')
def make_copy(seed: int = 0, length: int = 20, eval_size: int = 1000) -> Task:
  """`length` is the delay T; the model sees T + 20 positions."""
  if length < 1:
    raise ValueError(f'copy: length (the delay T) must be >= 1, got {length}')
  generate = functools.partial(copy_batch, delay=length)
  spec = TaskSpec(
      name='copy', kind='per_token', length=length + 2 * COPY_RECALL,
      vocab_size=COPY_SYMBOLS + 2, num_classes=COPY_SYMBOLS + 2,
      metric='eval/accuracy', higher_is_better=True,
      baselines={'eval/loss': copy_baseline_loss(length),
                 'eval/accuracy': 1.0 / COPY_SYMBOLS},
      solved=0.95)
  return generated_task(spec, {'length': length, 'eval_size': eval_size}, generate, seed,
                        eval_size)
