"""The random-walk forecasting task (data/forecast.py): a geometric Brownian motion, where
persistence is the optimal forecast, so a claim that a model predicts prices is judged
against it."""
import numpy as np
import pytest

from archbench import data
from archbench.data import forecast

RW = {'length': 16, 'horizon': 4, 'train_length': 600, 'test_length': 200}


def test_log_prices_are_a_gaussian_walk_of_the_stated_volatility():
  log_price = forecast.random_walk_series(20000, 0.2, 0.0, 0, 0)
  steps = np.diff(log_price)
  assert log_price[0] == pytest.approx(np.log(100.0))
  assert np.std(steps) == pytest.approx(0.2 / np.sqrt(252), rel=0.02)
  assert abs(np.mean(steps)) < 3 * np.std(steps) / np.sqrt(len(steps))
  # Increments are uncorrelated: nothing in the past predicts the next step.
  assert abs(np.corrcoef(steps[:-1], steps[1:])[0, 1]) < 0.03


def test_windows_are_relative_to_the_last_observed_price():
  task = data.build('random_walk', **RW)
  inputs, targets = task.eval_data['inputs'][..., 0], task.eval_data['targets']
  assert inputs.shape[1:] == (16,) and targets.shape[1:] == (4,)
  np.testing.assert_array_equal(inputs[:, -1], 0.0)  # the past ends at 0: no price level
  # The next window's past is this window's past shifted by one, both relative to their
  # own last value: their differences agree.
  np.testing.assert_allclose(np.diff(inputs[1]), np.diff(inputs[0])[1:].tolist()
                             + [targets[0, 0] - 0.0], atol=1e-5)


def test_persistence_is_the_floor_and_its_mse_is_about_half_horizon_plus_one():
  task = data.build('random_walk', length=16, horizon=4, train_length=6000, test_length=6000)
  base = task.spec.baselines
  assert base['eval/mse'] == base['persistence/mse'] == task.spec.solved
  # E[(change over h days)^2] = h days' variance: mean over h = 1..4 is 2.5 (one day = 1).
  assert base['persistence/mse'] == pytest.approx(2.5, rel=0.15)
  # The linear AR fitted on training windows does no better than persistence, beyond noise.
  assert base['linear_ar/mse'] > 0.97 * base['persistence/mse']


def test_each_seed_draws_its_own_walk_and_the_same_seed_the_same_one():
  a, b, again = (data.build('random_walk', seed=s, **RW) for s in (0, 1, 0))
  np.testing.assert_array_equal(a.eval_data['inputs'], again.eval_data['inputs'])
  assert not np.array_equal(a.eval_data['inputs'], b.eval_data['inputs'])
  assert a.spec.baselines['persistence/mse'] != b.spec.baselines['persistence/mse']


def test_bad_parameters_are_refused():
  with pytest.raises(ValueError, match='random_walk'):
    data.build('random_walk', volatility=0.0)
  with pytest.raises(ValueError, match='random_walk'):
    data.build('random_walk', length=16, horizon=4, train_length=100, test_length=200)
