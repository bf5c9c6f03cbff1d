"""The task spec: the small contract between tasks and the harness.

A task says what goes in (tokens, features or an image), what comes out (classes per
sequence, classes per token, or real values) and which positions count; it never knows
which model reads it. Shape legend: B batch, T time, F features, H/W/C image, K classes.

Batches are dicts of arrays:
  inputs       [B, T] int tokens | [B, T, F] float features | [B, H, W, C] float image
               | [B, S] int source tokens (seq2seq)
  targets      [B] int class | [B, T] int class per token | [B, O] float values
               | [B, T] int target tokens, ending with EOS, then PAD (seq2seq)
  loss_mask    [B, T] (per_token, seq2seq) positions that count in the loss
  metric_mask  [B, T] (per_token, seq2seq) positions that count in the accuracy
  lengths      [B] int (padded tasks only, `TaskSpec.padded`) how many leading input
               positions of each example are real; the rest (up to T, or S for seq2seq)
               are padding, always at the end. The harness makes the padding invisible:
               no output at a real position, no pooled output and no loss depends on it.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ('classify', 'per_token', 'regress', 'seq2seq')

# Reserved token ids of seq2seq vocabularies: padding, start of target, end of target.
PAD, BOS, EOS = 0, 1, 2

class Stream(enum.IntEnum):
  """Every random stream folded from a cell's seed, in one place, so that no two uses ever
  share random numbers: training batches and the held-out set (drawn here, in data/), and
  the harness's parameter initialisation, text sampling and gradient-probe vectors.

  DROPOUT is folded into each training dispatch's key (itself folded from TRAIN, the key
  the dispatch's batch keys are split from), so that the dropout masks, like the batches,
  depend on the seed and the step alone (a resumed cell redraws the same ones) and never
  share random numbers with the batches.

  VALIDATION draws a generated task's validation set, apart from training's batches and
  from the test set (EVAL), so that selection (a learning rate, a checkpoint, stopping at
  a target) never sees test data."""
  TRAIN = 0
  EVAL = 1
  INIT = 2
  SAMPLE = 3
  PROBE = 4
  DROPOUT = 5
  VALIDATION = 6


def stream_key(seed: int, stream: Stream) -> jax.Array:
  return jax.random.fold_in(jax.random.PRNGKey(seed), int(stream))


def train_key(seed: int) -> jax.Array:
  return stream_key(seed, Stream.TRAIN)


def eval_key(seed: int) -> jax.Array:
  return stream_key(seed, Stream.EVAL)


def val_key(seed: int) -> jax.Array:
  return stream_key(seed, Stream.VALIDATION)


def carve(rows: np.ndarray, count: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(rest, carved): `count` of `rows` chosen by `split_seed`, both sorted; how a dataset
  task takes its validation set out of its training part, leaving the test set as it was."""
  if not 0 < count < len(rows):
    raise ValueError(f'cannot carve {count} validation examples out of {len(rows)}')
  order = np.random.RandomState(split_seed + 1).permutation(len(rows))
  return np.sort(rows[order[count:]]), np.sort(rows[order[:count]])


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """What a task feeds and expects.

  Attributes:
    name: registry key.
    kind: 'classify' (one class per sequence/image), 'per_token' (a class at every
      position), 'regress' (real values per sequence) or 'seq2seq' (a target token
      sequence from a source token sequence, decoded greedily at evaluation).
    length: T, the number of input positions (H*W for images; S, the source length, for
      seq2seq).
    vocab_size: input vocabulary for token inputs, else None.
    feature_dim: F for real-valued sequence inputs, else None.
    image_shape: (H, W, C) for images, else None. Sequence models read an image as H*W
      pixels in row-major order; image models read the grid.
    num_classes: K for classify/per_token.
    out_dim: O for regress.
    target_length: T of the target sequence (seq2seq only; EOS included).
    causal: outputs at t may only depend on inputs up to t (language modelling, and the
      target side of seq2seq); bidirectional models cannot serve such a task.
    metric: the headline metric key, e.g. 'eval/accuracy'.
    higher_is_better: direction of `metric`.
    baselines: metric key -> value a trivial predictor reaches (chance, memoryless,
      mean); every table shows results against it.
    solved: threshold on `metric` at which the task counts as solved.
    padded: examples are shorter than T and padded at the end; batches then carry
      `lengths` (see the module docstring). Such a task takes a `pad_to` parameter
      (`pad_further`), which pads every example further without changing it.
    bits_metric: the name under which a causal per_token task's loss is also reported in
      bits (eval/<bits_metric> = eval/loss / ln 2): bits per character for text, bits per
      dimension for pixel sequences (data/pixels.py), where a position is one pixel.
  """
  name: str
  kind: str
  length: int
  metric: str
  higher_is_better: bool
  baselines: dict[str, float]
  solved: float
  vocab_size: int | None = None
  feature_dim: int | None = None
  image_shape: tuple[int, int, int] | None = None
  num_classes: int | None = None
  out_dim: int | None = None
  target_length: int | None = None
  causal: bool = False
  padded: bool = False
  unpadded_length: int | None = None  # `length` before `pad_to` padded further
  bits_metric: str = 'bits_per_char'

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'kind must be one of {KINDS}, got {self.kind!r}')
    inputs = [self.vocab_size, self.feature_dim, self.image_shape]
    if sum(i is not None for i in inputs) != 1:
      raise ValueError(f'{self.name}: exactly one of vocab_size, feature_dim, image_shape')
    if (self.kind == 'seq2seq') != (self.target_length is not None):
      raise ValueError(f'{self.name}: target_length is set for seq2seq tasks only')

  @property
  def longest_example(self) -> int:
    """Input positions of the longest real example: `length` less the padding `pad_to`
    added (what a model must see whole, e.g. a TCN's receptive field)."""
    return self.unpadded_length or self.length

  @property
  def longest_sequence(self) -> int:
    """Positions a model reads for the longest real example, padding left out: the input,
    then the target for seq2seq (a causal backbone reads them as one sequence). What a
    finite receptive field must cover."""
    return self.longest_example + (self.target_length or 0)

  @property
  def tokens_per_example(self) -> int:
    """Positions a model processes per example (source and target for seq2seq)."""
    return self.length + (self.target_length or 0)

  def is_solved(self, value: float) -> bool:
    return value >= self.solved if self.higher_is_better else value <= self.solved

  def __hash__(self):  # baselines is a dict; identity of a spec is its name and shape
    return hash((self.name, self.kind, self.length))


@dataclasses.dataclass(frozen=True)
class ImageSamples:
  """What an image generation task tells the harness about its samples (Task.image_samples).

  The task is causal per_token on tokens: inputs are a start token then every pixel but the
  last, row-major; targets are the pixels. A sample is drawn from the start token alone
  and one token past the inputs' length, so that it holds every pixel (the targets'
  shape), not the inputs' (benchmarks/harness/evaluators/images.py).

  Attributes:
    shape: (H, W), the image the H * W pixels fill in row-major order.
    levels: pixel values are 0 .. levels - 1, intensity = value / (levels - 1), 0 the
      background.
    score: pixels [N, H * W] sampled from the model -> {name: value}, each recorded as
      eval/<name>: what the task checks of its samples (e.g. how many look like data).
  """
  shape: tuple[int, int]
  levels: int
  score: Callable[[np.ndarray], dict[str, float]]


def real_lengths(inputs: np.ndarray, pad_id: int) -> np.ndarray:
  """[N] int32: the real positions of each row of end-padded inputs [N, T] (`pad_id` never
  occurs inside an example)."""
  return np.sum(np.asarray(inputs) != pad_id, axis=1).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Task:
  """A spec plus its data.

  Attributes:
    spec: the TaskSpec.
    params: the resolved generator parameters (recorded with every result).
    train_batch: (key, batch_size) -> batch. Pure and jittable, so the harness draws
      training batches on device inside its compiled training loop: synthetic tasks
      generate them, dataset tasks gather from arrays already on device.
    eval_data: the test set as one batch dict of arrays (numpy): evaluated once, after
      training, and never read by any selection.
    val_data: the validation set, the same kind of batch dict, disjoint from the test set
      and from the training examples (a generated task draws it from its own stream, a
      dataset task carves it out of its training split): what periodic evaluation,
      stopping at a target, best-weight selection and tuning read. None only for a plug-in
      task that has none (those uses then refuse it).
    score_samples: for text generation (causal per_token tasks): token sequences [N, T]
      sampled from the trained model -> scores in [0, 1] (e.g. the fraction of valid
      transitions under the source). The harness samples continuations of the first
      `prompt_length` tokens of held-out inputs and records each score as `eval/<name>`.
      None: the task does not score samples.
    prompt_length: how many held-out tokens prompt each sample.
    image_samples: for image generation (data/pixels.py): how the harness draws, scores
      and records images sampled from the trained model (ImageSamples). None: the task
      does not generate images.
  """
  spec: TaskSpec
  params: dict[str, Any]
  train_batch: Callable[[jax.Array, int], dict[str, jax.Array]]
  eval_data: dict[str, np.ndarray]
  score_samples: Callable[[np.ndarray], dict[str, float]] | None = None
  prompt_length: int = 1
  val_data: dict[str, np.ndarray] | None = None
  image_samples: ImageSamples | None = None

  @property
  def eval_size(self) -> int:
    return len(self.eval_data['targets'])

  @property
  def val_size(self) -> int:
    return 0 if self.val_data is None else len(self.val_data['targets'])


def padded_spec(spec: TaskSpec, pad_to: int | None) -> TaskSpec:
  """The spec of `spec`'s task padded to `pad_to` (see `pad_further`), for tasks that give
  their spec without building their data."""
  if pad_to is None:
    return spec
  if not spec.padded:
    raise ValueError(f'{spec.name}: pad_to is for tasks whose examples are padded')
  if pad_to < spec.length:
    raise ValueError(f'{spec.name}: pad_to must be at least {spec.length} (the input '
                     f'length without it), got {pad_to}')
  return dataclasses.replace(spec, length=pad_to, unpadded_length=spec.longest_example)


def pad_further(task: Task, pad_to: int | None, pad_id: int) -> Task:
  """`task` with every example padded at the end to `pad_to` input positions (None: as it
  is): the same examples, labels and `lengths`, only more padding, so a model that cannot
  see padding gives the same outputs at real positions. Per-token targets and masks are
  padded with zeros (the new positions count nowhere); a seq2seq target is untouched."""
  spec = task.spec
  if pad_to is None:
    return task
  extra = padded_spec(spec, pad_to).length - spec.length
  padded_keys = ('inputs',) if spec.kind == 'seq2seq' else (
      'inputs', 'targets', 'loss_mask', 'metric_mask')

  def pad(batch, xp):
    def one(key, a):
      if key not in padded_keys or a.ndim < 2:
        return a
      value = pad_id if key == 'inputs' else 0
      widths = [(0, 0), (0, extra)] + [(0, 0)] * (a.ndim - 2)
      return xp.pad(a, widths, constant_values=value)
    return {k: one(k, v) for k, v in batch.items()}

  sample = task.train_batch
  return dataclasses.replace(
      task, spec=padded_spec(spec, pad_to),
      params={**task.params, 'pad_to': pad_to},
      train_batch=lambda key, batch_size: pad(sample(key, batch_size), jnp),
      eval_data=pad(task.eval_data, np),
      val_data=None if task.val_data is None else pad(task.val_data, np))
