"""The fair-fights protocol in the harness: validation during training, time to target,
stopping there, the weights evaluated, budgets in FLOPs or seconds, and a test set that
nothing reads before the final evaluation."""
import pytest

from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.harness import evaluation, model as model_lib, runner
from archbench.benchmarks.harness import train as train_lib
from archbench.data.spec import TaskSpec

# A tiny LSTM learns the adding problem at T = 8 past its threshold (MSE 0.01) at about
# step 80 of 300, and keeps improving after it.
TRAIN = dict(steps=300, batch_size=16, lr=1e-2, warmup_steps=5, steps_per_dispatch=20,
             eval_batch_size=200, eval_every=20)
ADDING = {'length': 8, 'eval_size': 200}


def _cell(**train) -> Cell:
  return Cell('lstm', 'adding', 'tiny', 0, ADDING, train=TrainConfig(**{**TRAIN, **train}),
              fast_compile=True)


def _measure(cell: Cell, monkeypatch=None):
  """(record sections, the order of events): each dispatch, and each held-out set padded
  for evaluation ('val' or 'test'), so a test can tell when the test set was first read."""
  events = []
  if monkeypatch is not None:
    pad = train_lib.pad_eval_set

    def logged(data, *args, **kwargs):
      events.append('test' if data is task_sets['test'] else 'val')
      return pad(data, *args, **kwargs)
    monkeypatch.setattr(train_lib, 'pad_eval_set', logged)
    build = runner.prepare

    def remembering(cell, build_task=True):
      out = build(cell, build_task)
      task_sets['test'] = out[2].eval_data
      return out
    task_sets = {}
    monkeypatch.setattr(runner, 'prepare', remembering)
  out = {}
  runner.measure_cell(cell, out, on_step=lambda step, steps, loss: events.append(step))
  return out, events


@pytest.fixture(scope='module')
def best_val():
  """One cell trained all its steps, validated every 20, evaluated at its best weights."""
  with pytest.MonkeyPatch.context() as monkeypatch:
    return _measure(_cell(eval_weights='best_val'), monkeypatch)


def test_the_test_set_is_read_once_after_all_training_and_validation(best_val):
  out, events = best_val
  assert events.count('test') == 1 and events[-1] == 'test'
  steps = [e for e in events if isinstance(e, int)]
  assert steps[-1] == 300 and events.index('test') > events.index(300)
  assert 'val' in events[:events.index(300)]  # validation ran during training
  assert out['metrics']['eval/mse'] is not None and out['metrics']['val/mse'] is not None


def test_validation_curve_and_steps_to_target(best_val):
  out, _ = best_val
  curve = out['curves']['val/mse']
  assert [step for step, _ in curve] == list(range(20, 301, 20))
  first = next(step for step, value in curve if value <= 0.01)  # adding's solved MSE
  metrics = out['metrics']
  assert metrics['steps_to_target'] == first < 300 and metrics['train/steps'] == 300
  assert metrics['flops_to_target'] == first * out['perf']['flops_per_step']
  assert 0 < metrics['time_to_target_s'] < out['perf']['train_s']
  assert metrics['train/stopped'] is None
  assert out['perf']['val_evaluations'] == len(curve)


def test_best_val_weights_are_the_ones_evaluated(best_val):
  out, _ = best_val
  curve = out['curves']['val/mse']
  step, value = min(curve, key=lambda point: point[1])
  assert out['metrics']['eval_weights_step'] == step and out['metrics']['val/mse'] == value
  assert out['config']['eval_weights'] == 'best_val'
  if step != 300:  # the final weights' validation MSE is another
    assert curve[-1][1] != out['metrics']['val/mse']


def test_stop_at_target_ends_training_at_the_first_solved_validation(monkeypatch):
  out, events = _measure(_cell(stop_at_target=True), monkeypatch)
  metrics, curve = out['metrics'], out['curves']['val/mse']
  assert metrics['train/stopped'] == 'target'
  assert metrics['train/steps'] == metrics['steps_to_target'] == curve[-1][0] < 300
  assert curve[-1][1] <= 0.01 and all(value > 0.01 for _, value in curve[:-1])
  assert events.count('test') == 1 and events[-1] == 'test'
  assert metrics['val/mse'] == curve[-1][1]  # the final weights, as declared
  assert out['config']['budget']['matched'] == 'steps'
  # Validation and test sets of a generated task have the same shapes: the test evaluation
  # reuses the validation's compiled function instead of compiling its own.
  assert out['perf']['eval_compile_s'] == 0.0 < out['perf']['val_compile_s']


def test_a_time_budget_ends_training_and_evaluates_normally():
  cell = Cell('lstm', 'adding', 'tiny', 0, ADDING, fast_compile=True,
              train=TrainConfig(**{**TRAIN, 'steps': 100_000, 'budget_s': 1e-6}))
  record = runner.run_cell(cell, suite='t', run_id='t', env={})
  assert record['status'] == 'ok', record['error']
  metrics = record['metrics']
  assert metrics['train/stopped'] == 'budget_s' and metrics['train/steps'] == 20
  assert 'eval/mse' in metrics and 'val/mse' in metrics
  assert record['config']['budget']['matched'] == 'seconds'


def test_a_flop_budget_buys_whole_steps():
  cell = _cell(budget_flops=1e9)
  arch, config, task, _ = runner.prepare(cell)
  per_step = model_lib.train_flops(arch, config, task.spec) * 16
  resolved = runner.resolved_train(cell.train, per_step / 16)
  assert resolved.steps == int(1e9 // per_step) and resolved.budget_matched == 'flops'
  with pytest.raises(UsageError, match='buys no step'):
    runner.resolved_train(TrainConfig(budget_flops=1.0), per_step)


def test_new_training_settings_keep_old_identities_and_refuse_bad_values():
  plain = Cell('lstm', 'adding', 'tiny')
  assert 'eval_every' not in plain.to_dict()['train']
  assert Cell('lstm', 'adding', 'tiny', train=TrainConfig(eval_every=None)).digest == plain.digest
  assert Cell('lstm', 'adding', 'tiny', train=TrainConfig(stop_at_target=True)).digest \
      != plain.digest
  for bad, message in [({'eval_weights': 'best'}, 'eval_weights'),
                       ({'stop_at_target': 1}, 'True or False'),
                       ({'stop_at_target': True, 'eval_every': 0}, 'eval_every'),
                       ({'budget_flops': 1e9, 'budget_s': 5.0}, 'two budgets'),
                       ({'budget_s': -1.0}, 'budget_s')]:
    with pytest.raises(UsageError, match=message):
      TrainConfig(**bad)


def test_default_validation_is_about_ten_evaluations_at_dispatch_boundaries():
  assert TrainConfig(steps=300, steps_per_dispatch=50).evaluation_steps(300) == 50
  assert TrainConfig(steps=1000, steps_per_dispatch=50).evaluation_steps(1000) == 100
  assert TrainConfig(steps=1000, eval_every=0).evaluation_steps(1000) == 0


def test_validation_keys_mirror_test_keys():
  spec = TaskSpec(name='x', kind='classify', length=4, vocab_size=3, num_classes=2,
                  metric='eval/accuracy', higher_is_better=True, baselines={}, solved=0.9)
  from archbench.benchmarks.results import metrics
  assert metrics.validation_key(spec.metric) == 'val/accuracy'
  assert evaluation.VALIDATION == 'val' and evaluation.TEST == 'eval'


def test_a_tuning_trial_reads_validation_and_never_the_test_set(monkeypatch):
  trial = Cell('lstm', 'adding', 'tiny', 0, ADDING, fast_compile=True,
               train=TrainConfig(**{**TRAIN, 'steps': 40}),
               settings_from={'from': 'trial', 'trial': 0})
  out, events = _measure(trial, monkeypatch)
  assert 'val' in events and 'test' not in events
  assert 'val/mse' in out['metrics'] and not any(k.startswith('eval/') for k in out['metrics'])
  assert out['config']['test'].startswith('not evaluated')
