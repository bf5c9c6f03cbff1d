"""TFDS dataset tasks (data/tfds_tasks.py), offline and without TensorFlow.

Two kinds of data stand in for the real downloads:
* tests/fixtures/tfds: tiny datasets prepared by the real TFDS builders from known raw
  files (tests/fixtures/make_tfds_fixtures.py): array_record files with PNG images, read
  here exactly as prepared data is read at run time;
* tfds.testing.mock_data (MockPolicy.USE_CODE): random examples behind tfds.data_source.

Every test runs with the network blocked (sockets refuse to connect or resolve).
"""
import dataclasses
import json
import math
import os
import pathlib
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from archbench import data
from archbench.benchmarks.harness import runner, suite
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.progress import Progress
from archbench.data import digits, tfds_tasks

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / 'tests' / 'fixtures'
sys.path.insert(0, str(FIXTURES))
import tfds_fixture_data as raw  # noqa: E402  (the fixtures' raw data, no TensorFlow)

# Has mnist, cifar10, imdb, shakespeare, speech_commands (not fashion_mnist).
PREPARED = FIXTURES / 'tfds'
# Every task read from prepared data is a TFDS one, but spoken_digits (synthesised by
# espeak-ng; tests/test_speech.py).
TFDS_TASKS = [n for n in data.names() if data.get(n).reads_data and n != 'spoken_digits']
TASK_DATASET = {'mnist': 'mnist', 'fashion_mnist': 'fashion_mnist', 'cifar10': 'cifar10',
                'smnist': 'mnist', 'pmnist': 'mnist', 'scifar': 'cifar10', 'imdb': 'imdb',
                'shakespeare': 'shakespeare', 'pixels_mnist': 'mnist',
                'speech_commands': 'speech_commands'}
TINY = TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, steps_per_dispatch=2,
                   eval_batch_size=32)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
  """Nothing here may reach the network: connecting or resolving a name raises."""
  def refuse(*args, **kwargs):
    raise OSError('network access in an offline test')
  monkeypatch.setattr(socket.socket, 'connect', refuse)
  monkeypatch.setattr(socket, 'create_connection', refuse)
  monkeypatch.setattr(socket, 'getaddrinfo', refuse)


@pytest.fixture
def prepared(monkeypatch):
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(PREPARED))


@pytest.fixture
def empty_dir(monkeypatch, tmp_path):
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(tmp_path))
  return tmp_path


def _draw(task, key, batch_size):
  return {k: np.asarray(v) for k, v in jax.jit(task.train_batch, static_argnums=1)(
      key, batch_size).items()}


def _rows(a):
  return {bytes(r) for r in np.ascontiguousarray(a).reshape(len(a), -1)}


def test_registry_has_the_tfds_tasks():
  assert TFDS_TASKS == list(TASK_DATASET)
  assert set(TASK_DATASET.values()) == set(tfds_tasks.DATASETS)


# ---------------------------------------------------------------------------------------
# Not prepared: one line, where it looked, the command that prepares it, at once.

@pytest.mark.parametrize('task', TFDS_TASKS)
def test_not_prepared_fails_fast_in_one_line(task, empty_dir):
  dataset = TASK_DATASET[task]
  start = time.perf_counter()
  with pytest.raises(tfds_tasks.NotPrepared) as e:
    data.build(task)
  elapsed = time.perf_counter() - start
  # A stated requirement (TFDS itself retries a download for ~200 s offline); generous.
  assert elapsed < 10, elapsed
  message = str(e.value)
  assert '\n' not in message
  expected_dir = tfds_tasks.DATASETS[dataset].path(empty_dir)
  assert str(expected_dir / 'dataset_info.json') in message
  assert f'archbench data prepare {dataset} --data_dir {empty_dir}' in message
  assert 'not prepared' in message and tfds_tasks.ENV_VAR in message


def test_dataset_in_a_format_without_random_access_is_refused(tmp_path):
  path = tfds_tasks.DATASETS['mnist'].path(tmp_path)
  path.mkdir(parents=True)
  (path / 'dataset_info.json').write_text(json.dumps({'fileFormat': 'tfrecord'}))
  with pytest.raises(tfds_tasks.NotPrepared) as e:
    tfds_tasks.prepared_dir('mnist', tmp_path)
  assert 'tfrecord' in str(e.value) and 'archbench data prepare mnist' in str(e.value)
  (path / 'dataset_info.json').write_text(json.dumps({'fileFormat': 'array_record'}))
  assert tfds_tasks.prepared_dir('mnist', tmp_path) == path


def test_data_dir_resolution(monkeypatch, tmp_path):
  monkeypatch.delenv(tfds_tasks.ENV_VAR, raising=False)
  monkeypatch.delenv('TFDS_DATA_DIR', raising=False)
  monkeypatch.setenv('HOME', str(tmp_path))
  assert tfds_tasks.data_dir() == tmp_path / 'tensorflow_datasets'
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'tfds'))
  assert tfds_tasks.data_dir() == tmp_path / 'tfds'
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(tmp_path / 'ours'))
  assert tfds_tasks.data_dir() == tmp_path / 'ours'
  assert tfds_tasks.data_dir(tmp_path / 'flag') == tmp_path / 'flag'
  tfds_tasks.use_data_dir(tmp_path / 'cli')  # what --data_dir does, for worker processes too
  assert tfds_tasks.data_dir() == tmp_path / 'cli'


@pytest.mark.parametrize('task', TFDS_TASKS)
def test_spec_needs_no_data(task, empty_dir):
  spec = data.spec_of(task)
  assert spec.name == task and spec.baselines == {}
  cell = Cell('lstm' if spec.image_shape is None else 'cnn', task, 'tiny')
  arch, config, built, model = runner.prepare(cell, build_task=False)  # no data read
  assert built is None and model is not None
  with pytest.raises(tfds_tasks.NotPrepared):
    runner.prepare(cell)


def test_specs_match_the_built_tasks(prepared):
  for task in TFDS_TASKS:
    if task == 'fashion_mnist':
      continue  # not among the fixtures
    if task == 'pixels_mnist':
      continue  # its threshold comes from the data too: tests/test_pixels.py
    params = {'length': 16} if task in ('imdb', 'shakespeare') else {}
    spec, built = data.spec_of(task, **params), data.build(task, **params).spec
    assert built.baselines and set(built.baselines) <= {'eval/accuracy', 'eval/loss',
                                                        'eval/bits_per_char'}
    assert dataclasses.replace(built, baselines={}) == spec, task


# ---------------------------------------------------------------------------------------
# Reading prepared array_record data without TensorFlow.

def _mnist_raw(split):
  images, labels = raw.mnist_like(split, raw.MNIST_SIZES[split])
  return images[..., None], labels.astype(np.int32)


def _cifar_raw(split):
  records = raw.cifar_like(split, raw.CIFAR_SIZES[split])
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # channel-major
  return images, records[:, 0].astype(np.int32)


def _by_row(images, labels):
  return dict(zip((bytes(r) for r in images.reshape(len(images), -1)), labels.tolist()))


@pytest.mark.parametrize('task,source', [('mnist', _mnist_raw), ('cifar10', _cifar_raw)])
def test_images_decode_to_the_prepared_pixels(task, source, prepared):
  t = data.build(task)
  assert 'tensorflow' not in sys.modules
  train_x, train_y = source('train')
  test_x, test_y = source('test')
  # TFDS stores examples in its own (fixed) order: compare image -> label maps.
  assert t.eval_data['inputs'].dtype == np.float32
  got = np.round(t.eval_data['inputs'] * 255).astype(np.uint8)
  assert _by_row(got, t.eval_data['targets']) == _by_row(test_x, test_y)
  assert t.spec.image_shape == test_x.shape[1:]
  drawn = _draw(t, jax.random.PRNGKey(0), 64)
  table = _by_row(train_x, train_y)
  for image, label in zip(np.round(drawn['inputs'] * 255).astype(np.uint8), drawn['targets']):
    assert table[bytes(image.reshape(-1))] == label
  # TFDS's splits are disjoint, and the task keeps them apart.
  assert not _rows(got) & _rows(train_x)


def test_smnist_is_the_row_major_pixel_sequence(prepared):
  images, seq = data.build('mnist'), data.build('smnist')
  x = images.eval_data['inputs']
  assert seq.spec.length == 784 and seq.spec.feature_dim == 1 and seq.spec.image_shape is None
  assert seq.eval_data['inputs'].shape == (len(x), 784, 1)
  np.testing.assert_array_equal(seq.eval_data['inputs'], x.reshape(len(x), 784, 1))
  np.testing.assert_array_equal(seq.eval_data['targets'], images.eval_data['targets'])
  # Step t is pixel (t // 28, t % 28).
  np.testing.assert_array_equal(seq.eval_data['inputs'][:, 30, 0], x[:, 1, 2, 0])
  assert seq.spec.baselines == images.spec.baselines


def test_pmnist_is_one_seeded_permutation_for_train_and_test(prepared):
  seq, perm = data.build('smnist'), data.build('pmnist')
  order = np.random.RandomState(0).permutation(784)
  np.testing.assert_array_equal(perm.eval_data['inputs'][:, :, 0],
                                seq.eval_data['inputs'][:, order, 0])
  # The same permutation on the training side: every drawn row is a permuted train image.
  train_x, train_y = _mnist_raw('train')
  permuted_train = _by_row(train_x.reshape(len(train_x), 784)[:, order], train_y)
  drawn = _draw(perm, jax.random.PRNGKey(1), 64)
  for row, label in zip(np.round(drawn['inputs'][:, :, 0] * 255).astype(np.uint8),
                        drawn['targets']):
    assert permuted_train[bytes(row)] == label
  # Fixed by permutation_seed, not by the run's seed.
  np.testing.assert_array_equal(data.build('pmnist', seed=7).eval_data['inputs'],
                                perm.eval_data['inputs'])
  other = data.build('pmnist', permutation_seed=1).eval_data['inputs']
  assert not np.array_equal(other, perm.eval_data['inputs'])
  np.testing.assert_array_equal(np.sort(other, axis=1), np.sort(perm.eval_data['inputs'], axis=1))


def test_scifar_grayscale_is_itu_601_luma():
  # Pure red, green and blue, and one mixed pixel, worked out by hand.
  pixels = np.array([[[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]], np.uint8)
  expected = [0.2989, 0.5870, 0.1140, (0.2989 * 10 + 0.5870 * 20 + 0.1140 * 30) / 255]
  assert expected[3] == pytest.approx(18.149 / 255)
  out = tfds_tasks.scifar_inputs(pixels)
  assert out.shape == (1, 4, 1) and out.dtype == np.float32
  np.testing.assert_allclose(out[0, :, 0], expected, rtol=1e-6)
  # The same formula on device (training batches) as in numpy (held-out set).
  np.testing.assert_allclose(np.asarray(jax.jit(tfds_tasks.scifar_inputs)(pixels)), out,
                             rtol=1e-6)


def test_scifar_reads_cifar_as_1024_gray_steps(prepared):
  t = data.build('scifar')
  assert t.spec.length == 1024 and t.spec.feature_dim == 1
  test_x, test_y = _cifar_raw('test')
  gray = ((test_x[..., 0] * 0.2989 + test_x[..., 1] * 0.5870 + test_x[..., 2] * 0.1140)
          / 255).reshape(len(test_x), 1024)
  # Each held-out row is the grayscale of exactly one raw test image, with its label.
  distance = np.abs(t.eval_data['inputs'][:, None, :, 0] - gray[None]).max(axis=-1)
  match = distance < 1e-6
  assert np.all(match.sum(axis=1) == 1)
  np.testing.assert_array_equal(test_y[match.argmax(axis=1)], t.eval_data['targets'])


# ---------------------------------------------------------------------------------------
# IMDB bytes.

def test_byte_encoding_round_trips_pads_and_truncates():
  texts = ['Caf\u00e9 \u263a'.encode(), b'', b'x' * 20]
  tokens = tfds_tasks.encode_bytes(texts, 12)
  assert tokens.shape == (3, 12) and tokens.dtype == np.int16
  assert len(texts[0]) == 9  # 6 characters, two of them multi-byte: bytes, not characters
  np.testing.assert_array_equal(tokens[0, :9], np.frombuffer(texts[0], np.uint8) + 1)
  np.testing.assert_array_equal(tokens[0, 9:], tfds_tasks.BYTE_PAD)
  np.testing.assert_array_equal(tokens[1], tfds_tasks.BYTE_PAD)
  np.testing.assert_array_equal(tokens[2], ord('x') + 1)  # truncated at 12
  for text, row in zip(texts, tokens):
    assert bytes((row[row != tfds_tasks.BYTE_PAD] - 1).astype(np.uint8)) == text[:12]
  assert tfds_tasks.encode_bytes([bytes([255, 0])], 2).tolist() == [[256, 1]]  # all 257 ids


def test_imdb_reads_the_reviews_as_bytes(prepared):
  length = 40
  t = data.build('imdb', length=length)
  assert t.spec.vocab_size == tfds_tasks.BYTE_VOCAB and t.spec.length == length
  label_id = {'neg': 0, 'pos': 1}  # TFDS's ClassLabel names
  expected = {text.strip().encode()[:length]: label_id[label]  # the builder strips reviews
              for label, texts in raw.IMDB['test'].items() for text in texts}
  got = {bytes((row[row > 0] - 1).astype(np.uint8)): int(y)
         for row, y in zip(t.eval_data['inputs'], t.eval_data['targets'])}
  assert got == expected
  train = {text.strip().encode()[:length] for texts in raw.IMDB['train'].values() for text in texts}
  drawn = _draw(t, jax.random.PRNGKey(0), 64)
  assert drawn['inputs'].dtype == np.int32
  drawn_texts = {bytes((row[row > 0] - 1).astype(np.uint8)) for row in drawn['inputs']}
  assert drawn_texts <= train and not drawn_texts & set(expected)
  # The validation reviews come out of train (a tenth, at least one), never drawn for
  # training, and the test set is all of test.
  labels = {text.strip().encode()[:length]: label_id[label]
            for label, texts in raw.IMDB['train'].items() for text in texts}
  val_texts = {bytes((row[row > 0] - 1).astype(np.uint8)) for row in t.val_data['inputs']}
  assert t.val_size == 1 and val_texts <= train and not val_texts & (drawn_texts | set(expected))
  assert t.val_data['targets'].tolist() == [labels[text] for text in val_texts]
  rest = np.array([y for text, y in labels.items() if text not in val_texts])
  assert t.spec.baselines == digits.class_baselines(rest, t.eval_data['targets'], 2)
  subset = data.build('imdb', length=length, eval_size=4)
  assert subset.eval_size == 4 and _rows(subset.eval_data['inputs']) <= _rows(t.eval_data['inputs'])
  # A padded task: each review's length in bytes rides along, and pad_to only pads.
  real = {bytes(text): len(text) for text in expected}
  assert [real[bytes((row[row > 0] - 1).astype(np.uint8))] for row in t.eval_data['inputs']] \
      == t.eval_data['lengths'].tolist() and t.spec.padded
  assert drawn['lengths'].tolist() == (drawn['inputs'] > 0).sum(1).tolist()
  longer = data.build('imdb', length=length, pad_to=64)
  # The spec without the data (no data-derived baselines) is the built one's.
  assert dataclasses.replace(longer.spec, baselines={}) == data.spec_of('imdb', length=length,
                                                                        pad_to=64)
  assert longer.spec.length == 64 and longer.spec.longest_example == length
  np.testing.assert_array_equal(longer.eval_data['inputs'][:, :length], t.eval_data['inputs'])
  np.testing.assert_array_equal(longer.eval_data['lengths'], t.eval_data['lengths'])


# ---------------------------------------------------------------------------------------
# Shakespeare windows.

def _shakespeare_splits():
  text = raw.shakespeare_text()
  i = int(len(text) * 0.9)  # TFDS's 90/5/5 split by position
  j = i + int((len(text) - i) * 0.5)
  return text[:i].encode(), text[j:].encode()


def test_shakespeare_windows_predict_the_next_character(prepared):
  length = 24
  t = data.build('shakespeare', length=length)
  spec = t.spec
  assert spec.kind == 'per_token' and spec.causal and spec.metric == 'eval/bits_per_char'
  assert not spec.higher_is_better
  train_text, test_text = _shakespeare_splits()
  drawn = _draw(t, jax.random.PRNGKey(0), 128)
  x, y = drawn['inputs'], drawn['targets']
  assert x.shape == y.shape == (128, length)
  np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one
  np.testing.assert_array_equal(drawn['loss_mask'], 1)
  for row_x, row_y in zip(x, y):
    window = bytes(row_x.astype(np.uint8)) + bytes([row_y[-1]])
    assert window in train_text and window not in test_text
  # Held out: consecutive windows of the test text, none of which occurs in training.
  ex, ey = t.eval_data['inputs'], t.eval_data['targets']
  n = (len(test_text) - 1) // length
  assert ex.shape == (n, length)
  assert bytes(ex.reshape(-1).astype(np.uint8)) == test_text[:n * length]
  np.testing.assert_array_equal(ey.reshape(-1), np.frombuffer(test_text[1:n * length + 1], np.uint8))
  assert not any(bytes(r.astype(np.uint8)) in train_text for r in ex)


def test_unigram_baselines_by_hand():
  train = np.frombuffer(b'aab', np.uint8)
  targets = np.frombuffer(b'ab', np.uint8)
  out = tfds_tasks.unigram_baselines(train, targets)
  # Add-one smoothing over 256 byte values: a -> 3 / 259, b -> 2 / 259.
  assert out['eval/loss'] == pytest.approx(-(math.log(3 / 259) + math.log(2 / 259)) / 2)
  assert out['eval/accuracy'] == 0.5
  # Unseen in training: finite.
  assert math.isfinite(tfds_tasks.unigram_baselines(train, np.frombuffer(b'z', np.uint8))['eval/loss'])


def test_shakespeare_baselines_are_those_of_the_text(prepared):
  t = data.build('shakespeare', length=24)
  train_text, _ = _shakespeare_splits()
  # The last tenth of the train text is the validation text: consecutive windows of it.
  cut = len(train_text) - round(0.1 * len(train_text))
  train_text, val_text = train_text[:cut], train_text[cut:]
  first = t.val_data['inputs'][0].astype(np.uint8).tobytes()
  assert first == val_text[:24] and t.val_size == (len(val_text) - 1) // 24
  targets = t.eval_data['targets'].reshape(-1)
  counts = np.bincount(np.frombuffer(train_text, np.uint8), minlength=256) + 1
  loss = -np.mean(np.log(counts[targets] / counts.sum()))
  assert t.spec.baselines['eval/loss'] == pytest.approx(loss, rel=1e-12)
  assert t.spec.baselines['eval/bits_per_char'] == pytest.approx(loss / math.log(2), rel=1e-12)
  assert t.spec.baselines['eval/accuracy'] == pytest.approx(
      np.bincount(targets).max() / targets.size)


def test_class_baselines_by_hand():
  out = digits.class_baselines(np.array([0, 0, 0, 1]), np.array([1, 1, 0]), 2)
  assert out['eval/accuracy'] == pytest.approx(2 / 3)  # the test set's majority share
  assert out['eval/loss'] == pytest.approx(-(2 * math.log(1 / 4) + math.log(3 / 4)) / 3)


# ---------------------------------------------------------------------------------------
# Determinism.

@pytest.mark.parametrize('task,params', [('pmnist', {}), ('imdb', {'length': 40}),
                                         ('shakespeare', {'length': 24})])
def test_same_data_every_time(task, params, prepared):
  a, b = data.build(task, **params), data.build(task, seed=3, **params)
  for k in a.eval_data:
    np.testing.assert_array_equal(a.eval_data[k], b.eval_data[k])
  assert a.spec.baselines == b.spec.baselines
  key = jax.random.PRNGKey(5)
  x, y = _draw(a, key, 16), _draw(b, key, 16)
  for k in x:
    np.testing.assert_array_equal(x[k], y[k])
  assert not np.array_equal(x['inputs'], _draw(a, jax.random.PRNGKey(6), 16)['inputs'])


# ---------------------------------------------------------------------------------------
# End to end through the harness.

def _pretend_prepared(root, dataset):
  """The marker prepared_dir looks for, for data that mock_data serves."""
  path = tfds_tasks.DATASETS[dataset].path(root)
  path.mkdir(parents=True)
  (path / 'dataset_info.json').write_text(json.dumps({'fileFormat': 'array_record'}))


def test_mock_data_through_a_training_cell(empty_dir):
  import tensorflow_datasets as tfds
  _pretend_prepared(empty_dir, 'fashion_mnist')
  cell = Cell('cnn', 'fashion_mnist', 'tiny', train=TINY, fast_compile=True)
  with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
    record = runner.run_cell(cell, suite='test', run_id='test', env={})
  assert record['status'] == 'ok', record['error']
  metrics = record['metrics']
  assert 0 <= metrics['eval/accuracy'] <= 1 and math.isfinite(metrics['eval/loss'])
  assert 'baseline/eval/accuracy' in metrics and 'baseline/eval/loss' in metrics
  assert record['config']['task']['tfds'] == 'fashion_mnist:3.0.1'


@pytest.mark.parametrize('arch,task,params', [('lstm', 'shakespeare', {'length': 16}),
                                               ('transformer', 'imdb', {'length': 32})])
def test_prepared_data_through_a_training_cell(arch, task, params, prepared):
  cell = Cell(arch, task, 'tiny', task_params=params, train=TINY, fast_compile=True)
  record = runner.run_cell(cell, suite='test', run_id='test', env={})
  assert record['status'] == 'ok', record['error']
  headline = record['config']['task_spec']['metric']
  assert math.isfinite(record['metrics'][headline])
  assert f'baseline/{headline}' in record['metrics']


def test_missing_dataset_is_an_error_cell_and_the_run_goes_on(empty_dir, tmp_path):
  cells = [Cell('lstm', 'smnist', 'tiny', train=TINY),
           Cell('rnn', 'adding', 'tiny', task_params={'length': 4, 'eval_size': 16},
                       train=TINY)]
  start, failed_at = time.perf_counter(), []

  def log(line):
    if ': error: NotPrepared' in line:
      failed_at.append(time.perf_counter() - start)
  records = suite.run_suite(cells, tmp_path / 'run', suite='mixed',
                            progress=Progress(len(cells), log=log))
  missing, ok = records
  assert missing['status'] == 'error' and ok['status'] == 'ok', ok['error']
  assert missing['error'].startswith('NotPrepared: ') and '\n' not in missing['error']
  assert 'archbench data prepare mnist' in missing['error'] and str(empty_dir) in missing['error']
  assert len(failed_at) == 1 and failed_at[0] < 10  # stated fail-fast requirement; generous
  assert math.isfinite(ok['metrics']['eval/mse'])


# ---------------------------------------------------------------------------------------
# The command line.

def _archbench(*args, timeout=120):
  env = {k: v for k, v in os.environ.items()
         if k not in (tfds_tasks.ENV_VAR, 'TFDS_DATA_DIR')}
  env.update(JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, '-m', 'benchmarks', *map(str, args)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_prepare_reports_a_prepared_dataset():
  proc = _archbench('data', 'prepare', 'imdb', '--data_dir', PREPARED)
  assert proc.returncode == 0, proc.stderr
  assert 'imdb: already prepared' in proc.stdout and 'train 8, test 6' in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(tfds_tasks.importlib.util.find_spec('tensorflow') is not None,
                    reason='TensorFlow is installed: preparing would try to download')
def test_cli_prepare_without_tensorflow_names_the_extra(tmp_path):
  proc = _archbench('data', 'prepare', 'mnist', '--data_dir', tmp_path)
  assert proc.returncode == 1
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr
  assert 'tensorflow' in lines[0] and ".[prepare]" in lines[0]


@pytest.mark.slow
def test_cli_run_offline_records_the_missing_dataset(tmp_path):
  """The `real` suite's cell for a dataset that is not there: an error record, exit 1,
  within the subprocess timeout (TFDS's own download would retry for ~200 s)."""
  out = tmp_path / 'run'
  proc = _archbench('run', '--suite', 'real', '--tasks', 'scifar', '--archs', 'lru',
                    '--data_dir', tmp_path / 'nothing', '--out', out, timeout=60)
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  (record,) = [json.loads(line) for line in (out / 'results.jsonl').read_text().splitlines()]
  assert record['status'] == 'error' and 'archbench data prepare cifar10' in record['error']
  assert '0 ok, 1 failed' in proc.stdout
