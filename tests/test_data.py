"""Tasks: generator semantics against numpy, baselines, determinism, train/eval separation,
the digits split, and the task registry's errors."""
import math

import jax
import numpy as np
import pytest

from archbench import data
from archbench.data import digits, spec as spec_lib, synthetic


def _np(batch):
  return {k: np.asarray(v) for k, v in batch.items()}


def _draw(task, key, batch_size):
  return _np(jax.jit(task.train_batch, static_argnums=1)(key, batch_size))


# ---------------------------------------------------------------------------------------
# Adding problem.

def test_adding_targets_and_structure():
  length = 12
  task = data.build('adding', seed=3, length=length, eval_size=8)
  b = _draw(task, jax.random.PRNGKey(11), 256)
  x, y = b['inputs'], b['targets']
  assert x.shape == (256, length, 2) and y.shape == (256, 1)
  values, mask = x[..., 0], x[..., 1]
  assert np.all((values >= 0) & (values < 1))
  assert set(np.unique(mask).tolist()) == {0.0, 1.0}
  assert np.all(mask.sum(axis=1) == 2)
  expected = np.array([values[i][mask[i] == 1].sum() for i in range(len(values))])
  np.testing.assert_allclose(y[:, 0], expected, rtol=1e-6, atol=1e-6)
  # The marked positions are spread over the sequence, not fixed.
  assert len({tuple(np.flatnonzero(m)) for m in mask}) > 50
  assert task.spec.kind == 'regress' and task.spec.length == length


def test_adding_baseline_is_mse_of_predicting_one():
  assert synthetic.ADDING_BASELINE_MSE == pytest.approx(1.0 / 6.0, rel=1e-12)
  task = data.build('adding', length=20, eval_size=8)
  y = _draw(task, jax.random.PRNGKey(5), 20_000)['targets'][:, 0].astype(np.float64)
  empirical = np.mean((y - 1.0) ** 2)
  # Std of the estimate ~ sqrt(Var((S-1)^2) / n) ~ 0.0012, i.e. < 1% of 1/6.
  assert empirical == pytest.approx(synthetic.ADDING_BASELINE_MSE, rel=0.03)
  assert task.spec.baselines['eval/mse'] == synthetic.ADDING_BASELINE_MSE
  # The regression loss is the MSE, so the loss baseline is the same number.
  assert task.spec.baselines['eval/loss'] == pytest.approx(empirical, rel=0.03)
  assert not task.spec.higher_is_better and task.spec.metric == 'eval/mse'


# ---------------------------------------------------------------------------------------
# Copy memory.

@pytest.mark.parametrize('delay', [1, 7])
def test_copy_structure(delay):
  task = data.build('copy', seed=0, length=delay, eval_size=8)
  total = delay + 20
  assert task.spec.length == total
  b = _draw(task, jax.random.PRNGKey(2), 64)
  x, y = b['inputs'], b['targets']
  assert x.shape == y.shape == (64, total)
  assert np.all((x[:, :10] >= 1) & (x[:, :10] <= 8))
  assert np.all(x[:, 10:10 + delay - 1] == 0)
  assert np.all(x[:, 10 + delay - 1] == 9)
  assert np.all(x[:, total - 10:] == 0)
  assert np.all(y[:, :total - 10] == 0)
  np.testing.assert_array_equal(y[:, total - 10:], x[:, :10])
  expected_metric = np.zeros(total)
  expected_metric[-10:] = 1
  np.testing.assert_array_equal(b['metric_mask'], np.broadcast_to(expected_metric, (64, total)))
  np.testing.assert_array_equal(b['loss_mask'], np.ones((64, total)))
  # All 8 symbols occur.
  assert set(np.unique(x[:, :10]).tolist()) == set(range(1, 9))


@pytest.mark.parametrize('delay', [1, 5, 100])
def test_copy_memoryless_baseline(delay):
  task = data.build('copy', length=delay, eval_size=4)
  total = delay + 20
  b = _draw(task, jax.random.PRNGKey(7), 16)
  k = task.spec.num_classes
  # The memoryless predictor's probabilities: blank surely, then uniform over 1..8.
  probs = np.zeros((total, k))
  probs[:total - 10, 0] = 1.0
  probs[total - 10:, 1:9] = 1.0 / 8
  with np.errstate(divide='ignore'):
    logp = np.log(probs)
  targets = b['targets']
  ce = -np.take_along_axis(np.broadcast_to(logp, (len(targets), total, k)),
                           targets[..., None], axis=-1)[..., 0]
  assert np.all(np.isfinite(ce))
  mean_ce = ce.mean()
  assert synthetic.copy_baseline_loss(delay) == pytest.approx(mean_ce, rel=1e-12)
  assert task.spec.baselines['eval/loss'] == pytest.approx(mean_ce, rel=1e-12)
  assert task.spec.baselines['eval/accuracy'] == pytest.approx(1 / 8)


# ---------------------------------------------------------------------------------------
# Determinism.

@pytest.mark.parametrize('name,params', [('adding', {'length': 9}), ('copy', {'length': 4})])
def test_same_key_same_batch(name, params):
  task = data.build(name, eval_size=8, **params)
  a = _draw(task, jax.random.PRNGKey(1), 32)
  b = _np(task.train_batch(jax.random.PRNGKey(1), 32))  # eager, not jitted: same bits
  c = _draw(task, jax.random.PRNGKey(2), 32)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a['inputs'], c['inputs'])


def test_every_random_stream_is_distinct():
  """All streams folded from a seed (data's and the harness's) live in one enum and never
  share a key."""
  keys = {tuple(np.asarray(jax.random.key_data(spec_lib.stream_key(7, s))).tolist())
          for s in spec_lib.Stream}
  assert len(keys) == len(spec_lib.Stream) >= 5
  assert np.array_equal(jax.random.key_data(spec_lib.train_key(7)),
                        jax.random.key_data(spec_lib.stream_key(7, spec_lib.Stream.TRAIN)))


def test_train_and_eval_keys_differ():
  for seed in (0, 1, 123):
    assert not np.array_equal(jax.random.key_data(spec_lib.train_key(seed)),
                              jax.random.key_data(spec_lib.eval_key(seed)))
  assert not np.array_equal(jax.random.key_data(spec_lib.eval_key(0)),
                            jax.random.key_data(spec_lib.eval_key(1)))


@pytest.mark.parametrize('name,params', [('adding', {'length': 9}), ('copy', {'length': 4})])
def test_eval_set_fixed_by_seed(name, params):
  a = data.build(name, seed=4, eval_size=32, **params).eval_data
  b = data.build(name, seed=4, eval_size=32, **params).eval_data
  c = data.build(name, seed=5, eval_size=32, **params).eval_data
  assert set(a) == set(b)
  for k in a:
    assert isinstance(a[k], np.ndarray)
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a['inputs'], c['inputs'])


# ---------------------------------------------------------------------------------------
# No train/eval overlap.

def test_copy_eval_sequences_not_in_training_stream():
  # The only randomness in a copy sequence is its 10 symbols from 8: 8**10 ~ 1.07e9
  # equally likely sequences. With E = 64 eval and N = 4096 training sequences, the chance
  # that some pair collides by accident is at most E * N / 8**10 ~ 2.4e-4; a shared
  # train/eval stream (the bug this catches) would instead reproduce the eval set exactly.
  seed, e, n = 0, 64, 4096
  task = data.build('copy', seed=seed, length=5, eval_size=e)
  eval_rows = {bytes(r) for r in task.eval_data['inputs'].astype(np.int8)}
  assert len(eval_rows) == e
  train = _draw(task, spec_lib.train_key(seed), n)['inputs'].astype(np.int8)
  assert not eval_rows & {bytes(r) for r in train}
  # The harness folds the chunk index into train_key: check the first chunks too.
  for i in range(3):
    chunk = _draw(task, jax.random.fold_in(spec_lib.train_key(seed), i), e)['inputs']
    assert not eval_rows & {bytes(r) for r in chunk.astype(np.int8)}


def test_adding_eval_sequences_not_in_training_stream():
  # Each adding sequence holds 16 float32 uniforms (2**23 values each): an accidental exact
  # repeat among 256 x 4096 pairs has probability ~ 1e6 * 2**(-23 * 16), astronomically small.
  seed = 1
  task = data.build('adding', seed=seed, length=16, eval_size=256)
  eval_rows = {bytes(r) for r in task.eval_data['inputs'][..., 0]}
  train = _draw(task, spec_lib.train_key(seed), 4096)['inputs'][..., 0]
  assert not eval_rows & {bytes(r) for r in train}


GENERATED = ('adding', 'copy', 'selective_copy', 'mqar', 'lm', 'parity_check', 'even_pairs',
             'modular_arithmetic', 'cycle_navigation', 'reverse_string', 'stack_manipulation',
             'duplicate_string', 'binary_addition')


@pytest.mark.slow
@pytest.mark.parametrize('name', GENERATED)
def test_held_out_sets_compiled_equal_the_generator_run_op_by_op(name):
  """A generated task's test and validation sets come from one compiled program; they are
  the generator's own examples bit for bit (committed records were scored on them), at the
  default parameters (the test set: validation's is the same program at another key)."""
  task = data.build(name, seed=1)
  size = len(next(iter(task.eval_data.values())))
  eager = jax.tree_util.tree_map(np.asarray, task.train_batch(spec_lib.eval_key(1), size))
  assert set(eager) == set(task.eval_data)
  for k, held in task.eval_data.items():
    np.testing.assert_array_equal(held, eager[k], err_msg=f'{name} {k}')


def test_digits_split_disjoint_and_complete():
  images, labels = digits.load_digits_arrays()
  n = len(labels)
  train, test = digits.split_indices(n, 0.2, 0)
  assert not set(train.tolist()) & set(test.tolist())
  assert sorted(train.tolist() + test.tolist()) == list(range(n))
  assert len(test) == round(0.2 * n)
  # A different split seed gives a different split.
  _, test_other = digits.split_indices(n, 0.2, 1)
  assert not np.array_equal(test, test_other)


def test_digits_no_eval_image_in_training_set():
  images, labels = digits.load_digits_arrays()
  train, test = digits.split_indices(len(labels), 0.2, 0)
  task = data.build('digits')
  ev = task.eval_data
  np.testing.assert_array_equal(ev['inputs'], images[test])
  np.testing.assert_array_equal(ev['targets'], labels[test])
  train_rows = {bytes(r) for r in images[train].reshape(len(train), -1)}
  assert not any(bytes(r) in train_rows for r in ev['inputs'].reshape(len(test), -1))
  # What the training sampler draws comes from the training images only.
  drawn = _draw(task, jax.random.PRNGKey(0), 512)
  assert all(bytes(r) in train_rows for r in drawn['inputs'].reshape(512, -1))


def test_digits_reduced_training_set_keeps_validation_test_and_old_cells():
  """train_examples: training draws from that many of the training images only, the same
  ones for every run; validation and test unchanged; a cell at the default (None) is the
  cell of records from before the parameter existed (the same digest)."""
  from archbench.benchmarks.core import Cell
  full, reduced = data.build('digits'), data.build('digits', seed=3, train_examples=50)
  for part in ('eval_data', 'val_data'):
    np.testing.assert_array_equal(getattr(full, part)['inputs'],
                                  getattr(reduced, part)['inputs'])
  drawn = {bytes(r) for r in _draw(reduced, jax.random.PRNGKey(0), 4096)['inputs']
           .reshape(4096, -1)}
  assert len(drawn) == 50  # 4096 draws with replacement from 50 images see them all
  again = {bytes(r) for r in _draw(data.build('digits', train_examples=50),
                                   jax.random.PRNGKey(1), 4096)['inputs'].reshape(4096, -1)}
  assert drawn == again
  assert reduced.params['train_examples'] == 50 and 'train_examples' not in full.params
  with pytest.raises(ValueError, match='train_examples=5000; valid: 1 to 1257'):
    data.build('digits', train_examples=5000)
  old = {'test_fraction': 0.2, 'val_fraction': 0.1, 'split_seed': 0}
  assert (Cell('cnn', 'digits', 'small', task_params={**old, 'train_examples': None}).digest
          == Cell('cnn', 'digits', 'small', task_params=old).digest)
  assert (Cell('cnn', 'digits', 'small', task_params={**old, 'train_examples': 50}).digest
          != Cell('cnn', 'digits', 'small', task_params=old).digest)


def test_digits_split_fixed_by_split_seed_not_run_seed():
  a = data.build('digits', seed=0)
  b = data.build('digits', seed=7)
  c = data.build('digits', seed=0, split_seed=1)
  np.testing.assert_array_equal(a.eval_data['inputs'], b.eval_data['inputs'])
  np.testing.assert_array_equal(a.eval_data['targets'], b.eval_data['targets'])
  assert not np.array_equal(a.eval_data['targets'], c.eval_data['targets'])


def test_digits_spec_and_baseline():
  task = data.build('digits')
  spec = task.spec
  assert spec.num_classes == 10 and spec.kind == 'classify'
  assert spec.image_shape == (8, 8, 1)
  x, y = task.eval_data['inputs'], task.eval_data['targets']
  assert x.shape[1:] == (8, 8, 1)
  assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5
  assert set(np.unique(y).tolist()) == set(range(10))
  values, counts = np.unique(y, return_counts=True)
  majority = counts.max() / len(y)
  assert spec.baselines['eval/accuracy'] == pytest.approx(majority, rel=1e-12)
  # Loss baseline: cross-entropy on the test labels of predicting the training set's class
  # frequencies (a model that ignores its input).
  images, labels = digits.load_digits_arrays()
  train, test = digits.split_indices(len(labels), 0.2, 0)
  # A tenth of all images, out of the training part, is the validation set.
  train, val = spec_lib.carve(train, round(0.1 * len(labels)), 0)
  assert len(val) == task.val_size == 180 and not set(val) & set(test)
  np.testing.assert_array_equal(task.val_data['targets'], labels[val])
  np.testing.assert_array_equal(task.eval_data['targets'], labels[test])
  freq = np.array([np.mean(labels[train] == c) for c in range(10)])
  prior_ce = np.mean([-math.log(freq[c]) for c in y])
  assert spec.baselines['eval/loss'] == pytest.approx(prior_ce, rel=1e-9)
  drawn = _draw(task, jax.random.PRNGKey(3), 64)
  assert drawn['inputs'].shape == (64, 8, 8, 1) and drawn['targets'].shape == (64,)


# ---------------------------------------------------------------------------------------
# Registry errors.

def test_unknown_task_names_valid_ones():
  with pytest.raises(KeyError) as e:
    data.build('nope')
  message = str(e.value)
  assert 'nope' in message
  for name in data.names():
    assert name in message


@pytest.mark.parametrize('name', data.names())
def test_unknown_parameter_names_valid_ones(name):
  with pytest.raises(KeyError) as e:
    data.build(name, bogus=1)
  message = str(e.value)
  assert 'bogus' in message
  assert data.get(name).defaults  # every task has parameters to name
  for param in data.get(name).defaults:
    assert param in message


def _rows(a) -> set[bytes]:
  a = np.ascontiguousarray(a)
  return {row.tobytes() for row in a.reshape(len(a), -1)}


@pytest.mark.parametrize('name', [n for n in data.names() if not data.get(n).reads_data])
def test_every_task_has_a_validation_set_apart_from_test_and_training(name):
  """The validation set is the test set's kind of batch, of its own examples: a generated
  task's from its own stream (not the test's, not training's), a dataset task's out of its
  training rows, so that no input of it is in the test set or in a training batch."""
  task = data.build(name, seed=3)
  assert task.val_data is not None and task.val_size > 0
  assert set(task.val_data) == set(task.eval_data)
  val, test = _rows(task.val_data['inputs']), _rows(task.eval_data['inputs'])
  drawn = _rows(task.train_batch(jax.random.PRNGKey(0), 256)['inputs'])
  if name in ('digits', 'pdigits', 'pixels', 'listops', 'translate', 'forecast'):  # dataset rows
    assert not val & test and not val & drawn
  else:  # generated: a stream of its own (short strings of a small alphabet recur by chance)
    assert len(val - test) > 0.5 * len(val) and len(drawn - val) > 0.5 * len(drawn)
    again = data.build(name, seed=3)
    np.testing.assert_array_equal(again.val_data['inputs'], task.val_data['inputs'])
