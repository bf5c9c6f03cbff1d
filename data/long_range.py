"""Content-dependent recall tasks, generated on device from a `jax.random` key.

Unlike copy memory, where the answer to recall always sits a fixed number of steps back,
here *where* to look depends on the tokens themselves: a fixed time offset (a
convolution, a time-invariant recurrence) cannot solve them, a selective mechanism
(attention, input-dependent gating) can. Both are 'per_token' tasks whose loss and
accuracy count the answer positions only; the targets elsewhere are filler (0) that no
metric reads. Neither is causal: every answer position comes after the evidence it needs,
so causal and bidirectional models both serve them.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec
from archbench.data.synthetic import generated_task


def _random_subset(key: jax.Array, batch_size: int, n: int, k: int) -> jax.Array:
  """[B, k] distinct indices in [0, n) per row, each k-subset equally likely, in random
  order: the first k of a uniformly random permutation."""
  return jnp.argsort(jax.random.uniform(key, (batch_size, n)), axis=1)[:, :k]


def _answer_masks(batch_size: int, length: int, start: int) -> dict[str, jax.Array]:
  """loss_mask and metric_mask [B, T]: 1 on positions >= start (the answers), else 0."""
  answers = (jnp.arange(length) >= start).astype(jnp.float32)
  mask = jnp.broadcast_to(answers, (batch_size, length))
  return {'loss_mask': mask, 'metric_mask': mask}


def _recall_spec(name: str, length: int, vocab_size: int, num_answers: int) -> TaskSpec:
  """Baselines of a recall task whose answer is uniform over `num_answers` symbols: a
  memoryless predictor knows which symbols can answer but not which one, so it scores
  1/n and a cross-entropy of ln(n) on the answer positions."""
  return TaskSpec(
      name=name, kind='per_token', length=length, vocab_size=vocab_size,
      num_classes=vocab_size, causal=False, metric='eval/accuracy', higher_is_better=True,
      baselines={'eval/accuracy': 1.0 / num_answers, 'eval/loss': math.log(num_answers)},
      solved=0.95)


# ---------------------------------------------------------------------------------------
# Selective copying (Gu & Dao 2023, Mamba, section 3.1).

SC_BLANK = 0  # the noise token; data symbols are 1..S and the marker is S + 1


def selective_copy_batch(key: jax.Array, batch_size: int, length: int, num_tokens: int,
                         num_symbols: int) -> dict[str, jax.Array]:
  """M = num_tokens data symbols (from 1..S) at distinct random positions among T = length
  blanks, then M markers at which the model must output the symbols in order of appearance.

  inputs, targets [B, T + M]; targets are blank but on the M marker positions, the only
  positions the loss and accuracy count.
  """
  k_symbols, k_positions = jax.random.split(key)
  symbols = jax.random.randint(k_symbols, (batch_size, num_tokens), 1, num_symbols + 1)
  # Sorted so that symbols[:, i] is the i-th to appear, the i-th to recall.
  positions = jnp.sort(_random_subset(k_positions, batch_size, length, num_tokens), axis=1)
  rows = jnp.arange(batch_size)[:, None]
  data = jnp.full((batch_size, length), SC_BLANK, symbols.dtype).at[rows, positions].set(symbols)
  markers = jnp.full((batch_size, num_tokens), num_symbols + 1, symbols.dtype)
  blanks = jnp.full((batch_size, length), SC_BLANK, symbols.dtype)
  return {'inputs': jnp.concatenate([data, markers], axis=1),         # [B, T + M]
          'targets': jnp.concatenate([blanks, symbols], axis=1),      # [B, T + M]
          **_answer_masks(batch_size, length + num_tokens, length)}


@register('selective_copy',
          'selective copying: recall M symbols scattered among T blanks, in order (accuracy)')
def make_selective_copy(seed: int = 0, length: int = 64, num_tokens: int = 8,
                        num_symbols: int = 16, eval_size: int = 1000) -> Task:
  """`length` is T, the span the symbols are scattered over; the model sees T + num_tokens
  positions. Mamba's setting is T = 4096, 16 tokens from 16 symbols."""
  if not 1 <= num_tokens <= length or num_symbols < 2:
    raise ValueError(f'selective_copy: need 1 <= num_tokens <= length and num_symbols >= 2, '
                     f'got num_tokens={num_tokens}, length={length}, num_symbols={num_symbols}')
  generate = functools.partial(selective_copy_batch, length=length, num_tokens=num_tokens,
                               num_symbols=num_symbols)
  spec = _recall_spec('selective_copy', length + num_tokens, num_symbols + 2, num_symbols)
  params = {'length': length, 'num_tokens': num_tokens, 'num_symbols': num_symbols,
            'eval_size': eval_size}
  return generated_task(spec, params, generate, seed, eval_size)


# ---------------------------------------------------------------------------------------
# Multi-query associative recall (Arora et al. 2023, Zoology).

def mqar_batch(key: jax.Array, batch_size: int, num_pairs: int, num_queries: int,
               vocab_size: int) -> dict[str, jax.Array]:
  """N = num_pairs pairs `k1 v1 ... kN vN`, then Q = num_queries query keys; the target at
  each query is the value paired with that key.

  Keys are distinct tokens of [0, V // 2) (so every lookup has one answer); values are
  drawn with replacement from [V // 2, V). The queries are a random subset of the keys,
  distinct and in random order, so which pair answers is unrelated to the query's position.

  inputs, targets [B, 2N + Q]; only the Q query positions count.
  """
  num_keys = vocab_size // 2
  k_keys, k_values, k_queries = jax.random.split(key, 3)
  keys = _random_subset(k_keys, batch_size, num_keys, num_pairs)              # [B, N]
  values = jax.random.randint(k_values, (batch_size, num_pairs), num_keys, vocab_size)
  asked = _random_subset(k_queries, batch_size, num_pairs, num_queries)       # [B, Q]
  pairs = jnp.stack([keys, values], axis=-1).reshape(batch_size, 2 * num_pairs)
  queries = jnp.take_along_axis(keys, asked, axis=1)
  answers = jnp.take_along_axis(values, asked, axis=1)
  filler = jnp.zeros_like(pairs)
  return {'inputs': jnp.concatenate([pairs, queries], axis=1),     # [B, 2N + Q]
          'targets': jnp.concatenate([filler, answers], axis=1),   # [B, 2N + Q]
          **_answer_masks(batch_size, 2 * num_pairs + num_queries, 2 * num_pairs)}


@register('mqar', 'multi-query associative recall: values of queried keys (accuracy)')
def make_mqar(seed: int = 0, num_pairs: int = 16, num_queries: int = 8,
              vocab_size: int = 128, eval_size: int = 1000) -> Task:
  """The model sees 2 * num_pairs + num_queries positions; keys come from the lower half of
  the vocabulary, values from the upper half."""
  if not 1 <= num_queries <= num_pairs <= vocab_size // 2:
    raise ValueError(f'mqar: need 1 <= num_queries <= num_pairs <= vocab_size // 2, got '
                     f'num_queries={num_queries}, num_pairs={num_pairs}, vocab_size={vocab_size}')
  generate = functools.partial(mqar_batch, num_pairs=num_pairs, num_queries=num_queries,
                               vocab_size=vocab_size)
  num_values = vocab_size - vocab_size // 2
  spec = _recall_spec('mqar', 2 * num_pairs + num_queries, vocab_size, num_values)
  params = {'num_pairs': num_pairs, 'num_queries': num_queries, 'vocab_size': vocab_size,
            'eval_size': eval_size}
  return generated_task(spec, params, generate, seed, eval_size)
