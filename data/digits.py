"""The 8x8 handwritten digits bundled with scikit-learn (UCI ML digits): real data, offline.

1797 images, 10 classes. The train/validation/test split is fixed by `split_seed` (not the
run's seed), so every run and architecture is scored on the same held-out images; the
validation images (`val_fraction` of all) come out of the training part. `pdigits` is
the same task with the pixels in a fixed shuffled order (as permuted MNIST).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec, carve, real_lengths

DIGITS_SHAPE = (8, 8, 1)


@functools.cache
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """images [N, 8, 8, 1] float32 in [0, 1]; labels [N] int32."""
  from sklearn.datasets import load_digits  # bundled with scikit-learn, no download
  bunch = load_digits()
  images = (bunch.images / 16.0).astype(np.float32)[..., None]
  return images, bunch.target.astype(np.int32)


def split_indices(n: int, test_fraction: float, split_seed: int):
  """Disjoint (train, test) index arrays from a seeded permutation."""
  order = np.random.RandomState(split_seed).permutation(n)
  n_test = int(round(n * test_fraction))
  return np.sort(order[n_test:]), np.sort(order[:n_test])


def array_sampler(arrays: dict[str, np.ndarray], transform=None):
  """A jittable (key, batch_size) -> batch that draws examples uniformly (with
  replacement) from arrays held on device: no host I/O inside the training loop.

  `transform` (batch -> batch, traced on device) lets the arrays be stored compactly, e.g.
  uint8 pixels converted to float per batch instead of a 4x larger float copy on device.
  """
  on_device = {k: jnp.asarray(v) for k, v in arrays.items()}
  n = len(next(iter(arrays.values())))

  def sample(key, batch_size):
    idx = jax.random.randint(key, (batch_size,), 0, n)
    batch = {k: v[idx] for k, v in on_device.items()}
    return batch if transform is None else transform(batch)
  return sample


def class_baselines(train_labels: np.ndarray, test_labels: np.ndarray,
                    num_classes: int) -> dict[str, float]:
  """What an input-blind classifier reaches on a fixed split: the accuracy of the test
  set's majority class, and the cross-entropy of predicting the training class
  frequencies (the chance-level loss)."""
  majority = np.bincount(test_labels, minlength=num_classes).max() / len(test_labels)
  prior = np.bincount(train_labels, minlength=num_classes) / len(train_labels)
  prior_loss = -np.mean(np.log(prior[test_labels]))
  return {'eval/accuracy': float(majority), 'eval/loss': float(prior_loss)}


def image_spec(name: str, image_shape: tuple[int, int, int], num_classes: int,
               solved: float) -> TaskSpec:
  """An image classification spec, its baselines to be filled from the labels."""
  return TaskSpec(
      name=name, kind='classify', length=int(np.prod(image_shape[:2])),
      image_shape=tuple(image_shape), num_classes=num_classes,
      metric='eval/accuracy', higher_is_better=True, baselines={}, solved=solved)


def labelled_task(spec: TaskSpec, params: dict, train: tuple[np.ndarray, np.ndarray],
                  test: tuple[np.ndarray, np.ndarray], to_inputs=None,
                  pad_id: int | None = None, *, val_count: int,
                  split_seed: int = 0, train_examples: int | None = None) -> Task:
  """A classification task on fixed (inputs, labels) train and test arrays: `val_count`
  training examples (chosen by `split_seed`) set apart as the validation set, the spec's
  baselines computed from the labels, training batches drawn on device from the rest of
  the train arrays, the test arrays as the test set.

  `to_inputs` maps stored inputs to model inputs (e.g. uint8 pixels -> floats in [0, 1]).
  It must work on numpy and jax arrays alike: it runs on device on every training batch
  and once, in numpy, on the held-out set.

  `pad_id`: the stored inputs are end-padded sequences with this padding token; the
  batches then carry each example's `lengths` (a padded task, TaskSpec.padded).

  `train_examples`: train on only this many of the training examples (chosen by
  `split_seed`, the same ones for every run), the validation and test sets unchanged:
  what a claim about overfitting needs.
  """
  rest, held = carve(np.arange(len(train[1])), val_count, split_seed)
  if train_examples is not None:
    if not 0 < train_examples < len(rest):
      raise ValueError(f'{spec.name}: train_examples={train_examples}; valid: 1 to '
                       f'{len(rest) - 1} (the training part holds {len(rest)})')
    _, rest = carve(rest, train_examples, split_seed)
  val = (train[0][held], train[1][held])
  train = (train[0][rest], train[1][rest])
  spec = dataclasses.replace(spec, baselines=class_baselines(train[1], test[1], spec.num_classes))
  transform = None
  if to_inputs is not None:
    transform = lambda batch: {**batch, 'inputs': to_inputs(batch['inputs'])}
  def arrays(stored, labels, convert=True):
    inputs = stored if to_inputs is None or not convert else np.asarray(to_inputs(stored))
    lengths = {} if pad_id is None else {'lengths': real_lengths(stored, pad_id)}
    return {'inputs': inputs, 'targets': labels, **lengths}
  return Task(spec, params, array_sampler(arrays(*train, convert=False), transform),
              arrays(*test), val_data=arrays(*val))


def _image_task(name: str, images: np.ndarray, labels: np.ndarray, test_fraction: float,
                val_fraction: float, split_seed: int, params: dict,
                train_examples: int | None = None) -> Task:
  """A 10-class image task on the digits' train/validation/test split (fixed by
  split_seed); both fractions are of all images. `train_examples`: a reduced training
  set (labelled_task), named in the task's params only when given."""
  train, test = split_indices(len(labels), test_fraction, split_seed)
  reduced = {} if train_examples is None else {'train_examples': train_examples}
  return labelled_task(image_spec(name, DIGITS_SHAPE, 10, solved=0.95),
                       {'test_fraction': test_fraction, 'val_fraction': val_fraction,
                        'split_seed': split_seed, **params, **reduced},
                       (images[train], labels[train]), (images[test], labels[test]),
                       val_count=int(round(len(labels) * val_fraction)),
                       split_seed=split_seed, train_examples=train_examples)


@register('digits', '8x8 handwritten digits (scikit-learn), 10 classes, accuracy')
def make_digits(seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1,
                split_seed: int = 0, train_examples: int | None = None) -> Task:
  """`train_examples`: train on that many of the 1,258 training images only (None: all),
  e.g. to measure overfitting."""
  del seed  # the split is fixed by split_seed; training randomness comes from the harness
  images, labels = load_digits_arrays()
  return _image_task('digits', images, labels, test_fraction, val_fraction, split_seed, {},
                     train_examples)


def pixel_permutation(permutation_seed: int, size: int = 64) -> np.ndarray:
  """[size] the fixed order in which a permuted task lays out the row-major pixels (64 for
  pdigits, 784 for pmnist)."""
  return np.random.RandomState(permutation_seed).permutation(size)


@register('pdigits', 'digits with a fixed permutation of the 64 pixels (as permuted MNIST)')
def make_pdigits(seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1,
                 split_seed: int = 0, permutation_seed: int = 0) -> Task:
  """Permuted digits: every image's pixels shuffled by one permutation fixed by
  `permutation_seed` (not the run's seed), on the same split as digits.

  A sequence model reads the permuted pixels as a 64-step sequence, so dependencies span
  the whole sequence instead of neighbouring steps; for the CNN and ViT the permutation
  destroys spatial locality, which is the point: their image priors no longer help.
  """
  del seed
  images, labels = load_digits_arrays()
  n = len(labels)
  # [N, 8, 8, 1] -> [N, 64] row-major -> permuted -> [N, 8, 8, 1]
  flat = images.reshape(n, -1)[:, pixel_permutation(permutation_seed)]
  return _image_task('pdigits', flat.reshape(images.shape), labels, test_fraction,
                     val_fraction, split_seed, {'permutation_seed': permutation_seed})
