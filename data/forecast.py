"""Multi-step forecasting of the Mackey-Glass chaotic time series (Mackey & Glass 1977).

The "stock prices" use case with dynamics that are known, deterministic and chaotic, so
that what a model gets right beyond a linear predictor is nonlinear structure, not luck:

    dx/dt = beta x(t - tau) / (1 + x(t - tau)^n) - gamma x(t),
    beta = 0.2, gamma = 0.1, n = 10, tau = 17 (chaotic for tau above ~16.8).

Integration: classic RK4 with step dt = 0.1, so the delay is exactly 170 steps; RK4's
first and last stages read the delayed term on the grid, its two midpoint stages read
x(t - tau + dt/2) by linear interpolation (the mean of the two neighbouring grid values).
The history is constant, x(t) = x0 for t <= 0 with x0 ~ U(0.5, 1.5) drawn from
`data_seed`; the first 1000 time units (the transient) are dropped; the series is then
sampled every `sample_every` time units and observed with additive Gaussian noise of std
`noise` (in the series' own units: its std is about 0.23).

The task: from a window of the last T observations (inputs [B, T, 1]) predict the next H
(targets [B, H]); both normalised by the training part's mean and std. One long series
is split in time: training windows lie in its first `train_length` samples, test windows
in its last `test_length`, with a gap of T + H samples between, so no time index (and no
window's future) is shared. Windows are taken at every start (stride 1).

Baselines, on the test windows: persistence (repeat the last observed value H times) and
a linear autoregression (least squares on the last p = `ar_order` values and a bias, one
output per horizon step, fitted on the training windows only). `solved` is an MSE below
the linear AR's: a model that cannot beat it has learned nothing a linear filter cannot.
"""
from __future__ import annotations

import functools

import numpy as np

from archbench.data.digits import array_sampler
from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec

BETA, GAMMA, EXPONENT, TAU = 0.2, 0.1, 10, 17.0
DT = 0.1           # RK4 step (time units); TAU / DT = 170 steps
TRANSIENT = 1000.0  # time units dropped before sampling


def _steps(duration: float, name: str) -> int:
  n = round(duration / DT)
  if n < 1 or abs(n * DT - duration) > 1e-9:
    raise ValueError(f'forecast: {name} must be a positive multiple of dt={DT}, got {duration}')
  return n


def mackey_glass(num_samples: int, sample_every: float = 1.0, x0: float = 1.2,
                 transient: float = TRANSIENT) -> np.ndarray:
  """[num_samples] noiseless x(transient + i * sample_every), from x(t) = x0 for t <= 0."""
  delay, stride = _steps(TAU, 'tau'), _steps(sample_every, 'sample_every')
  skip = round(transient / DT)

  def f(x, lagged):
    return BETA * lagged / (1.0 + lagged ** EXPONENT) - GAMMA * x

  x = [float(x0)] * (delay + 1)  # x[-1] = x(t), x[-1 - delay] = x(t - tau)
  for _ in range(skip + (num_samples - 1) * stride):  # Python floats: ~1 us per step
    now, lag0, lag1 = x[-1], x[-1 - delay], x[-delay]
    lag_half = 0.5 * (lag0 + lag1)
    k1 = f(now, lag0)
    k2 = f(now + 0.5 * DT * k1, lag_half)
    k3 = f(now + 0.5 * DT * k2, lag_half)
    k4 = f(now + DT * k3, lag1)
    x.append(now + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4))
  return np.array(x[delay + skip::stride])


@functools.cache
def observed_series(num_samples: int, sample_every: float, noise: float,
                    data_seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(clean, observed) [num_samples]: the series from a seeded x0, and it plus noise."""
  rng = np.random.default_rng(data_seed)
  clean = mackey_glass(num_samples, sample_every, x0=rng.uniform(0.5, 1.5))
  return clean, clean + noise * rng.standard_normal(num_samples)


def windows(series: np.ndarray, length: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
  """Every window of a 1-D series: (past [N, T], future [N, H]), N = len - T - H + 1."""
  w = np.lib.stride_tricks.sliding_window_view(series, length + horizon)
  return w[:, :length], w[:, length:]


def persistence_forecast(past: np.ndarray, horizon: int) -> np.ndarray:
  """[N, T] -> [N, H]: the last observed value, repeated."""
  return np.repeat(past[:, -1:], horizon, axis=1)


def fit_linear_ar(past: np.ndarray, future: np.ndarray, order: int):
  """Least squares of every horizon step on the last `order` values and a bias (a direct
  multi-output forecast); returns the predictor [N, T] -> [N, H]."""
  def features(p):
    return np.concatenate([p[:, -order:], np.ones((len(p), 1))], axis=1)
  weights, *_ = np.linalg.lstsq(features(past), future, rcond=None)  # [p + 1, H]
  return lambda p: features(p) @ weights


def _errors(prediction: np.ndarray, future: np.ndarray) -> tuple[float, float]:
  return float(np.mean((prediction - future) ** 2)), float(np.mean(np.abs(prediction - future)))


@functools.cache
def _prepared(length: int, horizon: int, sample_every: float, noise: float, train_length: int,
              val_length: int, test_length: int, order: int, data_seed: int):
  """(train arrays, validation arrays, test arrays, persistence (MSE, MAE), linear AR
  (MSE, MAE)), cached: the harness and `archbench list` build a task many times, and the AR
  fit is the slow part. The validation segment is the end of the training part, a window
  apart from the rest (as the test segment is from both), so no window straddles two."""
  gap = length + horizon
  _, observed = observed_series(train_length + gap + test_length, sample_every, noise,
                                data_seed)
  train_part = observed[:train_length - val_length - gap]
  val_part = observed[train_length - val_length:train_length]
  test_part = observed[train_length + gap:]
  mean, std = train_part.mean(), train_part.std()
  train_past, train_future = windows((train_part - mean) / std, length, horizon)
  test_past, test_future = windows((test_part - mean) / std, length, horizon)
  val_past, val_future = windows((val_part - mean) / std, length, horizon)
  persistence = _errors(persistence_forecast(test_past, horizon), test_future)
  linear = _errors(fit_linear_ar(train_past, train_future, order)(test_past), test_future)

  def arrays(past, future):
    out = {'inputs': past[..., None].astype(np.float32), 'targets': future.astype(np.float32)}
    for a in out.values():
      a.setflags(write=False)  # shared by every build of the task
    return out
  return (arrays(train_past, train_future), arrays(val_past, val_future),
          arrays(test_past, test_future), persistence, linear)


def _baselines(persistence, linear) -> dict[str, float]:
  """A forecasting task's baselines from (MSE, MAE) pairs: persistence is the one to beat
  (eval/), the linear AR beside it."""
  return {'eval/mse': persistence[0], 'eval/mae': persistence[1], 'eval/loss': persistence[0],
          'persistence/mse': persistence[0], 'persistence/mae': persistence[1],
          'linear_ar/mse': linear[0], 'linear_ar/mae': linear[1]}


def _segments(name: str, length: int, horizon: int, ar_order: int | None, train_length: int,
              val_length: int | None, test_length: int, own_ok: bool,
              own_need: str) -> tuple[int, int]:
  """(validation length, AR order) with their defaults (a sixth of the training part; the
  window), checked with the task's own condition `own_ok` (`own_need` in words): every
  segment holds at least two windows and their horizons."""
  val_length = train_length // 6 if val_length is None else val_length
  order = length if ar_order is None else ar_order
  if not (own_ok and 1 <= horizon and 1 <= order <= length
          and min(train_length - val_length - length - horizon, val_length, test_length)
          >= 2 * (length + horizon)):
    raise ValueError(f'{name}: need horizon >= 1, 1 <= ar_order <= length, {own_need}, '
                     'val_length, test_length >= 2 * (length + horizon) and train_length '
                     '>= val_length + 3 * (length + horizon)')
  return val_length, order


def _series_task(name: str, params: dict, prepared: tuple, solved_by: str) -> Task:
  """A forecasting task from its prepared (train, val, test, persistence, linear): the
  solved threshold is the MSE of the baseline `solved_by` (linear_ar or persistence)."""
  train, val, test, persistence, linear = prepared
  baselines = _baselines(persistence, linear)
  spec = TaskSpec(name=name, kind='regress', length=params['length'], feature_dim=1,
                  out_dim=params['horizon'], metric='eval/mse', higher_is_better=False,
                  baselines=baselines, solved=baselines[f'{solved_by}/mse'])
  return Task(spec, params, array_sampler(train), dict(test), val_data=dict(val))


@register('forecast', 'Mackey-Glass chaotic series: forecast the next H noisy values (MSE)')
def make_forecast(seed: int = 0, length: int = 64, horizon: int = 16, sample_every: float = 1.0,
                  noise: float = 0.02, train_length: int = 6000, val_length: int | None = None,
                  test_length: int = 2000, ar_order: int | None = None,
                  data_seed: int = 0) -> Task:
  """`length` is the window T; `ar_order` the linear AR's p (None: p = T, the window the
  model sees). The series is fixed by data_seed, never by the run's seed; the last
  `val_length` steps (None: a sixth) of the `train_length` are the validation segment."""
  del seed
  val_length, order = _segments('forecast', length, horizon, ar_order, train_length,
                                val_length, test_length, noise >= 0, 'noise >= 0')
  prepared = _prepared(length, horizon, sample_every, noise, train_length, val_length,
                       test_length, order, data_seed)
  params = {'length': length, 'horizon': horizon, 'sample_every': sample_every, 'noise': noise,
            'train_length': train_length, 'val_length': val_length,
            'test_length': test_length, 'ar_order': order, 'data_seed': data_seed}
  return _series_task('forecast', params, prepared, solved_by='linear_ar')


# ---------------------------------------------------------------------------------------
# A random walk: the "stock prices" use case where nothing beats persistence.

TRADING_DAYS = 252  # steps per year of the random walk (daily prices)


@functools.cache
def random_walk_series(num_samples: int, volatility: float, drift: float,
                       data_seed: int, seed: int = 0) -> np.ndarray:
  """[num_samples] log prices of a geometric Brownian motion sampled daily: log S_t =
  log S_{t-1} + drift dt + volatility sqrt(dt) eps_t, dt = 1/252, eps ~ N(0, 1) from
  (`data_seed`, `seed`), S_0 = 100. `drift` is the annual drift of the log price
  (mu - sigma^2/2 of the price's own SDE)."""
  dt = 1.0 / TRADING_DAYS
  rng = np.random.default_rng([data_seed, seed])
  steps = drift * dt + volatility * np.sqrt(dt) * rng.standard_normal(num_samples - 1)
  return np.log(100.0) + np.concatenate([[0.0], np.cumsum(steps)])


def relative_windows(series: np.ndarray, length: int, horizon: int, scale: float):
  """(past [N, T], future [N, H]) of a series, each window taken relative to its last
  observed value and divided by `scale`: the past ends at 0, the future is the change
  since then. What a random walk's forecast can depend on at all."""
  past, future = windows(series, length, horizon)
  last = past[:, -1:]
  return (past - last) / scale, (future - last) / scale


@functools.cache
def _random_walk_prepared(length: int, horizon: int, volatility: float, drift: float,
                          train_length: int, val_length: int, test_length: int, order: int,
                          data_seed: int, seed: int):
  """(train, validation, test arrays, persistence (MSE, MAE), linear AR (MSE, MAE)); the
  segments split in time as the forecast task's."""
  gap = length + horizon
  log_price = random_walk_series(train_length + gap + test_length, volatility, drift,
                                 data_seed, seed)
  train_part = log_price[:train_length - val_length - gap]
  val_part = log_price[train_length - val_length:train_length]
  test_part = log_price[train_length + gap:]
  scale = float(np.std(np.diff(train_part)))  # one day's change: 1 after scaling
  train_past, train_future = relative_windows(train_part, length, horizon, scale)
  val_past, val_future = relative_windows(val_part, length, horizon, scale)
  test_past, test_future = relative_windows(test_part, length, horizon, scale)
  persistence = _errors(persistence_forecast(test_past, horizon), test_future)
  linear = _errors(fit_linear_ar(train_past, train_future, order)(test_past), test_future)

  def arrays(past, future):
    out = {'inputs': past[..., None].astype(np.float32), 'targets': future.astype(np.float32)}
    for a in out.values():
      a.setflags(write=False)
    return out
  return (arrays(train_past, train_future), arrays(val_past, val_future),
          arrays(test_past, test_future), persistence, linear)


@register('random_walk', 'daily log prices of a geometric Brownian motion: forecast the next '
          'H (MSE); persistence is optimal')
def make_random_walk(seed: int = 0, length: int = 32, horizon: int = 8,
                     volatility: float = 0.2, drift: float = 0.0, train_length: int = 6000,
                     val_length: int | None = None, test_length: int = 2000,
                     ar_order: int | None = None, data_seed: int = 0) -> Task:
  """The forecast task's protocol on a random walk (random_walk_series): from the last
  `length` daily log prices, each window relative to its last value in units of one
  day's change, predict the next `horizon` changes. With `drift` 0 the future change is
  independent of the past with mean 0, so persistence (predict no change) is the optimal
  forecast: its MSE, about (H + 1) / 2, is the floor no model beats but by chance. A
  nonzero drift is worth (drift dt h / scale)^2 at step h: 1e-4 of that MSE at
  drift 0.05. Baselines: persistence and the linear AR on the last `ar_order` values;
  `solved`: below persistence.

  Unlike the Mackey-Glass series, the walk is drawn from the run's seed too: one test
  segment of one walk can favour some forecast by chance, and the claims' tests over
  seeds must see that chance (every architecture of a seed still sees the same walk)."""
  val_length, order = _segments('random_walk', length, horizon, ar_order, train_length,
                                val_length, test_length, volatility > 0, 'volatility > 0')
  prepared = _random_walk_prepared(length, horizon, volatility, drift, train_length,
                                   val_length, test_length, order, data_seed, seed)
  params = {'length': length, 'horizon': horizon, 'volatility': volatility, 'drift': drift,
            'train_length': train_length, 'val_length': val_length,
            'test_length': test_length, 'ar_order': order, 'data_seed': data_seed}
  return _series_task('random_walk', params, prepared, solved_by='persistence')
