"""Dropout: on in training only, drawn from its own RNG stream, reproducible from the seed,
and a no-op at the default rate 0 (so results without it do not move)."""
import dataclasses
import functools

import jax
import numpy as np
import pytest

from archbench import archs
from archbench.archs import recurrent, tcn, transformer
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.harness import runner
from archbench.benchmarks.harness import train as train_lib
from archbench.data.spec import Stream, stream_key
from selection import quick_subset  # tests/selection.py

B, T, D = 2, 8, 16

# name -> a small config: each family that has a `dropout` field (the bidirectional stacks
# share the causal ones' placement, so they are checked where that placement shows).
CONFIGS = {
    'tcn': tcn.TCNConfig(channels=D, num_blocks=2),
    'transformer': transformer.TransformerConfig(d_model=D, num_layers=2, num_heads=2),
    'lstm': recurrent.RecurrentConfig(hidden=D, num_layers=2),
    'bilstm': recurrent.BiRecurrentConfig(hidden=D // 2, num_layers=2),
}
X = jax.random.normal(jax.random.PRNGKey(0), (B, T, D))


class _Jitted:
  """A backbone's init and apply, each compiled once per module (eager scans compile every
  op on its own, which would make this file slow)."""

  def __init__(self, module):
    self.init = jax.jit(module.init)
    self.apply = jax.jit(module.apply, static_argnames='train')


@functools.cache
def _module(name, **overrides):
  return _Jitted(archs.get(name).build(dataclasses.replace(CONFIGS[name], **overrides)))


def _params(name):
  return _module(name).init(jax.random.PRNGKey(1), X)


def _train(module, params, key):
  return module.apply(params, X, train=True, rngs={'dropout': key})


@pytest.mark.parametrize('name', ['tcn', 'transformer', 'lstm'])
def test_dropout_masks_follow_the_key_and_are_off_at_evaluation(name):
  params = _params(name)
  # The rate adds no parameters: the tree of a dropout model is the plain model's.
  dropped = _module(name, dropout=0.5)
  assert (jax.tree_util.tree_structure(dropped.init(jax.random.PRNGKey(1), X))
          == jax.tree_util.tree_structure(params))
  a, b = jax.random.PRNGKey(2), jax.random.PRNGKey(3)
  np.testing.assert_array_equal(_train(dropped, params, a), _train(dropped, params, a))
  assert not np.allclose(_train(dropped, params, a), _train(dropped, params, b))
  # Evaluation: exactly the model without dropout, and no RNG asked for.
  np.testing.assert_array_equal(dropped.apply(params, X, train=False),
                                _module(name).apply(params, X, train=False))


@pytest.mark.parametrize('name', quick_subset(list(CONFIGS)))
def test_rate_zero_is_the_model_without_dropout(name):
  """The default: training output equals evaluation output, with no RNG given."""
  module, params = _module(name), _params(name)
  np.testing.assert_array_equal(module.apply(params, X, train=True),
                                module.apply(params, X, train=False))


def test_attention_dropout_drops_the_attention_weights():
  """Attention-weight dropout alone changes the training output (the explicit attention
  path) and leaves evaluation alone."""
  params = _params('transformer')
  dropped = _module('transformer', attention_dropout=0.5)
  key = jax.random.PRNGKey(2)
  assert not np.allclose(_train(dropped, params, key), dropped.apply(params, X, train=False))
  np.testing.assert_array_equal(_train(dropped, params, key), _train(dropped, params, key))


@pytest.mark.parametrize('name', ['lstm', 'bilstm'])
def test_recurrent_dropout_acts_between_layers_only(name):
  """A one-layer stack has no layer after which to drop: dropout 0.5 leaves it as it is,
  so nothing is dropped on its input, its recurrent connection or its output."""
  module = _module(name, num_layers=1, dropout=0.5)
  params = module.init(jax.random.PRNGKey(1), X)
  np.testing.assert_array_equal(_train(module, params, jax.random.PRNGKey(2)),
                                module.apply(params, X, train=False))


@functools.cache
@functools.cache  # shared by the tests below: each rate compiles once
def _harness(rate):
  """(task, model, optimizer, initial state, jitted train_chunk of 3 steps) of a tiny
  transformer cell with both dropout rates at `rate`."""
  cell = Cell('transformer', 'adding', 'tiny', task_params={'length': 8, 'eval_size': 16},
              arch_overrides={'dropout': rate, 'attention_dropout': rate},
              train=TrainConfig(steps=3, batch_size=4))
  _, config, task, model = runner.prepare(cell)
  assert config.dropout == config.attention_dropout == rate
  optimizer = train_lib.make_optimizer(cell.train)
  state = train_lib.init_state(model, task, optimizer, stream_key(0, Stream.INIT), 4)
  chunk = jax.jit(functools.partial(train_lib.train_chunk, model=model, task=task,
                                    optimizer=optimizer, batch_size=4, num_steps=3))
  return task, model, optimizer, state, chunk


KEY = stream_key(0, Stream.TRAIN)


def test_train_chunk_is_reproducible_with_dropout():
  """Through the harness: the same seed gives the same losses and parameters with dropout
  on, and dropout changes the training from the same start."""
  *_, state, chunk = _harness(0.3)
  first, loss = chunk(state, KEY)
  again, loss_again = chunk(state, KEY)
  assert float(loss) == float(loss_again)
  for a, b in zip(jax.tree_util.tree_leaves(first.params),
                  jax.tree_util.tree_leaves(again.params)):
    np.testing.assert_array_equal(a, b)
  *_, plain_state, plain_chunk = _harness(0.0)
  assert float(plain_chunk(plain_state, KEY)[1]) != float(loss)


def test_train_chunk_batches_are_unchanged():
  """Step i still trains on the batch drawn from split(key, steps)[i], as before dropout
  had a stream (results at rate 0 and checkpoint resumption do not move): the chunk
  equals three train_steps on those batches, whatever dropout key they are given."""
  task, model, optimizer, state, chunk = _harness(0.0)
  expected = state
  step = jax.jit(functools.partial(train_lib.train_step, model=model, spec=task.spec,
                                   optimizer=optimizer))
  for batch_key in jax.random.split(KEY, 3):
    expected, _ = step(expected, task.train_batch(batch_key, 4), jax.random.PRNGKey(0))
  got, _ = chunk(state, KEY)
  for a, b in zip(jax.tree_util.tree_leaves(got.params),
                  jax.tree_util.tree_leaves(expected.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
