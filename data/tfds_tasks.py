"""Real datasets through TFDS, read without TensorFlow.

Tasks: `mnist`, `fashion_mnist`, `cifar10` (image classification); `smnist`, `pmnist`,
`scifar` (the same images as pixel sequences, for sequence models); `imdb` (byte-level
review sentiment, LRA's Text task); `shakespeare` (character-level language modelling).
`speech_commands` is read here too, and made a task in data/speech.py.

Data directory: the CLI's `--data_dir`, else `$ARCHBENCH_DATA_DIR`, else TFDS's own
`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`. A dataset lives there as TFDS prepares it
(`<dir>/mnist/3.0.1/...`) in the array_record format, which `tfds.data_source` reads with
random access and without TensorFlow (images are PNG, decoded by PIL).

Fail fast: before TFDS is imported, `prepared_dir` checks that the dataset's directory
holds a `dataset_info.json` in a random-access format, and otherwise raises NotPrepared: one
line naming where it looked and the command that prepares it. Nothing on the run path
downloads or asks the network (`download=False`, `try_gcs=False`); an unprepared dataset
costs milliseconds, not TFDS's minutes of download retries.

Preparing (`archbench data prepare NAME`, see `prepare`) runs the real TFDS builder with
`file_format='array_record'` on a connected machine. It needs TensorFlow, which is therefore
an optional extra (`pip install -e '.[prepare]'`): the builders read their raw downloads with
`tf.io.gfile`, and `tfds.features.Image` encodes numpy images to PNG with
`tf.image.encode_png`. Reading needs neither. A dataset with audio (speech_commands) is read
from its array_record files directly (`read_records`): `tfds.features.Audio` needs
TensorFlow merely to be constructed, so `tfds.data_source` cannot open it without it.

Each split is read once per process into numpy arrays (`read_split` is cached); tasks keep
compact copies on device (uint8 pixels, int16 bytes) and convert per training batch.
Dataset versions are pinned (DATASETS) and recorded with every result.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import math
import os
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from archbench.data.digits import image_spec, labelled_task, pixel_permutation
from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec, pad_further, padded_spec

ENV_VAR = 'ARCHBENCH_DATA_DIR'
RANDOM_ACCESS_FORMATS = ('array_record', 'parquet')  # what tfds.data_source can read


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A TFDS dataset at a pinned version (and config)."""
  tfds_name: str
  version: str
  config: str | None = None

  @property
  def full_name(self) -> str:
    """TFDS's name for it, e.g. 'imdb_reviews/plain_text:1.0.0'."""
    config = f'/{self.config}' if self.config else ''
    return f'{self.tfds_name}{config}:{self.version}'

  def path(self, root: pathlib.Path) -> pathlib.Path:
    """Where TFDS prepares it under the data directory."""
    return root.joinpath(self.tfds_name, *([self.config] if self.config else []), self.version)


# archbench's dataset names (for `archbench data prepare`) -> TFDS datasets.
DATASETS = {
    'mnist': Dataset('mnist', '3.0.1'),
    'fashion_mnist': Dataset('fashion_mnist', '3.0.1'),
    'cifar10': Dataset('cifar10', '3.0.2'),
    'imdb': Dataset('imdb_reviews', '1.0.0', 'plain_text'),
    'shakespeare': Dataset('tiny_shakespeare', '1.0.0'),
    'speech_commands': Dataset('speech_commands', '0.0.3'),
}


class NotPrepared(FileNotFoundError):
  """A dataset is missing from the data directory (or is in a format we cannot read)."""


class PrepareError(RuntimeError):
  """Preparing a dataset cannot start (e.g. TensorFlow is not installed)."""


def dataset(name: str) -> Dataset:
  if name not in DATASETS:
    raise KeyError(f'unknown dataset {name!r}; valid: {", ".join(DATASETS)}')
  return DATASETS[name]


def data_dir(path: str | os.PathLike | None = None) -> pathlib.Path:
  """The data directory: `path`, else $ARCHBENCH_DATA_DIR, else $TFDS_DATA_DIR, else
  ~/tensorflow_datasets (TFDS's default)."""
  chosen = (path or os.environ.get(ENV_VAR) or os.environ.get('TFDS_DATA_DIR')
            or '~/tensorflow_datasets')
  return pathlib.Path(chosen).expanduser().absolute()


def use_data_dir(path: str | os.PathLike) -> None:
  """Make `path` the data directory of this process and of the worker processes it
  starts (they inherit the environment): what the CLI's --data_dir does."""
  os.environ[ENV_VAR] = str(pathlib.Path(path).expanduser().absolute())


def prepared_dir(name: str, root: str | os.PathLike | None = None) -> pathlib.Path:
  """The directory of a prepared dataset. Raises NotPrepared, with a one-line message that
  says where it looked and how to prepare it, if it is missing or not random-access.

  Only looks at local files: no TFDS import, no network.
  """
  ds, root = dataset(name), data_dir(root)
  path = ds.path(root)
  info = path / 'dataset_info.json'
  prepare = f'archbench data prepare {name} --data_dir {root}'
  if not info.is_file():
    raise NotPrepared(
        f'dataset {name} (TFDS {ds.full_name}) is not prepared: no {info}. Prepare it with '
        f'`{prepare}` on a machine with internet access (elsewhere, then copy its '
        f'{ds.tfds_name}/ folder into {root}), or point --data_dir or ${ENV_VAR} at a '
        f'directory that has it')
  meta = json.loads(info.read_text())
  formats = [meta.get('fileFormat', 'tfrecord'), *meta.get('alternativeFileFormats', [])]
  if not set(formats) & set(RANDOM_ACCESS_FORMATS):
    raise NotPrepared(
        f'dataset {name} in {path} is in the {"/".join(formats)} format, which needs '
        f'TensorFlow to read; archbench reads array_record (or parquet). Move it away and '
        f'run `{prepare}`')
  return path


@functools.cache
def read_split(name: str, split: str, root: str) -> dict[str, Any]:
  """Every example of one split as columns: numpy arrays for tensors and labels, lists of
  bytes for text (and lists of arrays for tensors of several lengths). Read once per
  process (cached by name, split and directory): `read_columns`, remembered.

  Examples come in the order TFDS stored them, which is fixed by the prepared files.
  """
  return read_columns(name, split, root)


def read_columns(name: str, split: str, root: str) -> dict[str, Any]:
  """read_split without remembering the columns: for a task that keeps a converted copy
  of its own (speech_commands keeps 8 kHz clips, not the 16 kHz ones it read)."""
  ds = dataset(name)
  path = prepared_dir(name, root)
  import tensorflow_datasets as tfds  # imported only once the data is known to be there
  features = json.loads((path / 'features.json').read_text()) if (
      path / 'features.json').is_file() else {}
  if _AUDIO in json.dumps(features):
    examples = read_records(path, ds, split, features)
  else:
    source = tfds.data_source(ds.full_name, split=split, data_dir=root, download=False,
                              try_gcs=False)
    n = len(source)
    try:
      examples = source.__getitems__(list(range(n)))  # batched reads, ~3x faster
    except TypeError:  # tfds.testing.mock_data's source (TFDS 4.9) reads one at a time only
      examples = [source[i] for i in range(n)]
  columns = {}
  for key in examples[0]:
    values = [e[key] for e in examples]
    if isinstance(values[0], (str, bytes)):
      columns[key] = [v.encode('utf-8') if isinstance(v, str) else v for v in values]
    else:
      arrays = [np.asarray(v) for v in values]
      # Variable-length tensors (audio clips) stay a list of arrays.
      columns[key] = np.stack(arrays) if len({a.shape for a in arrays}) == 1 else arrays
  return columns


_AUDIO = 'tensorflow_datasets.core.features.audio_feature.Audio'


def _stand_in(name: str, feature: dict):
  """A TensorFlow-free feature that decodes what `feature` (features.json) stored: an Audio
  feature (decoded when prepared, not lazily) is stored as a plain tensor of samples."""
  import tensorflow_datasets as tfds
  if 'audio' in feature:
    audio = feature['audio']
    if audio.get('lazyDecode') or audio.get('encoding', 'NONE') != 'NONE':
      raise NotPrepared(f'feature {name!r} is stored encoded (lazy_decode); archbench reads '
                        'audio stored as samples, as TFDS prepares it by default')
    shape = tuple(None if int(d) < 0 else int(d) for d in audio['shape']['dimensions'])
    return tfds.features.Tensor(shape=shape, dtype=np.dtype(audio['dtype']))
  if 'classLabel' in feature:
    return tfds.features.ClassLabel(num_classes=int(feature['classLabel']['numClasses']))
  raise NotPrepared(f'feature {name!r} of type {feature.get("pythonClassName")} has no '
                    'TensorFlow-free reader here')


def read_records(path: pathlib.Path, ds: Dataset, split: str, features: dict) -> list[dict]:
  """Every example of one split, read from its array_record shards in order and decoded
  with stand-ins for the stored features (_stand_in): for datasets tfds.data_source cannot
  open without TensorFlow."""
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordReader
  decoder = tfds.features.FeaturesDict(
      {k: _stand_in(k, f) for k, f in features['featuresDict']['features'].items()})
  meta = json.loads((path / 'dataset_info.json').read_text())
  info = next((s for s in meta.get('splits', []) if s['name'] == split), None)
  if info is None:
    raise NotPrepared(f'dataset {ds.tfds_name} in {path} has no split {split!r}')
  shards = len(info.get('shardLengths', []))
  examples = []
  for i in range(shards):
    reader = ArrayRecordReader(str(path / f'{ds.tfds_name}-{split}.array_record-'
                                          f'{i:05d}-of-{shards:05d}'))
    try:
      examples += [decoder.deserialize_example_np(r) for r in reader.read_all()]
    finally:
      reader.close()
  return examples


def _split(name: str, split: str) -> dict[str, Any]:
  return read_split(name, split, str(data_dir()))


def _images(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, H, W, C] and int32 labels [N] of one split."""
  columns = _split(name, split)
  return columns['image'], columns['label'].astype(np.int32)


def check_eval_size(task: str, eval_size: int | None) -> None:
  if eval_size is not None and eval_size < 1:
    raise ValueError(f'{task}: eval_size must be >= 1 (or None: the whole test split), '
                     f'got {eval_size}')


# Every TFDS task sets this share of its train split apart as its validation set (chosen by
# a fixed seed, the same for every run), and leaves the test split untouched.
VAL_FRACTION = 0.1


def check_val_fraction(task: str, val_fraction: float) -> None:
  if not 0 < val_fraction < 1:
    raise ValueError(f'{task}: val_fraction must be in (0, 1), got {val_fraction}')


def _labelled(spec: TaskSpec, params: dict, train, test, to_inputs, *, val_fraction: float,
              pad_id: int | None = None) -> Task:
  """labelled_task with `val_fraction` of the train split as the validation set."""
  check_val_fraction(spec.name, val_fraction)
  return labelled_task(spec, {**params, 'val_fraction': val_fraction}, train, test, to_inputs,
                       pad_id, val_count=max(1, int(round(len(train[1]) * val_fraction))))


def eval_subset(n: int, eval_size: int | None) -> np.ndarray:
  """Indices of the held-out examples: all n, or a fixed `eval_size` of them (the first of
  a permutation seeded by 0, whatever the run's seed), in stored order."""
  if eval_size is None or eval_size >= n:
    return np.arange(n)
  return np.sort(np.random.RandomState(0).permutation(n)[:eval_size])


def _test_images(name: str, eval_size: int | None) -> tuple[np.ndarray, np.ndarray]:
  images, labels = _images(name, 'test')
  keep = eval_subset(len(labels), eval_size)
  return images[keep], labels[keep]


def _text(name: str, split: str) -> np.ndarray:
  """All of a split's text, concatenated in stored order, as uint8 bytes [N]."""
  return np.frombuffer(b''.join(_split(name, split)['text']), np.uint8)


# ---------------------------------------------------------------------------------------
# Image classification: mnist, fashion_mnist, cifar10.

def _unit(x):
  """uint8 pixels -> float32 in [0, 1] (numpy or jax)."""
  return x.astype(np.float32) / 255.0


IMAGE_TASKS = {
    # name: (image shape, solved at accuracy, description)
    'mnist': ((28, 28, 1), 0.98, 'MNIST handwritten digits (TFDS), 28x28, 10 classes, accuracy'),
    'fashion_mnist': ((28, 28, 1), 0.90,
                      'Fashion-MNIST clothing (TFDS), 28x28, 10 classes, accuracy'),
    'cifar10': ((32, 32, 3), 0.80, 'CIFAR-10 (TFDS), 32x32 colour, 10 classes, accuracy'),
}


def _register_image_task(name: str, shape: tuple[int, int, int], solved: float,
                         description: str) -> None:
  def make_spec(eval_size: int | None = None, val_fraction: float = VAL_FRACTION) -> TaskSpec:
    check_eval_size(name, eval_size)
    return image_spec(name, shape, 10, solved)

  def make(seed: int = 0, eval_size: int | None = None,
           val_fraction: float = VAL_FRACTION) -> Task:
    """The TFDS train split trains, less `val_fraction` of it for validation; the test
    split (or `eval_size` of it) is the test set; pixels in [0, 1]."""
    del seed  # the split is TFDS's; training randomness comes from the harness
    return _labelled(make_spec(eval_size), {'tfds': DATASETS[name].full_name,
                                            'eval_size': eval_size},
                     _images(name, 'train'), _test_images(name, eval_size), _unit,
                     val_fraction=val_fraction)
  register(name, description, spec=make_spec)(make)


for _name, (_shape, _solved, _description) in IMAGE_TASKS.items():
  _register_image_task(_name, _shape, _solved, _description)


# ---------------------------------------------------------------------------------------
# Sequential forms: one pixel per step, for sequence models (Le et al. 2015; Bai et al.
# 2018; LRA's Image task). Inputs [B, T, 1] float in [0, 1]; image models cannot serve them.

def _pixel_sequence_spec(name: str, length: int, solved: float) -> TaskSpec:
  return TaskSpec(name=name, kind='classify', length=length, feature_dim=1, num_classes=10,
                  metric='eval/accuracy', higher_is_better=True, baselines={}, solved=solved)


def smnist_inputs(images):
  """[N, 28, 28, 1] uint8 -> [N, 784, 1] float: the pixels in row-major order."""
  return _unit(images.reshape(images.shape[0], -1, 1))


def smnist_spec(eval_size: int | None = None, val_fraction: float = VAL_FRACTION) -> TaskSpec:
  check_eval_size('smnist', eval_size)
  return _pixel_sequence_spec('smnist', 784, solved=0.98)


@register('smnist', 'sequential MNIST: the 784 pixels one per step, row-major (accuracy)',
          spec=smnist_spec)
def make_smnist(seed: int = 0, eval_size: int | None = None,
                val_fraction: float = VAL_FRACTION) -> Task:
  del seed
  return _labelled(smnist_spec(eval_size), {'tfds': DATASETS['mnist'].full_name,
                                            'eval_size': eval_size},
                   _images('mnist', 'train'), _test_images('mnist', eval_size),
                   smnist_inputs, val_fraction=val_fraction)


def pmnist_inputs(images, permutation: np.ndarray):
  """[N, 28, 28, 1] uint8 -> [N, 784, 1] float: row-major pixels in `permutation`'s order."""
  flat = images.reshape(images.shape[0], -1)[:, permutation]
  return _unit(flat[..., None])


def pmnist_spec(permutation_seed: int = 0, eval_size: int | None = None,
                val_fraction: float = VAL_FRACTION) -> TaskSpec:
  del permutation_seed
  check_eval_size('pmnist', eval_size)
  return _pixel_sequence_spec('pmnist', 784, solved=0.90)


@register('pmnist', 'permuted sequential MNIST: the 784 pixels in one fixed shuffled order',
          spec=pmnist_spec)
def make_pmnist(seed: int = 0, permutation_seed: int = 0, eval_size: int | None = None,
                val_fraction: float = VAL_FRACTION) -> Task:
  """One permutation, fixed by `permutation_seed` (not the run's seed), for every image of
  both splits: neighbouring steps are no longer neighbouring pixels."""
  del seed
  permutation = pixel_permutation(permutation_seed, size=784)
  return _labelled(pmnist_spec(permutation_seed, eval_size),
                   {'tfds': DATASETS['mnist'].full_name,
                    'permutation_seed': permutation_seed, 'eval_size': eval_size},
                   _images('mnist', 'train'), _test_images('mnist', eval_size),
                   functools.partial(pmnist_inputs, permutation=permutation),
                   val_fraction=val_fraction)


# ITU-R BT.601 luma, the weights of tf.image.rgb_to_grayscale that LRA's Image task uses.
LUMA = (0.2989, 0.5870, 0.1140)


def scifar_inputs(images):
  """[N, 32, 32, 3] uint8 RGB -> [N, 1024, 1] float grayscale in [0, 1], row-major.

  Elementwise multiply-adds rather than a dot product: accelerators may run float32
  matmuls at reduced precision."""
  x = images.astype(np.float32)
  gray = x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]
  return (gray / 255.0).reshape(images.shape[0], -1, 1)


def scifar_spec(eval_size: int | None = None, val_fraction: float = VAL_FRACTION) -> TaskSpec:
  check_eval_size('scifar', eval_size)
  return _pixel_sequence_spec('scifar', 1024, solved=0.60)


@register('scifar', 'sequential CIFAR-10: 1024 grayscale pixels one per step (LRA Image)',
          spec=scifar_spec)
def make_scifar(seed: int = 0, eval_size: int | None = None,
                val_fraction: float = VAL_FRACTION) -> Task:
  """LRA's Image task: CIFAR-10 in grayscale as a 1024-step sequence. LRA feeds the 8-bit
  gray levels as tokens; here they are real values in [0, 1] through the same dense adapter
  as the other pixel tasks."""
  del seed
  return _labelled(scifar_spec(eval_size), {'tfds': DATASETS['cifar10'].full_name,
                                            'eval_size': eval_size},
                   _images('cifar10', 'train'), _test_images('cifar10', eval_size),
                   scifar_inputs, val_fraction=val_fraction)


# ---------------------------------------------------------------------------------------
# IMDB reviews, byte level (LRA's Text task).

BYTE_PAD = 0  # token 0 pads; byte b is token b + 1
BYTE_VOCAB = 257


def encode_bytes(texts: list[bytes], length: int) -> np.ndarray:
  """[N, length] int16 tokens: byte b -> b + 1, truncated to `length`, padded at the end
  with BYTE_PAD."""
  out = np.full((len(texts), length), BYTE_PAD, np.int16)
  for i, text in enumerate(texts):
    row = np.frombuffer(text[:length], np.uint8)
    out[i, :len(row)] = row.astype(np.int16) + 1
  return out


def _int32(x):
  return x.astype(np.int32)


def imdb_spec(length: int = 1024, eval_size: int | None = None,
              pad_to: int | None = None, val_fraction: float = VAL_FRACTION) -> TaskSpec:
  if length < 1:
    raise ValueError(f'imdb: length must be >= 1, got {length}')
  check_eval_size('imdb', eval_size)
  return padded_spec(TaskSpec(name='imdb', kind='classify', length=length,
                              vocab_size=BYTE_VOCAB, num_classes=2, metric='eval/accuracy',
                              higher_is_better=True, baselines={}, solved=0.85, padded=True),
                     pad_to)


@register('imdb', 'IMDB reviews as bytes, positive or negative (LRA Text; accuracy)',
          spec=imdb_spec)
def make_imdb(seed: int = 0, length: int = 1024, eval_size: int | None = None,
              pad_to: int | None = None, val_fraction: float = VAL_FRACTION) -> Task:
  """Reviews as UTF-8 bytes truncated or padded at the end to `length` (LRA uses
  1000-4000; `pad_to` pads further); batches carry each review's length, so no model sees
  the padding. The 25,000 train reviews train and the 25,000 test reviews (or `eval_size`
  of them) evaluate. The unlabelled 'unsupervised' split is not used."""
  del seed
  spec = imdb_spec(length, eval_size)
  train, test = _split('imdb', 'train'), _split('imdb', 'test')
  keep = eval_subset(len(test['text']), eval_size)
  test_texts, test_labels = [test['text'][i] for i in keep], test['label'][keep].astype(np.int32)
  task = _labelled(spec, {'tfds': DATASETS['imdb'].full_name, 'length': length,
                          'eval_size': eval_size},
                   (encode_bytes(train['text'], length), train['label'].astype(np.int32)),
                   (encode_bytes(test_texts, length), test_labels), _int32,
                   pad_id=BYTE_PAD, val_fraction=val_fraction)
  return pad_further(task, pad_to, BYTE_PAD)


# ---------------------------------------------------------------------------------------
# Tiny Shakespeare, character level (Karpathy's char-rnn text; TFDS splits it 90/5/5 by
# position into train, validation and test).

def text_windows(text: np.ndarray, length: int) -> dict[str, np.ndarray]:
  """The held-out set: consecutive non-overlapping windows of `length` + 1 characters;
  inputs are the first `length`, targets the last `length` (the next character)."""
  n = (len(text) - 1) // length
  starts = np.arange(n) * length
  windows = text[starts[:, None] + np.arange(length + 1)].astype(np.int32)  # [N, T + 1]
  ones = np.ones((n, length), np.float32)
  return {'inputs': windows[:, :-1], 'targets': windows[:, 1:], 'loss_mask': ones,
          'metric_mask': ones}


def window_sampler(text: np.ndarray, length: int) -> Callable[[jax.Array, int], dict]:
  """Training batches: windows of `length` + 1 characters at uniform random offsets of
  the text (held on device), split into inputs and next-character targets."""
  on_device = jnp.asarray(text)
  span = jnp.arange(length + 1)

  def sample(key, batch_size):
    starts = jax.random.randint(key, (batch_size,), 0, len(text) - length)
    windows = on_device[starts[:, None] + span].astype(jnp.int32)  # [B, T + 1]
    ones = jnp.ones((batch_size, length), jnp.float32)
    return {'inputs': windows[:, :-1], 'targets': windows[:, 1:], 'loss_mask': ones,
            'metric_mask': ones}
  return sample


def unigram_baselines(train_text: np.ndarray, targets: np.ndarray,
                      vocab_size: int = 256) -> dict[str, float]:
  """An input-blind next-character predictor on `targets`: the accuracy of the best
  constant guess (the most frequent target's share) and the cross-entropy, in nats, of the
  training text's character frequencies (and in bits per character), add-one smoothed
  over the vocabulary so that a character unseen in training costs a finite loss."""
  counts = np.bincount(train_text, minlength=vocab_size) + 1.0
  prior = counts / counts.sum()
  flat = targets.ravel()
  loss = float(-np.mean(np.log(prior[flat])))
  return {'eval/loss': loss, 'eval/bits_per_char': loss / math.log(2),
          'eval/accuracy': float(np.bincount(flat).max() / flat.size)}


def shakespeare_spec(length: int = 256, val_fraction: float = VAL_FRACTION) -> TaskSpec:
  if length < 1:
    raise ValueError(f'shakespeare: length must be >= 1, got {length}')
  return TaskSpec(name='shakespeare', kind='per_token', length=length, vocab_size=256,
                  num_classes=256, causal=True, metric='eval/bits_per_char',
                  higher_is_better=False, baselines={}, solved=1.5 / math.log(2))


@register('shakespeare', 'Tiny Shakespeare, next-character prediction over windows of T '
          '(causal; bits per character)', spec=shakespeare_spec)
def make_shakespeare(seed: int = 0, length: int = 256,
                     val_fraction: float = VAL_FRACTION) -> Task:
  """Character (byte: the text is ASCII) language modelling: train on random windows of
  the train split, evaluate on consecutive windows of the test split, every position
  counted. The headline metric is bits per character (eval/bits_per_char = eval/loss, in
  nats, / ln 2); solved at 2.16 bits (1.5 nats), about what nanoGPT's 10.7M-parameter
  character model reaches on this text."""
  del seed
  spec = shakespeare_spec(length)
  check_val_fraction('shakespeare', val_fraction)
  train, test = _text('shakespeare', 'train'), _text('shakespeare', 'test')
  # The validation text is the end of the train split: consecutive text, as the test's.
  cut = len(train) - int(round(len(train) * val_fraction))
  train, val = train[:cut], train[cut:]
  if min(len(train), len(val), len(test)) < length + 1:
    raise ValueError(f'shakespeare: length {length} is longer than a split '
                     f'(train {len(train)}, validation {len(val)}, test {len(test)} '
                     'characters)')
  eval_data = text_windows(test, length)
  spec = dataclasses.replace(spec, baselines=unigram_baselines(train, eval_data['targets']))
  return Task(spec, {'tfds': DATASETS['shakespeare'].full_name, 'length': length,
                     'val_fraction': val_fraction},
              window_sampler(train, length), eval_data, val_data=text_windows(val, length))


# ---------------------------------------------------------------------------------------
# Preparing (needs network and TensorFlow; never on the run path).

def _missing_for_prepare(name: str = '') -> list[str]:
  """Modules that preparing needs and this environment lacks: TensorFlow (the builders read
  raw files with tf.io.gfile; images are encoded with tf.image.encode_png),
  importlib_resources (imported by TFDS while downloading, not declared by it) and, for
  speech_commands, pydub (its builder reads the WAV files with it)."""
  needed = ('tensorflow', 'importlib_resources') + (('pydub',) if name == 'speech_commands'
                                                    else ())
  return [m for m in needed if importlib.util.find_spec(m) is None]


def prepare(name: str, root: str | os.PathLike | None = None) -> tuple[pathlib.Path, bool]:
  """Download and prepare dataset `name` into the data directory as array_record.

  Returns (its directory, whether it was prepared now: False if it already was).
  """
  ds, root = dataset(name), data_dir(root)
  try:
    return prepared_dir(name, root), False
  except NotPrepared:
    pass
  missing = _missing_for_prepare(name)
  if missing:
    raise PrepareError(
        f'preparing {name} needs {" and ".join(missing)} (TFDS builders read their downloads '
        f'with tf.io.gfile and encode images with tf.image; pydub reads WAV); install the '
        f"extra with `pip install -e '.[prepare]'` (reading prepared data needs none of them)")
  import tensorflow as tf
  tf.config.set_visible_devices([], 'GPU')  # TF only reads and encodes here
  import tensorflow_datasets as tfds
  builder = tfds.builder(ds.full_name, data_dir=str(root), file_format='array_record')
  # From the source URLs, not TFDS's GCS mirror (which holds other file formats).
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return prepared_dir(name, root), True


def split_sizes(name: str, root: str | os.PathLike | None = None) -> dict[str, int]:
  """Examples per split of a prepared dataset, from its dataset_info.json."""
  meta = json.loads((prepared_dir(name, root) / 'dataset_info.json').read_text())
  return {s['name']: sum(int(n) for n in s.get('shardLengths', [])) for s in meta.get('splits', [])}
