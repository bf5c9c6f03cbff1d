"""Speech: spoken words as audio, read as log-mel spectrograms or as raw samples.

Tasks:
  spoken_digits    "zero" .. "nine" synthesised by Debian's espeak-ng (no download) over
                   its English accents, voice variants, speeds and pitches; noise and a time
                   shift drawn per example. Split by voice: the test and validation voices
                   are never heard in training.
  spoken_digits_mini  the same on the small sample bundled with the package: offline.
  speech_commands  TFDS `speech_commands` (Warden 2018, v0.02): real one-second recordings,
                   12 classes (10 words, _silence_, _unknown_), TFDS's speaker-disjoint
                   train/validation/test splits.

Audio: mono, 8 kHz, one second (CLIP_SAMPLES); speech_commands' 16 kHz clips are padded
(with zeros, at the end) or cut to one second and resampled to 8 kHz.

Features (`features`):
  logmel  [T=100, F=40]: the log power of 40 mel bands (HTK mel scale, 20 Hz - 4 kHz) of
          32 ms Hann frames every 10 ms, standardised per example (zero mean, unit variance
          over the whole spectrogram): what every sequence model reads;
  image   the same log-mel as a [100, 40, 1] image (time x mel): for the CNN and the ViT;
  raw     the waveform, standardised per example, `samples_per_step` samples per step:
          [8000 / k, k] (k = 1: 8000 steps).
The STFT is JAX's (`jax.scipy.signal.stft`, which matches scipy.signal.stft), so features
are computed on device inside the training loop, from noise drawn there; the mel
filterbank is the few lines of `mel_filterbank` (no dependency has one: librosa would be a
new one for 20 lines).

Preparing spoken_digits (`archbench data prepare spoken_digits [--data_dir DIR]`) runs
espeak-ng once per (accent, variant, speed, pitch, word), resamples its 22.05 kHz output
to 8 kHz (scipy.signal.resample_poly), trims the silence around the word and stores the
clips as int16 in `<data dir>/spoken_digits/<VERSION>/clips.npz` with `manifest.json`
(the grid, the counts, espeak-ng's version). What is baked in is the synthesis; the noise
(white or pink, at an SNR drawn per example) and the time shift are drawn per training
example on device from the run's key, and once, from `split_seed`, for the validation and
test sets. A small sample of the same format ships with the package (data/bundled: 5
voices, one accent, speed and pitch): task `spoken_digits_mini`, offline, for the smoke
suite and the tests.
"""
from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import functools
import io
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import wave
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from archbench.common import files
from archbench.data import tfds_tasks
from archbench.data.digits import class_baselines
from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec

SAMPLE_RATE = 8000
CLIP_SAMPLES = SAMPLE_RATE  # one second
N_FFT = 256                 # 32 ms frames
HOP = 80                    # 10 ms
N_MELS = 40
F_MIN, F_MAX = 20.0, SAMPLE_RATE / 2
FRAMES = CLIP_SAMPLES // HOP  # 100: frame t is centred on sample t * HOP
LOG_FLOOR = 1e-10
FEATURES = ('logmel', 'image', 'raw')

DIGITS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')


# ---------------------------------------------------------------------------------------
# Features: numpy or jax arrays in, jax arrays out (jittable; vmapped over leading axes).

def hz_to_mel(f):
  """HTK's mel scale."""
  return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
  return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_points(n_mels: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
  """[n_mels + 2] Hz: band b rises from point b to its centre, point b + 1, and falls to
  point b + 2 (equally spaced in mel)."""
  return mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))


@functools.cache
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
  """[n_fft // 2 + 1, n_mels] float32: triangular filters of peak 1 on the FFT bins' centre
  frequencies (HTK's, without Slaney's area normalisation)."""
  bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
  lo, centre, hi = (mel_points(n_mels, f_min, f_max)[i:i + n_mels][None] for i in range(3))
  rising = (bins[:, None] - lo) / (centre - lo)
  falling = (hi - bins[:, None]) / (hi - centre)
  return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def log_mel(audio) -> jax.Array:
  """[..., CLIP_SAMPLES] waveform -> [..., FRAMES, N_MELS] log mel-band power."""
  _, _, z = jax.scipy.signal.stft(jnp.asarray(audio, jnp.float32), fs=SAMPLE_RATE,
                                  window='hann', nperseg=N_FFT, noverlap=N_FFT - HOP,
                                  boundary='zeros', padded=True)  # [..., N_FFT/2+1, frames]
  power = jnp.real(z) ** 2 + jnp.imag(z) ** 2
  mel = jnp.einsum('...ft,fm->...tm', power[..., :FRAMES], jnp.asarray(mel_filterbank()),
                   precision=jax.lax.Precision.HIGHEST)  # accelerators' matmuls otherwise bf16
  return jnp.log(mel + LOG_FLOOR)


def standardise(x, axes) -> jax.Array:
  """Zero mean, unit variance over `axes` per example: the level of a recording (espeak's
  amplitude, a microphone's gain) says nothing of the word."""
  mean = jnp.mean(x, axis=axes, keepdims=True)
  std = jnp.std(x, axis=axes, keepdims=True)
  return (x - mean) / (std + 1e-5)


def features_of(audio, features: str, samples_per_step: int = 1) -> jax.Array:
  """[B, CLIP_SAMPLES] float waveform -> the model's inputs (see the module docstring)."""
  if features == 'raw':
    x = standardise(jnp.asarray(audio, jnp.float32), (-1,))
    return x.reshape(x.shape[0], CLIP_SAMPLES // samples_per_step, samples_per_step)
  x = standardise(log_mel(audio), (-2, -1))
  return x[..., None] if features == 'image' else x


def check_features(task: str, features: str, samples_per_step: int) -> None:
  if features not in FEATURES:
    raise ValueError(f'{task}: features must be one of {", ".join(FEATURES)}, got '
                     f'{features!r}')
  if samples_per_step < 1 or CLIP_SAMPLES % samples_per_step:
    raise ValueError(f'{task}: samples_per_step must divide {CLIP_SAMPLES} (the samples '
                     f'of a clip), got {samples_per_step}')
  if samples_per_step != 1 and features != 'raw':
    raise ValueError(f'{task}: samples_per_step is for features=raw, not {features}')


def speech_spec(name: str, features: str, samples_per_step: int, num_classes: int,
                solved: float) -> TaskSpec:
  """The spec of a speech classification task read as `features`."""
  shape: dict[str, Any] = {
      'logmel': dict(length=FRAMES, feature_dim=N_MELS),
      'image': dict(length=FRAMES * N_MELS, image_shape=(FRAMES, N_MELS, 1)),
      'raw': dict(length=CLIP_SAMPLES // samples_per_step, feature_dim=samples_per_step),
  }[features]
  return TaskSpec(name=name, kind='classify', num_classes=num_classes,
                  metric='eval/accuracy', higher_is_better=True, baselines={},
                  solved=solved, **shape)


# ---------------------------------------------------------------------------------------
# Per-example draws: where the word starts, and the noise.

def place(clips, offsets) -> jax.Array:
  """[B, N] clips, each its word then zeros, -> the same with the word starting at
  `offsets` [B] (samples); what moves past the end is dropped."""
  n = clips.shape[-1]
  source = jnp.arange(n)[None, :] - offsets[:, None]  # [B, N] sample read at each position
  inside = (source >= 0) & (source < n)
  return jnp.where(inside, jnp.take_along_axis(clips, jnp.clip(source, 0, n - 1), axis=-1), 0)


def shift_offsets(key, lengths, shift: float) -> jax.Array:
  """[B] int32 onsets: the free room (N - length) times a uniform draw, `shift` = 1 anywhere
  in it, 0 centred, in between within `shift` of the room around the centre."""
  room = (CLIP_SAMPLES - lengths).astype(jnp.float32)
  u = jax.random.uniform(key, lengths.shape, minval=-1.0, maxval=1.0)
  return jnp.clip(jnp.round(room / 2 + u * shift * room / 2), 0, room).astype(jnp.int32)


def pink(white) -> jax.Array:
  """[B, N] white noise -> noise whose power falls as 1/f (DC removed): each rfft bin scaled
  by 1/sqrt(f)."""
  n = white.shape[-1]
  spectrum = jnp.fft.rfft(white, axis=-1)
  k = jnp.arange(spectrum.shape[-1])
  scale = jnp.where(k > 0, 1.0 / jnp.sqrt(jnp.maximum(k, 1)), 0.0)
  return jnp.fft.irfft(spectrum * scale, n=n, axis=-1)


def add_noise(key, audio, signal_power, snr_db, is_pink) -> jax.Array:
  """`audio` [B, N] plus Gaussian noise, pink where `is_pink` [B], scaled so that the
  speech's power (`signal_power` [B], over the spoken part) over the noise's mean power
  (over the whole clip) is `snr_db` [B] exactly."""
  white = jax.random.normal(key, audio.shape)
  noise = jnp.where(is_pink[:, None], pink(white), white)
  target = signal_power / 10.0 ** (snr_db / 10.0)
  noise = noise * jnp.sqrt(target / jnp.mean(noise ** 2, axis=-1))[:, None]
  return audio + noise


@dataclasses.dataclass(frozen=True)
class Draws:
  """The per-example augmentation of spoken_digits: the onset anywhere within `shift` of
  the free room, then white or pink noise (even odds) at an SNR uniform in [snr_min,
  snr_max] dB."""
  shift: float
  snr_min: float
  snr_max: float

  def __call__(self, key, clips, lengths) -> jax.Array:
    """int16 clips [B, N] (word first) and their lengths [B] -> float audio [B, N]."""
    k_shift, k_snr, k_colour, k_noise = jax.random.split(key, 4)
    audio = jnp.asarray(clips, jnp.float32) / 32768.0
    lengths = jnp.asarray(lengths)
    power = jnp.sum(audio ** 2, axis=-1) / jnp.maximum(lengths, 1)
    audio = place(audio, shift_offsets(k_shift, lengths, self.shift))
    snr = jax.random.uniform(k_snr, lengths.shape, minval=self.snr_min, maxval=self.snr_max)
    return add_noise(k_noise, audio, power, snr, jax.random.bernoulli(k_colour, 0.5,
                                                                      lengths.shape))


# ---------------------------------------------------------------------------------------
# Tasks from clips: training batches drawn and featurised on device, held-out sets once.

HELD_OUT_CHUNK = 256  # examples featurised at once (an STFT of 10k clips is a gigabyte)


def augmented(key, clips, lengths, draws: Draws | None) -> jax.Array:
  """int16 clips [B, N] -> float audio [B, N]: with `draws` from `key`, or as they are."""
  if draws is None:
    return jnp.asarray(clips, jnp.float32) / 32768.0
  return draws(key, clips, lengths)


@functools.partial(jax.jit, static_argnames=('features', 'samples_per_step', 'draws'))
def _held_out_chunk(key, clips, lengths, *, features, samples_per_step, draws):
  return features_of(augmented(key, clips, lengths, draws), features, samples_per_step)


def held_out(clips: np.ndarray, lengths: np.ndarray, labels: np.ndarray, features: str,
             samples_per_step: int, draws: Draws | None, key) -> dict[str, np.ndarray]:
  """A held-out set as one batch of numpy arrays: the same pipeline as training's, with the
  draws (if any) from `key` folded with each chunk's index. Every chunk is padded to
  HELD_OUT_CHUNK examples, so one compilation serves every set (compiling the noise and
  the STFT takes seconds on a CPU)."""
  parts = []
  for i, start in enumerate(range(0, len(labels), HELD_OUT_CHUNK)):
    c, n = clips[start:start + HELD_OUT_CHUNK], lengths[start:start + HELD_OUT_CHUNK]
    pad = HELD_OUT_CHUNK - len(n)
    c = np.pad(c, ((0, pad), (0, 0)))
    n = np.pad(n, (0, pad), constant_values=CLIP_SAMPLES)
    out = _held_out_chunk(jax.random.fold_in(key, i), c, n, features=features,
                          samples_per_step=samples_per_step, draws=draws)
    parts.append(np.asarray(out)[:HELD_OUT_CHUNK - pad])
  return {'inputs': np.concatenate(parts), 'targets': labels.astype(np.int32)}


def audio_task(spec: TaskSpec, params: dict, train, val, test, features: str,
               samples_per_step: int, draws: Draws | None, held_out_seed: int) -> Task:
  """A task on (clips int16 [n, N], lengths [n], labels [n]) per split: training batches
  drawn uniformly (with replacement) from the train clips held on device, augmented by
  `draws` from the batch key and featurised there; the validation and test sets drawn once
  from `held_out_seed` (the same for every run and architecture)."""
  spec = dataclasses.replace(spec, baselines=class_baselines(train[2], test[2],
                                                             spec.num_classes))
  clips, lengths, labels = (jnp.asarray(a) for a in train)
  n = len(train[2])

  def sample(key, batch_size):
    k_index, k_draws = jax.random.split(key)
    idx = jax.random.randint(k_index, (batch_size,), 0, n)
    audio = augmented(k_draws, clips[idx], lengths[idx], draws)
    return {'inputs': features_of(audio, features, samples_per_step),
            'targets': labels[idx].astype(jnp.int32)}

  # Jitted here too (the harness traces it into its own loop): drawn eagerly, op by op,
  # the noise and the STFT would compile each operation separately, some ten seconds.
  sample = jax.jit(sample, static_argnums=1)
  base = jax.random.PRNGKey(held_out_seed)
  val_data = held_out(*val, features, samples_per_step, draws, jax.random.fold_in(base, 1))
  eval_data = held_out(*test, features, samples_per_step, draws, jax.random.fold_in(base, 2))
  return Task(spec, params, sample, eval_data, val_data=val_data)


# ---------------------------------------------------------------------------------------
# spoken_digits: synthesis (preparing) with espeak-ng.

NAME = 'spoken_digits'
VERSION = '1.0.0'   # of the synthesis and of the stored format: a new one is prepared anew
FORMAT = 1
# The grid `archbench data prepare spoken_digits` synthesises: 4 x 24 x 3 x 3 x 10 = 8,640
# clips, 0.44 s of speech each on average (a 50 MB npz; 47 s on two cores).
ACCENTS = ('en-us', 'en-gb', 'en-gb-scotland', 'en-029')  # espeak-ng's English languages
VARIANTS = ('m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'f1', 'f2', 'f3', 'f4', 'f5',
            'klatt', 'klatt2', 'klatt3', 'klatt4', 'whisper', 'whisperf', 'croak', 'adam',
            'linda', 'max', 'steph')  # espeak-ng's voice variants: the speakers
SPEEDS = (120, 160, 200)   # words per minute (-s)
PITCHES = (25, 50, 75)     # 0-99 (-p)
AMPLITUDE = 100            # -a: one level, since features are standardised per example
# The sample bundled with the package (data/bundled): what the smoke suite and tests read.
BUNDLED = pathlib.Path(__file__).resolve().parent / 'bundled'
BUNDLED_GRID = dict(accents=('en-us',), variants=('m3', 'f2', 'klatt', 'm7', 'f4'),
                    speeds=(160,), pitches=(50,))
# Trimming: the word is where the waveform exceeds 1% of full scale, kept with 10 ms of
# margin on each side.
TRIM_LEVEL = 0.01
TRIM_MARGIN = SAMPLE_RATE // 100


class PrepareError(tfds_tasks.PrepareError):
  """Preparing cannot start: espeak-ng is missing, or a voice is not one it has."""


def espeak() -> str:
  """The espeak-ng executable; PrepareError (one line naming the package) without it."""
  found = shutil.which('espeak-ng')
  if found is None:
    raise PrepareError(f'preparing {NAME} needs espeak-ng, the speech synthesiser, which is '
                       'not on PATH: install it with `apt-get install espeak-ng` (Debian and '
                       'Ubuntu) and run `archbench data prepare spoken_digits` again')
  return found


def espeak_version(exe: str) -> str:
  """'1.51' from `espeak-ng --version` ("eSpeak NG text-to-speech: 1.51  Data at: ...")."""
  out = subprocess.run([exe, '--version'], capture_output=True, text=True, check=True).stdout
  found = re.search(r'text-to-speech:\s*(\S+)', out)
  return found.group(1) if found else out.strip()


def _voices(exe: str, which: str) -> set[str]:
  """The languages (`which='en'`) or variant files (`which='variant'`) espeak-ng has."""
  out = subprocess.run([exe, f'--voices={which}'], capture_output=True, text=True,
                       check=True).stdout.splitlines()[1:]
  if which == 'variant':  # File column: !v/<name>
    return {line.split()[4].split('/', 1)[1] for line in out if len(line.split()) > 4}
  return {line.split()[1] for line in out if len(line.split()) > 1}


def check_voices(exe: str, accents, variants) -> None:
  """espeak-ng falls back silently on a voice it lacks: refuse one instead."""
  for kind, asked, have in (('accent', accents, _voices(exe, 'en')),
                            ('variant', variants, _voices(exe, 'variant'))):
    missing = [v for v in asked if v not in have]
    if missing:
      raise PrepareError(f'espeak-ng has no {kind} {", ".join(missing)}; it has '
                         f'{", ".join(sorted(have))}')


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
  """(int16 mono samples, sample rate) of a 16-bit PCM WAV file's bytes."""
  with wave.open(io.BytesIO(data)) as w:
    if w.getsampwidth() != 2 or w.getnchannels() != 1:
      raise ValueError(f'expected 16-bit mono WAV, got {8 * w.getsampwidth()}-bit, '
                       f'{w.getnchannels()} channels')
    return np.frombuffer(w.readframes(w.getnframes()), '<i2').astype(np.int16), w.getframerate()


def to_rate(samples: np.ndarray, rate: int) -> np.ndarray:
  """float32 samples at `rate` -> SAMPLE_RATE (scipy.signal.resample_poly: polyphase FIR,
  the anti-aliasing filter included)."""
  from scipy.signal import resample_poly
  if rate == SAMPLE_RATE:
    return samples.astype(np.float32)
  g = math.gcd(rate, SAMPLE_RATE)
  return resample_poly(samples.astype(np.float32), SAMPLE_RATE // g, rate // g,
                       axis=-1).astype(np.float32)


def trim(samples: np.ndarray) -> np.ndarray:
  """The word: from TRIM_MARGIN before the first sample above TRIM_LEVEL of full scale to
  TRIM_MARGIN after the last."""
  loud = np.flatnonzero(np.abs(samples) > TRIM_LEVEL * 32768)
  if not len(loud):
    raise ValueError('the clip is silent')
  return samples[max(0, loud[0] - TRIM_MARGIN):loud[-1] + TRIM_MARGIN + 1]


def synthesise(exe: str, word: str, accent: str, variant: str, speed: int, pitch: int,
               folder: str) -> np.ndarray:
  """int16 [n]: `word` spoken by espeak-ng, at SAMPLE_RATE, trimmed (not cut to a second)."""
  path = os.path.join(folder, f'{accent}+{variant}-{speed}-{pitch}-{word}.wav')
  subprocess.run([exe, '-v', f'{accent}+{variant}', '-s', str(speed), '-p', str(pitch),
                  '-a', str(AMPLITUDE), '-w', path, word], check=True, capture_output=True)
  samples, rate = read_wav(pathlib.Path(path).read_bytes())
  os.unlink(path)
  word_only = trim(to_rate(samples, rate))
  return np.clip(np.round(word_only), -32768, 32767).astype(np.int16)


def grid(accents, variants, speeds, pitches, words=DIGITS) -> list[tuple]:
  """Every (accent, variant, speed, pitch, word index), in the stored order."""
  return [(a, v, s, p, w) for v in variants for a in accents for s in speeds
          for p in pitches for w in range(len(words))]


def dataset_dir(root) -> pathlib.Path:
  return pathlib.Path(root) / NAME / VERSION


def prepare(root=None, *, accents=ACCENTS, variants=VARIANTS, speeds=SPEEDS,
            pitches=PITCHES, workers: int | None = None) -> tuple[pathlib.Path, bool]:
  """Synthesise the spoken digits into `root` (the data directory; tfds_tasks.data_dir).

  Returns (the dataset's directory, whether it was prepared now: False if it already held
  this grid). Clips are stored trimmed, concatenated in `audio` with their `offsets`; a
  clip longer than a second (none at these speeds) is cut to one and counted in the
  manifest's `cut`."""
  root = tfds_tasks.data_dir(root)
  path = dataset_dir(root)
  wanted = {'accents': list(accents), 'variants': list(variants), 'speeds': list(speeds),
            'pitches': list(pitches)}
  try:
    manifest = read_manifest(path)
    if {k: manifest[k] for k in wanted} == wanted:
      return path, False
  except tfds_tasks.NotPrepared:
    pass
  exe = espeak()
  check_voices(exe, accents, variants)
  points = grid(accents, variants, speeds, pitches)
  with tempfile.TemporaryDirectory() as folder, concurrent.futures.ThreadPoolExecutor(
      workers or os.cpu_count() or 1) as pool:  # each thread waits on its espeak-ng process
    clips = list(pool.map(lambda p: synthesise(exe, DIGITS[p[4]], *p[:4], folder), points))
  cut = sum(len(c) > CLIP_SAMPLES for c in clips)
  clips = [c[:CLIP_SAMPLES] for c in clips]
  index = {k: {v: i for i, v in enumerate(wanted[k])} for k in wanted}
  arrays = {
      'audio': np.concatenate(clips),
      'offsets': np.cumsum([0] + [len(c) for c in clips]).astype(np.int64),
      'label': np.array([p[4] for p in points], np.int8),
      'accent': np.array([index['accents'][p[0]] for p in points], np.int16),
      'variant': np.array([index['variants'][p[1]] for p in points], np.int16),
      'speed': np.array([p[2] for p in points], np.int16),
      'pitch': np.array([p[3] for p in points], np.int16),
  }
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  files.write_atomically(path / 'clips.npz', buffer.getvalue())
  seconds = np.diff(arrays['offsets']) / SAMPLE_RATE
  manifest = {
      'name': NAME, 'version': VERSION, 'format': FORMAT, 'espeak_ng': espeak_version(exe),
      'sample_rate': SAMPLE_RATE, 'words': list(DIGITS), **wanted, 'amplitude': AMPLITUDE,
      'clips': len(points), 'per_word': np.bincount(arrays['label'], minlength=10).tolist(),
      'per_variant': len(points) // len(variants),
      'seconds': {'min': round(float(seconds.min()), 4), 'mean': round(float(seconds.mean()), 4),
                  'max': round(float(seconds.max()), 4)},
      'cut': int(cut), 'trim': {'level': TRIM_LEVEL, 'margin_samples': TRIM_MARGIN},
  }
  # The manifest is written last: a directory with one holds a complete dataset.
  files.write_atomically(path / 'manifest.json', json.dumps(manifest, indent=1) + '\n')
  return path, True


def describe(path: pathlib.Path) -> str:
  """What a prepared directory holds, in a phrase (for `archbench data prepare`)."""
  m = read_manifest(pathlib.Path(path))
  return (f'{m["clips"]:,} clips: {len(m["words"])} words x {len(m["variants"])} voices x '
          f'{len(m["accents"])} accents x {len(m["speeds"])} speeds x {len(m["pitches"])} '
          f'pitches, {m["seconds"]["mean"]:.2f} s on average; espeak-ng {m["espeak_ng"]}')


# ---------------------------------------------------------------------------------------
# spoken_digits: reading, splitting by voice.

def read_manifest(path: pathlib.Path) -> dict:
  """The manifest of a prepared spoken_digits directory; NotPrepared (one line, naming the
  command that prepares it) if it is missing or of another format."""
  root = path.parent.parent
  prepare_cmd = f'archbench data prepare {NAME} --data_dir {root}'
  manifest_path = path / 'manifest.json'
  if not manifest_path.is_file() or not (path / 'clips.npz').is_file():
    raise tfds_tasks.NotPrepared(
        f'dataset {NAME} is not prepared: no {manifest_path}. Prepare it with '
        f'`{prepare_cmd}` (it synthesises the clips with espeak-ng: `apt-get install '
        f'espeak-ng`), or point --data_dir or ${tfds_tasks.ENV_VAR} at a directory that has it')
  manifest = json.loads(manifest_path.read_text())
  if manifest.get('format') != FORMAT:
    raise tfds_tasks.NotPrepared(
        f'dataset {NAME} in {path} is of format {manifest.get("format")}, this archbench '
        f'reads format {FORMAT}: run `{prepare_cmd}` again')
  return manifest


@functools.cache
def read_clips(path: str) -> tuple[dict, dict[str, np.ndarray]]:
  """(manifest, arrays) of a prepared directory, read once per process."""
  manifest = read_manifest(pathlib.Path(path))
  with np.load(pathlib.Path(path) / 'clips.npz') as stored:
    return manifest, {k: stored[k] for k in stored.files}


def padded_clips(arrays: dict[str, np.ndarray], rows: np.ndarray):
  """(int16 [len(rows), CLIP_SAMPLES] clips, word first then zeros; int32 lengths; int32
  labels) of the stored clips `rows`."""
  offsets = arrays['offsets']
  lengths = np.diff(offsets)[rows].astype(np.int32)
  clips = np.zeros((len(rows), CLIP_SAMPLES), np.int16)
  for i, (row, n) in enumerate(zip(rows, lengths)):
    clips[i, :n] = arrays['audio'][offsets[row]:offsets[row] + n]
  return clips, lengths, arrays['label'][rows].astype(np.int32)


def voice_split(num_variants: int, val_fraction: float, test_fraction: float,
                split_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(train, validation, test) variant indices, disjoint: a permutation seeded by
  `split_seed`, its first round(test_fraction * V) variants (at least one) for test, the
  next round(val_fraction * V) (at least one) for validation, the rest for training."""
  n_test = max(1, int(round(test_fraction * num_variants)))
  n_val = max(1, int(round(val_fraction * num_variants)))
  if n_test + n_val >= num_variants:
    raise ValueError(f'{NAME}: {num_variants} voices cannot give {n_test} test and {n_val} '
                     'validation voices and leave one to train on; lower test_fraction or '
                     'val_fraction, or prepare more voices')
  order = np.random.RandomState(split_seed).permutation(num_variants)
  return (np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val]),
          np.sort(order[:n_test]))


def split_rows(arrays: dict[str, np.ndarray], variants: tuple[np.ndarray, ...]):
  """The stored rows of each split's variants, in stored order."""
  return tuple(np.flatnonzero(np.isin(arrays['variant'], v)) for v in variants)


def _check_digits(task, features, samples_per_step, snr_min, snr_max, shift, val_fraction,
                  test_fraction) -> None:
  check_features(task, features, samples_per_step)
  if snr_min > snr_max:
    raise ValueError(f'{task}: snr_min ({snr_min}) must not exceed snr_max ({snr_max})')
  if not 0 <= shift <= 1:
    raise ValueError(f'{task}: shift must be in [0, 1] (the share of the free room the '
                     f'onset moves over), got {shift}')
  for key, value in (('val_fraction', val_fraction), ('test_fraction', test_fraction)):
    if not 0 < value < 1:
      raise ValueError(f'{task}: {key} must be in (0, 1), got {value}')


def _spoken_digits(name: str, path: pathlib.Path, features: str, samples_per_step: int,
                   snr_min: float, snr_max: float, shift: float, val_fraction: float,
                   test_fraction: float, split_seed: int) -> Task:
  """The clips prepared in `path`, split by voice variant (voice_split), each example a clip
  placed at a random onset (`shift`) with white or pink noise at an SNR uniform in
  [snr_min, snr_max] dB. Training draws anew per example from the run's key; the
  validation and test sets draw once from `split_seed`."""
  spec = spoken_digits_spec(features, samples_per_step, snr_min, snr_max, shift,
                            val_fraction, test_fraction, split_seed, name=name)
  manifest, arrays = read_clips(str(path))
  variants = voice_split(len(manifest['variants']), val_fraction, test_fraction, split_seed)
  train, val, test = (padded_clips(arrays, rows) for rows in split_rows(arrays, variants))
  names = lambda v: [manifest['variants'][i] for i in v]
  params = {'features': features, 'samples_per_step': samples_per_step, 'snr_min': snr_min,
            'snr_max': snr_max, 'shift': shift, 'val_fraction': val_fraction,
            'test_fraction': test_fraction, 'split_seed': split_seed,
            'version': manifest['version'], 'espeak_ng': manifest['espeak_ng'],
            'voices': {'train': names(variants[0]), 'validation': names(variants[1]),
                       'test': names(variants[2])}}
  return audio_task(spec, params, train, val, test, features, samples_per_step,
                    Draws(shift, snr_min, snr_max), held_out_seed=split_seed)


def spoken_digits_spec(features: str = 'logmel', samples_per_step: int = 1,
                       snr_min: float = 5.0, snr_max: float = 25.0, shift: float = 1.0,
                       val_fraction: float = 0.125, test_fraction: float = 0.2,
                       split_seed: int = 0, *, name: str = NAME) -> TaskSpec:
  _check_digits(name, features, samples_per_step, snr_min, snr_max, shift, val_fraction,
                test_fraction)
  return speech_spec(name, features, samples_per_step, len(DIGITS), solved=0.95)


@register(NAME, 'spoken digits synthesised by espeak-ng (prepared once), noise and time '
          'shift per example, test voices unheard in training (log-mel or raw; accuracy)',
          spec=spoken_digits_spec)
def make_spoken_digits(seed: int = 0, features: str = 'logmel', samples_per_step: int = 1,
                       snr_min: float = 5.0, snr_max: float = 25.0, shift: float = 1.0,
                       val_fraction: float = 0.125, test_fraction: float = 0.2,
                       split_seed: int = 0) -> Task:
  """The clips `archbench data prepare spoken_digits` synthesised into the data directory
  (24 voices: 16 train, 3 validation, 5 test)."""
  del seed  # the split and the held-out draws are fixed by split_seed
  spoken_digits_spec(features, samples_per_step, snr_min, snr_max, shift, val_fraction,
                     test_fraction, split_seed)  # bad parameters before reading anything
  return _spoken_digits(NAME, dataset_dir(tfds_tasks.data_dir()), features, samples_per_step,
                        snr_min, snr_max, shift, val_fraction, test_fraction, split_seed)


MINI = 'spoken_digits_mini'


@register(MINI, 'spoken_digits on the small sample bundled with archbench (5 voices: 3 '
          'train, 1 validation, 1 test; 50 clips); offline, for smoke runs and tests')
def make_spoken_digits_mini(seed: int = 0, features: str = 'logmel',
                            samples_per_step: int = 1, snr_min: float = 5.0,
                            snr_max: float = 25.0, shift: float = 1.0,
                            val_fraction: float = 0.125, test_fraction: float = 0.2,
                            split_seed: int = 0) -> Task:
  """The same task on data/bundled/ (BUNDLED_GRID): nothing to prepare, so it runs
  anywhere (the smoke suite); too few voices to say much about a model."""
  del seed
  return _spoken_digits(MINI, dataset_dir(BUNDLED), features, samples_per_step, snr_min,
                        snr_max, shift, val_fraction, test_fraction, split_seed)


# ---------------------------------------------------------------------------------------
# speech_commands (TFDS), read through tfds_tasks' reader.

COMMANDS_NAME = 'speech_commands'
COMMANDS_LABELS = ('down', 'go', 'left', 'no', 'off', 'on', 'right', 'stop', 'up', 'yes',
                   '_silence_', '_unknown_')  # TFDS's ClassLabel order
COMMANDS_RATE = 16000
RESAMPLE_CHUNK = 4096


def one_second(audio: list[np.ndarray] | np.ndarray, rate: int = COMMANDS_RATE) -> np.ndarray:
  """int16 clips of any lengths at `rate` -> int16 [n, CLIP_SAMPLES]: each padded with zeros
  at the end, or cut, to one second, then resampled to SAMPLE_RATE."""
  out = np.zeros((len(audio), CLIP_SAMPLES), np.int16)
  for start in range(0, len(audio), RESAMPLE_CHUNK):
    part = audio[start:start + RESAMPLE_CHUNK]
    block = np.zeros((len(part), rate), np.float32)
    for i, clip in enumerate(part):
      clip = np.asarray(clip)[:rate]
      block[i, :len(clip)] = clip
    out[start:start + len(part)] = np.clip(np.round(to_rate(block, rate)), -32768, 32767)
  return out


@functools.cache
def _commands_clips(split: str, root: str) -> tuple[np.ndarray, np.ndarray]:
  """(int16 [n, CLIP_SAMPLES] clips at 8 kHz, int32 labels) of one TFDS split, read once per
  process; the 16 kHz recordings read are not kept (the train split's are 2.7 GB)."""
  columns = tfds_tasks.read_columns(COMMANDS_NAME, split, root)
  return one_second(columns['audio']), columns['label'].astype(np.int32)


def _commands_split(split: str, size: int | None):
  """(clips, lengths, labels) of one TFDS split, or of a fixed `size` of it."""
  clips, labels = _commands_clips(split, str(tfds_tasks.data_dir()))
  keep = tfds_tasks.eval_subset(len(labels), size)
  return clips[keep], np.full(len(keep), CLIP_SAMPLES, np.int32), labels[keep]


def speech_commands_spec(features: str = 'logmel', samples_per_step: int = 1,
                         eval_size: int | None = None, val_size: int | None = None) -> TaskSpec:
  check_features(COMMANDS_NAME, features, samples_per_step)
  tfds_tasks.check_eval_size(COMMANDS_NAME, eval_size)
  tfds_tasks.check_eval_size(COMMANDS_NAME, val_size)
  return speech_spec(COMMANDS_NAME, features, samples_per_step, len(COMMANDS_LABELS),
                     solved=0.90)


@register(COMMANDS_NAME, 'Speech Commands v0.02 (TFDS): one-second recordings, 10 words, '
          'silence, unknown (log-mel or raw; accuracy)', spec=speech_commands_spec)
def make_speech_commands(seed: int = 0, features: str = 'logmel', samples_per_step: int = 1,
                         eval_size: int | None = None, val_size: int | None = None) -> Task:
  """TFDS's splits as they are: train trains, validation (or `val_size` of it) validates,
  test (or `eval_size` of it) tests; their speakers are disjoint by the dataset's design.
  The recordings are read as recorded: no noise or shift is added."""
  del seed
  spec = speech_commands_spec(features, samples_per_step, eval_size, val_size)
  params = {'tfds': tfds_tasks.DATASETS[COMMANDS_NAME].full_name, 'features': features,
            'samples_per_step': samples_per_step, 'eval_size': eval_size, 'val_size': val_size}
  return audio_task(spec, params, _commands_split('train', None),
                    _commands_split('validation', val_size), _commands_split('test', eval_size),
                    features, samples_per_step, None, held_out_seed=0)


SPEECH_TASKS = {NAME: DIGITS, MINI: DIGITS, COMMANDS_NAME: COMMANDS_LABELS}  # -> classes


# ---------------------------------------------------------------------------------------
# Example spectrograms, for the report (the `spectrograms` evaluator records them).

def example_spectrograms(task: Task, per_class: int = 2) -> list[dict[str, Any]]:
  """`per_class` test examples of each class, spread evenly over the class's examples in
  stored order (so over its voices), as the models read them (noise and shift included),
  each its standardised log-mel [N_MELS, FRAMES] (mel band x time) quantised to 16 levels
  over its own range (the report's 64-colour PNGs show little more), packed, compressed and
  base64-encoded (`encode`): about 2 kB each in a record, which the report (JAX-free)
  decodes and draws."""
  classes = SPEECH_TASKS[task.spec.name]
  x, y = task.eval_data['inputs'], task.eval_data['targets']
  features = task.params['features']
  out = []
  for label in range(len(classes)):
    rows = np.flatnonzero(y == label)
    spread = np.unique(np.linspace(0, len(rows) - 1, per_class).round().astype(int))
    for row in rows[spread] if len(rows) else []:
      if features == 'raw':
        spectrogram = np.asarray(jax.jit(features_of, static_argnums=1)(
            x[row].reshape(1, -1), 'logmel'))[0]
      else:
        spectrogram = x[row].reshape(FRAMES, N_MELS)
      out.append({'label': int(label), 'class': classes[label], **encode(spectrogram.T)})
  return out


LEVELS = 16  # of an encoded image: 4 bits a pixel


def encode(image: np.ndarray) -> dict[str, Any]:
  """A float image [H, W] (H * W even) as {'shape', 'lo', 'hi', 'pixels'}: LEVELS levels over
  [lo, hi], row-major, two pixels a byte (the first in the high nibble), zlib, base64. The
  inverse is benchmarks/results/spectrograms.decode."""
  lo, hi = float(image.min()), float(image.max())
  levels = np.round((image - lo) / max(hi - lo, 1e-12) * (LEVELS - 1)).astype(np.uint8).ravel()
  packed = (levels[0::2] << 4) | levels[1::2]
  return {'shape': list(image.shape), 'lo': round(lo, 4), 'hi': round(hi, 4),
          'pixels': base64.b64encode(zlib.compress(packed.tobytes(), 9)).decode('ascii')}
