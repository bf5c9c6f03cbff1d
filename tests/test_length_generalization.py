"""Length generalisation as a harness capability (Cell.eval_lengths,
evaluator 'lengths'): a model trained at short lengths is evaluated at longer ones,
and its record carries the accuracy at every length and the mean beyond training."""
import numpy as np
import pytest

from archbench import data
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.harness import evaluation, runner
from archbench.benchmarks.harness.evaluators import lengths
from archbench.benchmarks.harness import train as train_lib

TRAIN = {'length': 8, 'min_length': 1, 'eval_size': 64}
TC = TrainConfig(steps=20, batch_size=16, lr=3e-3, warmup_steps=2, steps_per_dispatch=10,
                 eval_batch_size=64)


def _measure(arch, eval_lengths=(4, 12, 20), task='parity_check', overrides=None):
  cell = Cell(arch, task, 'tiny', 0, TRAIN, overrides or {}, TC, fast_compile=True,
              eval_lengths=eval_lengths)
  out = {}
  runner.measure_cell(cell, out)
  return cell, out


def test_at_length_pins_both_ends_of_a_length_range():
  assert data.at_length(TRAIN, 30) == {'length': 30, 'min_length': 30, 'eval_size': 64}
  assert data.at_length({'length': 16, 'eval_size': 9}, 40) == {'length': 40, 'eval_size': 9}
  with pytest.raises(KeyError, match='length'):
    data.at_length({'eval_size': 9}, 40)


# The LSTM's case in the whole suite only: the Transformer's covers the quick loop.
@pytest.mark.parametrize('arch', [pytest.param('lstm', marks=pytest.mark.slow), 'transformer'])
def test_records_carry_accuracy_per_length_and_the_mean_beyond_training(arch):
  cell, out = _measure(arch)
  metrics = out['metrics']
  for length in (4, 12, 20):
    assert 0.0 <= metrics[f'length/{length}/accuracy'] <= 1.0
    assert np.isfinite(metrics[f'length/{length}/loss'])
  # Only 12 and 20 lie beyond the training length 8.
  assert metrics['ood/accuracy'] == pytest.approx(
      (metrics['length/12/accuracy'] + metrics['length/20/accuracy']) / 2)
  assert metrics['ood/loss'] == pytest.approx(
      (metrics['length/12/loss'] + metrics['length/20/loss']) / 2)
  assert 'eval/accuracy' in metrics  # the in-distribution evaluation is still there


def test_each_length_is_scored_on_strings_of_that_length_alone():
  """The per-length figure equals an independent evaluation of the trained parameters on a
  task built at min_length = length = L (the paper's per-length test point)."""
  cell = Cell('gru', 'parity_check', 'tiny', 0, TRAIN, {}, TC, fast_compile=True,
              eval_lengths=(12,))
  arch, config, task, model = runner.prepare(cell)
  state = train_lib.init_state(model, task, train_lib.make_optimizer(TC),
                               __import__('jax').random.PRNGKey(3), TC.batch_size)
  parallel = runner.DataParallel.over(1, (TC.batch_size,))
  got = lengths.evaluate_at_lengths(cell, model, state.params, parallel)
  long_task = data.build('parity_check', seed=0, length=12, min_length=12, eval_size=64)
  assert (long_task.eval_data['inputs'][:, :12] < 2).all()  # the whole string is 12 long
  expected, _, _ = evaluation.held_out(model, long_task, state.params, TC, parallel, True)
  assert got['length/12/accuracy'] == pytest.approx(expected['eval/accuracy'])
  assert got['ood/accuracy'] == pytest.approx(expected['eval/accuracy'])


def test_learned_positions_cannot_reach_unseen_lengths():
  with pytest.raises(Exception, match='positions|shape'):
    _measure('transformer', eval_lengths=(20,), overrides={'positions': 'learned'})


def test_suite_plans_carry_eval_lengths_into_cells_and_identity():
  config = config_lib.suite_config('t', 'doc', 'tiny', {
      'parity_check': config_lib.task_plan(TRAIN, {'steps': 5}, eval_lengths=(12, 20))},
      archs=('lstm',))
  (cell,) = config_lib.cells(config)
  assert cell.eval_lengths == (12, 20)
  plain = Cell(cell.arch, cell.task, cell.size, cell.seed, cell.task_params,
               cell.arch_overrides, cell.train, cell.fast_compile, cell.probes)
  assert cell.digest != plain.digest and 'eval_lengths' not in plain.to_dict()
  assert Cell.from_dict(cell.to_dict()) == cell
  assert cell.name.endswith('/eval@12-20')
  with pytest.raises(UsageError, match='length'):
    Cell('lstm', 'digits', 'tiny', 0, {'eval_size': 10}, eval_lengths=(5,))
