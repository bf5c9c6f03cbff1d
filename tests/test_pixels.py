"""Image generation (data/pixels.py, the `images` evaluator, the report's `images` section):
the task against its promises (levels, the shifted raster, disjoint splits, baselines by
naive counting), the sample score, generation through the decode path to the last pixel
(equal to recomputing), and the sample grid drawn from fabricated records."""
import dataclasses
import functools
import math
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from archbench import archs, data
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.harness import generate
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.harness.evaluators import base as evaluators
from archbench.benchmarks.measure import timing
from archbench.benchmarks.results import image_samples, metrics, report
from archbench.data import pixels, tfds_tasks
from archbench.data.digits import load_digits_arrays
from archbench.data.spec import TaskSpec
from selection import quick_subset  # tests/selection.py

FIXTURES = pathlib.Path(__file__).resolve().parent / 'fixtures'
sys.path.insert(0, str(FIXTURES))
import tfds_fixture_data as raw  # noqa: E402  (the fixtures' raw data, no TensorFlow)

PNG = b'\x89PNG\r\n\x1a\n'


@functools.cache
def _task(levels=4):
  return data.build('pixels', levels=levels)


def _rows(a) -> list[bytes]:
  return [r.tobytes() for r in np.ascontiguousarray(a, np.uint8).reshape(len(a), -1)]


@functools.cache
def _train_images(levels=4) -> np.ndarray:
  """The training images, found without the task's code: every distinct quantised digit
  that is neither a validation nor a test image."""
  task = _task(levels)
  held = set(_rows(task.eval_data['targets'])) | set(_rows(task.val_data['targets']))
  raw_levels = (load_digits_arrays()[0][..., 0] * 16).round().astype(int)
  quantised = np.minimum(raw_levels * levels // 16, levels - 1).astype(np.uint8)
  seen, train = set(), []
  for image in quantised.reshape(len(quantised), -1):
    key = image.tobytes()
    if key not in seen and key not in held:
      train.append(image)
    seen.add(key)
  return np.asarray(train)


# ---------------------------------------------------------------------------------------
# The task.

def test_quantisation_levels_are_exact():
  """Level min(floor(x L), L - 1) of x = v / 16 for the digits' 17 intensities v."""
  v = np.arange(17)
  np.testing.assert_array_equal(pixels.quantise(v / 16, 4),
                                [0] * 4 + [1] * 4 + [2] * 4 + [3] * 5)
  np.testing.assert_array_equal(pixels.quantise(v / 16, 2), [0] * 8 + [1] * 9)
  np.testing.assert_array_equal(pixels.quantise(v / 16, 17), v)  # every intensity kept
  np.testing.assert_array_equal(pixels.quantise(np.array([0, 127, 128, 255]) / 256, 2),
                                [0, 0, 1, 1])  # MNIST binarised at one half


@pytest.mark.parametrize('levels', [2, 4])
def test_task_is_the_quantised_raster_behind_a_start_token(levels):
  task = _task(levels)
  spec = task.spec
  assert (spec.kind, spec.causal, spec.length) == ('per_token', True, 64)
  assert spec.vocab_size == levels + 1 and spec.num_classes == levels  # start = levels
  assert spec.metric == 'eval/bits_per_dim' and not spec.higher_is_better
  assert task.image_samples.shape == (8, 8) and task.image_samples.levels == levels
  batch = {k: np.asarray(v) for k, v in jax.jit(task.train_batch, static_argnums=1)(
      jax.random.PRNGKey(0), 64).items()}
  for held in (task.eval_data, task.val_data, batch):
    inputs, targets = held['inputs'], held['targets']
    assert inputs.dtype == targets.dtype == np.int32
    assert set(np.unique(targets)) <= set(range(levels))
    np.testing.assert_array_equal(inputs[:, 0], levels)  # the start token
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # shifted by one
    assert np.all(held['loss_mask'] == 1) and np.all(held['metric_mask'] == 1)
  assert set(np.unique(task.eval_data['targets'])) == set(range(levels))  # all used
  # Every held-out image is a digit, quantised, in row-major order.
  digits = set(_rows(pixels.quantise(load_digits_arrays()[0][..., 0], levels)))
  assert set(_rows(task.eval_data['targets'])) <= digits


@pytest.mark.parametrize('levels', [2, 4])
def test_splits_are_disjoint_and_sized(levels):
  """No image in two of train, validation and test (by content: at 2 levels, 47 digits
  quantise to another's pixels and are kept once); validation apart from both."""
  task = _task(levels)
  test, val = _rows(task.eval_data['targets']), _rows(task.val_data['targets'])
  train = _rows(_train_images(levels))
  drawn = set(_rows(np.asarray(task.train_batch(jax.random.PRNGKey(1), 4096)['targets'])))
  assert len(set(test)) == len(test) and len(set(val)) == len(val)
  assert not set(test) & set(val) and not (set(test) | set(val)) & set(train)
  assert drawn <= set(train) and len(drawn) > 0.9 * len(train)  # training draws train only
  n = len(test) + len(val) + len(train)
  assert n == (1750 if levels == 2 else 1797)  # the distinct quantised digits
  assert (len(test), len(val)) == (round(0.2 * n), round(0.1 * n))
  again = data.build('pixels', seed=7, levels=levels)  # the run's seed does not move them
  np.testing.assert_array_equal(again.eval_data['targets'], task.eval_data['targets'])
  other = data.build('pixels', levels=levels, split_seed=1)
  assert set(_rows(other.eval_data['targets'])) != set(test)


def test_baselines_match_a_naive_count():
  """The memoryless, per-position and context models' bits/dim (and accuracies), by
  counting in Python loops over the training images and scoring the test images."""
  levels, task = 4, _task(4)
  train, test = _train_images(4).astype(int), task.eval_data['targets'].astype(int)
  b = task.spec.baselines
  total = [1.0] * levels
  for v in train.ravel():
    total[v] += 1
  bits = -np.mean([math.log2(total[v] / sum(total)) for v in test.ravel()])
  assert b['eval/bits_per_dim'] == pytest.approx(bits, rel=1e-12)
  assert b['eval/loss'] == pytest.approx(bits * math.log(2), rel=1e-12)
  assert b['eval/accuracy'] == pytest.approx(np.mean(test == int(np.argmax(total))))
  per = [[1.0] * levels for _ in range(64)]
  for image in train:
    for pos, v in enumerate(image):
      per[pos][v] += 1
  bits = -np.mean([math.log2(per[pos][v] / sum(per[pos])) for image in test
                   for pos, v in enumerate(image)])
  assert b['position/bits_per_dim'] == pytest.approx(bits, rel=1e-12)
  assert b['position/accuracy'] == pytest.approx(np.mean(
      [v == int(np.argmax(per[pos])) for image in test for pos, v in enumerate(image)]))
  counts = {}
  def context(image, pos):  # position, left, above (0 outside the image)
    r, c = divmod(pos, 8)
    return pos, image[pos - 1] if c else 0, image[pos - 8] if r else 0
  for image in train:
    for pos, v in enumerate(image):
      counts.setdefault(context(image, pos), [1.0] * levels)[v] += 1
  bits = -np.mean([math.log2(counts.get(context(image, pos), [1.0] * levels)[v]
                             / sum(counts.get(context(image, pos), [1.0] * levels)))
                   for image in test for pos, v in enumerate(image)])
  assert task.spec.solved == pytest.approx(bits, rel=1e-12)
  # The honest order: memoryless > per position > context model.
  assert b['eval/bits_per_dim'] > b['position/bits_per_dim'] > task.spec.solved


def test_sample_score_is_calibrated_on_held_out_images():
  """Held-out images score about 0.95 plausible and 0 copied; training images 1 and 1;
  uniform noise 0; the per-position sampler (the baseline) little."""
  task = _task(4)
  score = task.image_samples.score
  held = score(task.eval_data['targets'])
  assert held['sample_plausible'] == pytest.approx(0.95, abs=0.01)
  assert held['sample_copied'] == 0
  assert score(_train_images(4)) == {'sample_plausible': 1.0, 'sample_copied': 1.0}
  noise = np.random.default_rng(0).integers(0, 4, (200, 64))
  assert score(noise)['sample_plausible'] == 0
  b = task.spec.baselines
  assert b['position/sample_plausible'] < 0.1 and b['eval/sample_plausible'] <= 0.01


def test_nearest_distances_against_brute_force():
  rng = np.random.default_rng(0)
  x, ref = rng.normal(size=(37, 5)), rng.normal(size=(11, 5))
  brute = np.min(np.linalg.norm(x[:, None] - ref[None], axis=2), axis=1)
  np.testing.assert_allclose(pixels.nearest_distances(x, ref, chunk=8), brute, rtol=1e-9)


def test_bits_per_dim_is_the_loss_in_bits_and_text_keeps_bits_per_char():
  sums = {'loss': 2.0, 'count': 1.0, 'correct': 0.5, 'metric_count': 1.0}
  out = train_lib.finalize(_task(4).spec, sums, 'eval')
  assert out['eval/bits_per_dim'] == pytest.approx(2.0 / math.log(2))
  assert 'eval/bits_per_char' not in out
  lm = TaskSpec('lm', 'per_token', 8, 'eval/bits_per_char', False, {}, 1.0, vocab_size=4,
                num_classes=4, causal=True)
  assert 'eval/bits_per_char' in train_lib.finalize(lm, sums, 'eval')
  assert metrics.label('eval/bits_per_dim') == 'bits/dim'
  assert not metrics.higher_is_better('eval/bits_per_dim')


@pytest.mark.parametrize('params', [{'levels': 1}, {'levels': 18}, {'test_fraction': 0.95},
                                    {'val_fraction': 0.0}])
def test_bad_parameters_are_one_line_errors(params):
  with pytest.raises(ValueError) as e:
    data.build('pixels', **params)
  assert '\n' not in str(e.value) and 'pixels' in str(e.value)


def test_bad_levels_on_the_command_line_exit_2_in_one_line(capsys, tmp_path):
  from archbench.benchmarks import cli
  code = cli.run(['archbench', 'run', '--tasks', 'pixels', '--archs', 'lstm',
                  '--config.task.levels=1', '--out', str(tmp_path / 'run')])
  err = capsys.readouterr().err
  assert code == 2 and 'Traceback' not in err
  assert len(err.strip().splitlines()) == 1 and 'levels must be between 2 and 17' in err


# ---------------------------------------------------------------------------------------
# binarised MNIST, on the TFDS fixture.

def test_pixels_mnist_on_the_fixture(monkeypatch):
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(FIXTURES / 'tfds'))
  task = data.build('pixels_mnist')
  spec = task.spec
  assert (spec.length, spec.vocab_size, spec.num_classes) == (784, 3, 2)
  assert task.image_samples.shape == (28, 28)
  train_raw = pixels.quantise(raw.mnist_like('train', raw.MNIST_SIZES['train'])[0] / 256, 2)
  test_raw = pixels.quantise(raw.mnist_like('test', raw.MNIST_SIZES['test'])[0] / 256, 2)
  test, val = _rows(task.eval_data['targets']), _rows(task.val_data['targets'])
  assert set(test) == set(_rows(test_raw)) - set(_rows(train_raw))
  assert set(val) <= set(_rows(train_raw)) and not set(val) & set(test)
  np.testing.assert_array_equal(task.eval_data['inputs'][:, 1:],
                                task.eval_data['targets'][:, :-1])
  assert set(spec.baselines) >= {'eval/bits_per_dim', 'position/bits_per_dim'}
  assert math.isfinite(spec.solved)
  free = data.spec_of('pixels_mnist')  # without the data: no baselines, no threshold
  assert free.baselines == {} and math.isnan(free.solved)
  assert dataclasses.replace(spec, baselines={}, solved=0.0) == dataclasses.replace(
      free, solved=0.0)


# ---------------------------------------------------------------------------------------
# Generation: through the decode path to the last pixel.

B = 4


@functools.cache
def _model_and_params(name):
  """A one-layer tiny model of `name` on the pixels task, every parameter perturbed (so
  that the logits differ from position to position)."""
  spec = archs.get(name)
  depth = {field: 1 for field in spec.depth_fields}
  config = dataclasses.replace(spec.config('tiny'), **depth)
  if spec.causal is None:
    config = dataclasses.replace(config, causal=True)
  model = model_lib.build_model(spec, config, _task(4).spec)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 64), jnp.int32))
  rng = np.random.default_rng(1)
  params = jax.tree_util.tree_map(
      lambda a: jnp.asarray(np.asarray(a) + 0.3 * rng.standard_normal(a.shape), a.dtype),
      params)
  return model, params


@pytest.mark.parametrize('name', quick_subset(['tcn', 'lstm', 'decoder']))
def test_cached_images_equal_recompute(name):
  """From the start token alone, the cached path draws exactly the 64 pixels that
  rerunning the whole model per pixel draws, the last one included (`one_more`).
  (Compiled without backend optimisation, as smoke cells are: compiling dominates.)"""
  model, params = _model_and_params(name)
  assert generate.decodes(model)
  prompts = jnp.asarray(_task(4).eval_data['inputs'][:B, :1])
  key = jax.random.PRNGKey(3)

  def run(fn):
    sample = functools.partial(fn, model=model, length=64, one_more=True)
    compiled, _ = timing.compile_ahead(sample, params, prompts, key, fast=True)
    return np.asarray(compiled(params, prompts, key))
  cached, recomputed = run(generate.sample_cached), run(generate.sample_recompute)
  assert cached.shape == (B, 65)
  np.testing.assert_array_equal(cached, recomputed)
  np.testing.assert_array_equal(cached[:, 0], 4)
  assert set(np.unique(cached[:, 1:])) <= set(range(4))  # pixels, never the start token
  assert len(np.unique(cached[:, 1:])) > 1


def test_images_evaluator_records_scores_and_a_grid():
  """The evaluator's hook on a trained-model stand-in: the task's scores, 16 images of
  8 x 8 levels, the level count, the compile time."""
  model, params = _model_and_params('lstm')
  task = _task(4)
  cell = Cell('lstm', 'pixels', 'tiny', 0, {'levels': 4},
              train=TrainConfig(eval_batch_size=32))
  spec = evaluators.get('images')
  assert [e.name for e in evaluators.for_cell(cell, task)] == ['images']
  assert spec.section == 'images'
  ctx = types.SimpleNamespace(task=task, cell=cell, params=params, model=model,
                              fast_compile=True, metrics={}, perf={},
                              key=lambda stream: jax.random.PRNGKey(int(stream)))
  spec.after_training(ctx)
  m = ctx.metrics
  assert set(m) == {'eval/sample_plausible', 'eval/sample_copied', 'samples/images',
                    'samples/levels'}
  assert 0 <= m['eval/sample_plausible'] <= 1 and m['samples/levels'] == 4
  grid = np.asarray(m['samples/images'])
  assert grid.shape == (16, 8, 8) and set(np.unique(grid)) <= set(range(4))
  assert all(isinstance(v, int) for v in m['samples/images'][0][0])  # JSON-ready
  assert ctx.perf['sample_compile_s'] > 0


# ---------------------------------------------------------------------------------------
# The report section, from fabricated records (no training).

def _record(arch, seed, bits, *, status='ok', levels=4, images=None):
  cell = Cell(arch, 'pixels', 'small', seed, {'levels': levels})
  rng = np.random.default_rng(seed)
  if images is None:  # a bar whose position depends on the architecture, and noise
    images = np.zeros((16, 8, 8), int)
    images[:, :, len(arch) % 8] = levels - 1
    images[rng.random((16, 8, 8)) < 0.1] = 1
  m = {}
  if status == 'ok':
    m = {'eval/bits_per_dim': bits, 'eval/loss': bits * math.log(2), 'eval/accuracy': 0.7,
         'baseline/eval/bits_per_dim': 1.6, 'baseline/position/bits_per_dim': 1.15,
         'baseline/eval/sample_plausible': 0.0, 'baseline/position/sample_plausible': 0.01,
         'eval/sample_plausible': 0.5 + 0.1 * seed, 'eval/sample_copied': 0.0,
         'samples/images': np.asarray(images).tolist(), 'samples/levels': levels,
         'solved': bits <= 0.96}
  return {'schema': 4, 'run_id': 'r', 'cell_id': cell.digest, 'suite': 'test', 'arch': arch,
          'task': 'pixels', 'size': 'small', 'seed': seed, 'status': status,
          'error': None if status == 'ok' else 'boom',
          'config': {'cell': cell.to_dict(), 'task': {'levels': levels},
                     'task_spec': {'kind': 'per_token', 'length': 64,
                                   'metric': 'eval/bits_per_dim', 'higher_is_better': False,
                                   'solved': 0.96}},
          'metrics': m, 'perf': {}, 'curves': {}, 'env': {}}


def _records():
  return [_record('tcn', 0, 0.9), _record('tcn', 1, 0.92), _record('lstm', 0, 1.0),
          _record('lstm', 1, 1.02), _record('decoder', 0, 1.1, status='error')]


def test_section_table_has_baselines_threshold_and_intervals():
  md = '\n\n'.join(image_samples.markdown(_records()))
  assert md.startswith(f'## {image_samples.HEADING}')
  assert '### Image generation: pixels' in md
  assert '| arch | seeds | bits/dim ↓ | plausible samples ↑ | copied samples ↓ |' in md
  assert '| *memoryless (one distribution for every pixel)* |  | 1.6 | 0.000 |  |' in md
  assert '| *per position (a distribution per pixel position)* |  | 1.15 | 0.010 |  |' in md
  assert '| *context model (solved at)* |  | 0.96 |  |  |' in md
  assert '| tcn | 2 | 0.91 [' in md and '✓' in md.split('| tcn |')[1].split('\n')[0]
  assert '| decoder | 0 | (error) |' in md
  assert image_samples.markdown([{**_record('lstm', 0, 1.0), 'metrics': {}}]) == []


def test_section_draws_a_grid_per_architecture(tmp_path):
  records = _records()
  written = image_samples.write_plots(tmp_path, records)
  assert [p.name for p in written] == ['samples_pixels.png']
  assert written[0].read_bytes().startswith(PNG)
  with Image.open(written[0]) as image:
    gray = np.asarray(image.convert('L'), float)
  assert gray.shape[1] > 1.4 * gray.shape[0]  # two panels side by side (tcn, lstm)
  assert gray.std() > 30  # black bars on white, not a blank canvas
  # One square of 4 x 4 images with one-pixel gaps (NaN where the gaps are).
  mosaic = image_samples._mosaic(records[0]['metrics']['samples/images'])
  assert mosaic.shape == (35, 35) and np.isnan(mosaic[8]).all() and np.isnan(mosaic[:, 8]).all()
  np.testing.assert_array_equal(mosaic[:8, :8], records[0]['metrics']['samples/images'][0])
  # Runs that vary the levels get one picture per column, named by it.
  two = [_record('tcn', 0, 0.9, levels=2), _record('tcn', 0, 0.5, levels=4)]
  names = sorted(p.name for p in image_samples.write_plots(tmp_path, two))
  assert names == ['samples_pixels_levels=2.png', 'samples_pixels_levels=4.png']


def test_report_html_shows_the_grid(tmp_path):
  from archbench.benchmarks.results import records as records_lib
  for r in _records():
    records_lib.append_record(tmp_path / 'results.jsonl', r)
  report.write_summaries(tmp_path, plots=True)
  summary = (tmp_path / 'summary.md').read_text()
  assert f'## {image_samples.HEADING}' in summary
  assert 'alt="samples_pixels.png"' in (tmp_path / 'report.html').read_text()
  csv = (tmp_path / 'summary.csv').read_text()
  assert 'samples/images' not in csv.splitlines()[0]  # lists stay in results.jsonl
