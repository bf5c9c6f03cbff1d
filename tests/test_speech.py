"""Speech tasks (data/speech.py): the features and the per-example draws against references,
the clips bundled with archbench (what `archbench data prepare spoken_digits` writes, for a
small grid) read as a prepared data directory, splits by voice, the errors, TFDS
speech_commands on its fixture (tests/fixtures/tfds), and the report's spectrograms.

Nothing here trains a model, except the slow end-to-end test at the end.
"""
import io
import json
import pathlib
import shutil
import sys
import tempfile
import wave
from contextlib import redirect_stderr, redirect_stdout

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from archbench import data
from archbench.benchmarks import cli
from archbench.benchmarks.results import spectrograms as report_section
from archbench.data import digits, speech, tfds_tasks

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / 'tests' / 'fixtures'
sys.path.insert(0, str(FIXTURES))
import tfds_fixture_data as raw  # noqa: E402  (the TFDS fixtures' raw data)

BUNDLED = speech.dataset_dir(speech.BUNDLED)
ESPEAK = shutil.which('espeak-ng')


def _manifest():
  return json.loads((BUNDLED / 'manifest.json').read_text())


def _arrays():
  with np.load(BUNDLED / 'clips.npz') as stored:
    return {k: stored[k] for k in stored.files}


def _tone(freq, n=speech.CLIP_SAMPLES, amplitude=0.5, rate=speech.SAMPLE_RATE):
  return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def _draw(task, key, batch_size):
  return {k: np.asarray(v) for k, v in task.train_batch(key, batch_size).items()}


_features = jax.jit(speech.features_of, static_argnums=(1, 2))
QUIET = dict(snr_min=200.0, snr_max=200.0, shift=0.0)  # noise 200 dB down, words centred


@pytest.fixture(scope='module')
def mini():
  """spoken_digits_mini at its defaults, built once (building compiles the noise and the
  STFT: seconds on a CPU)."""
  return data.build('spoken_digits_mini')


# ---------------------------------------------------------------------------------------
# Features.

def test_mel_filterbank_triangles_peak_at_their_centres():
  bank = speech.mel_filterbank()
  assert bank.shape == (speech.N_FFT // 2 + 1, speech.N_MELS) and bank.dtype == np.float32
  points = speech.mel_points()
  assert points[0] == pytest.approx(speech.F_MIN) and points[-1] == pytest.approx(speech.F_MAX)
  assert np.all(np.diff(points) > 0)  # and wider with frequency (mel spacing)
  assert np.all(np.diff(np.diff(points)) > 0)
  bins = np.arange(bank.shape[0]) * speech.SAMPLE_RATE / speech.N_FFT
  for b in range(speech.N_MELS):
    support = bins[bank[:, b] > 0]
    assert support.min() > points[b] and support.max() < points[b + 2]
    # The bin closest to the centre has the band's largest weight.
    assert abs(bins[bank[:, b].argmax()] - points[b + 1]) <= speech.SAMPLE_RATE / speech.N_FFT
  assert np.all(bank.sum(axis=1)[(bins > points[1]) & (bins < points[-2])] > 0)  # no gap
  # HTK's formula, by hand, at 1 kHz: 2595 log10(1 + 1000/700) = 999.99 mel.
  assert speech.hz_to_mel(1000.0) == pytest.approx(999.985, abs=1e-3)
  assert speech.mel_to_hz(speech.hz_to_mel(1234.5)) == pytest.approx(1234.5)


@pytest.mark.parametrize('freq', [150.0, 440.0, 1000.0, 2500.0, 3600.0])
def test_log_mel_of_a_pure_tone_peaks_in_the_band_of_its_frequency(freq):
  spectrum = np.asarray(jax.jit(speech.log_mel)(_tone(freq)[None]))[0]
  assert spectrum.shape == (speech.FRAMES, speech.N_MELS)
  band = spectrum[10:-10].mean(axis=0).argmax()  # away from the zero-padded edges
  centres = speech.mel_points()[1:-1]
  assert band == np.abs(centres - freq).argmin(), (freq, band, centres[band])


def test_log_mel_is_scipy_stft_through_the_filterbank():
  x = np.random.RandomState(0).randn(3, speech.CLIP_SAMPLES).astype(np.float32)
  _, _, z = scipy.signal.stft(x, fs=speech.SAMPLE_RATE, window='hann', nperseg=speech.N_FFT,
                              noverlap=speech.N_FFT - speech.HOP, boundary='zeros',
                              padded=True)
  power = (np.abs(z) ** 2)[..., :speech.FRAMES]  # frame t centred on sample t * HOP
  expected = np.log(np.einsum('bft,fm->btm', power, speech.mel_filterbank().astype(np.float64))
                    + speech.LOG_FLOOR)
  got = np.asarray(jax.jit(speech.log_mel)(x))
  np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4)


def test_features_shapes_and_standardisation():
  signal = _tone(300.0) + 0.1 * np.random.RandomState(0).randn(speech.CLIP_SAMPLES)
  x = jnp.asarray(np.stack([signal, 0.1 * signal]).astype(np.float32))
  logmel = np.asarray(_features(x, 'logmel', 1))
  assert logmel.shape == (2, speech.FRAMES, speech.N_MELS)
  np.testing.assert_allclose(logmel.mean(axis=(1, 2)), 0, atol=1e-4)
  np.testing.assert_allclose(logmel.std(axis=(1, 2)), 1, atol=1e-3)
  # Level says nothing: the same sound 20 dB quieter reads the same (while it is far above
  # the log's floor).
  np.testing.assert_allclose(logmel[0], logmel[1], atol=1e-2)
  image = np.asarray(_features(x, 'image', 1))
  np.testing.assert_array_equal(image[..., 0], logmel)
  samples = np.asarray(_features(x, 'raw', 8))
  assert samples.shape == (2, 1000, 8)
  standard = (x[0] - x[0].mean()) / (x[0].std() + 1e-5)
  np.testing.assert_allclose(samples[0].reshape(-1), standard, atol=1e-5)  # in time order


@pytest.mark.parametrize('features,k,shape', [
    ('logmel', 1, dict(length=100, feature_dim=40)),
    ('image', 1, dict(length=4000, image_shape=(100, 40, 1))),
    ('raw', 1, dict(length=8000, feature_dim=1)),
    ('raw', 16, dict(length=500, feature_dim=16))])
def test_specs_need_no_data_and_match_the_built_tasks(features, k, shape, tmp_path,
                                                      monkeypatch, mini):
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(tmp_path))  # nothing prepared there
  for name in ('spoken_digits', 'speech_commands'):
    spec = data.spec_of(name, features=features, samples_per_step=k)
    assert {f: getattr(spec, f) for f in shape} == shape and spec.kind == 'classify'
    assert not spec.padded and spec.baselines == {}
  if (features, k) == ('raw', 1):
    return  # 8,000 steps of one sample: as raw with 16, only longer to featurise
  built = mini if features == 'logmel' else data.build('spoken_digits_mini',
                                                        features=features, samples_per_step=k)
  assert {f: getattr(built.spec, f) for f in shape} == shape
  per_example = shape.get('image_shape') or (shape['length'], shape['feature_dim'])
  assert built.eval_data['inputs'].shape[1:] == per_example
  assert built.val_data['inputs'].shape[1:] == per_example


@pytest.mark.parametrize('params,message', [
    ({'features': 'mfcc'}, 'features must be one of logmel, image, raw'),
    ({'features': 'raw', 'samples_per_step': 3}, 'samples_per_step must divide 8000'),
    ({'samples_per_step': 4}, 'samples_per_step is for features=raw'),
    ({'snr_min': 30.0}, 'snr_min (30.0) must not exceed snr_max (25.0)'),
    ({'shift': 1.5}, 'shift must be in [0, 1]'),
    ({'test_fraction': 1.0}, 'test_fraction must be in (0, 1)'),
    ({'val_fraction': 0.6, 'test_fraction': 0.4}, 'cannot give 2 test and 3 validation'),
])
def test_bad_parameters_are_one_line_errors(params, message):
  with pytest.raises(ValueError) as e:
    data.build('spoken_digits_mini', **params)
  assert message in str(e.value) and '\n' not in str(e.value)
  if 'val_fraction' not in params:  # the spec checks all but the voice count, without data
    with pytest.raises(ValueError) as e:
      data.spec_of('spoken_digits', **params)
    assert message in str(e.value)


# ---------------------------------------------------------------------------------------
# The per-example draws.

def test_place_moves_the_onset_by_the_offset():
  clip = np.zeros((3, speech.CLIP_SAMPLES), np.float32)
  clip[:, :100] = np.arange(1, 101)  # a word of 100 samples, then silence
  offsets = jnp.array([0, 37, speech.CLIP_SAMPLES - 100])
  moved = np.asarray(speech.place(jnp.asarray(clip), offsets))
  for row, offset in zip(moved, np.asarray(offsets)):
    assert np.flatnonzero(row)[0] == offset  # the onset moves by the shift
    np.testing.assert_array_equal(row[offset:offset + 100], np.arange(1, 101))
    assert np.count_nonzero(row) == 100


def test_shift_offsets_stay_in_the_free_room():
  lengths = jnp.array([1000, 4000, 7999, 8000] * 256)
  key = jax.random.PRNGKey(0)
  anywhere = np.asarray(speech.shift_offsets(key, lengths, 1.0))
  room = speech.CLIP_SAMPLES - np.asarray(lengths)
  assert np.all((anywhere >= 0) & (anywhere <= room))
  assert anywhere[::4].min() < 0.05 * room[0] and anywhere[::4].max() > 0.95 * room[0]
  np.testing.assert_array_equal(speech.shift_offsets(key, lengths, 0.0), np.round(room / 2))
  half = np.asarray(speech.shift_offsets(key, lengths, 0.5))
  assert np.all(np.abs(half - room / 2) <= room / 4 + 1)


def test_noise_has_the_snr_asked():
  rng = np.random.RandomState(0)
  n, lengths = 8, np.full(8, 3000)
  clean = np.zeros((n, speech.CLIP_SAMPLES), np.float32)
  clean[:, :3000] = rng.randn(n, 3000) * rng.uniform(0.01, 0.5, (n, 1))
  snr = jnp.array([0.0, 5.0, 10.0, 20.0, 30.0, 3.3, 17.0, 25.0])
  is_pink = jnp.array([False, True] * 4)
  power = (clean ** 2).sum(axis=1) / lengths
  noisy = np.asarray(speech.add_noise(jax.random.PRNGKey(1), jnp.asarray(clean),
                                      jnp.asarray(power), snr, is_pink))
  noise = noisy - clean
  measured = 10 * np.log10(power / (noise ** 2).mean(axis=1))
  np.testing.assert_allclose(measured, snr, atol=1e-3)


def _slope(noise):
  """The log-log slope of the power spectrum over 50 Hz - 3 kHz (0: white, -1: pink)."""
  f, p = scipy.signal.welch(noise, fs=speech.SAMPLE_RATE, nperseg=512, axis=-1)
  keep = (f > 50) & (f < 3000)
  return np.polyfit(np.log(f[keep]), np.log(p.mean(axis=0)[keep]), 1)[0]


def test_pink_noise_falls_as_one_over_f():
  white = jax.random.normal(jax.random.PRNGKey(2), (64, speech.CLIP_SAMPLES))
  assert _slope(np.asarray(white)) == pytest.approx(0.0, abs=0.1)
  assert _slope(np.asarray(speech.pink(white))) == pytest.approx(-1.0, abs=0.1)


def test_draws_mix_white_and_pink_over_the_snr_range():
  arrays = _arrays()
  clips, lengths, _ = speech.padded_clips(arrays, np.arange(50))
  clips, lengths = np.tile(clips, (8, 1)), np.tile(lengths, 8)
  draws = speech.Draws(shift=1.0, snr_min=5.0, snr_max=25.0)
  audio = np.asarray(jax.jit(draws)(jax.random.PRNGKey(3), clips, lengths))
  # The draws' own onsets (their first key), to take the clean words out again.
  clean = clips.astype(np.float32) / 32768
  power = (clean ** 2).sum(axis=1) / lengths
  offsets = np.asarray(speech.shift_offsets(jax.random.split(jax.random.PRNGKey(3), 4)[0],
                                            jnp.asarray(lengths), 1.0))
  assert len(set(offsets.tolist())) > 300  # onsets spread over the free room
  placed = np.asarray(speech.place(jnp.asarray(clean), jnp.asarray(offsets)))
  noise = audio - placed
  snr = 10 * np.log10(power / (noise ** 2).mean(axis=1))
  assert snr.min() >= 5 - 1e-3 and snr.max() <= 25 + 1e-3
  assert snr.max() - snr.min() > 15  # spread over the range
  slopes = [_slope(noise[i:i + 1]) for i in range(len(noise))]
  assert sum(s < -0.6 for s in slopes) > 0.3 * len(slopes)  # pink
  assert sum(s > -0.3 for s in slopes) > 0.3 * len(slopes)  # white


# ---------------------------------------------------------------------------------------
# The bundled clips: labels, splits by voice, validation apart.

def test_bundled_clips_are_the_prepared_format():
  m, arrays = _manifest(), _arrays()
  assert m['words'] == list(speech.DIGITS) and m['format'] == speech.FORMAT
  assert m['sample_rate'] == speech.SAMPLE_RATE and m['cut'] == 0
  assert {k: m[k] for k in ('accents', 'variants', 'speeds', 'pitches')} == {
      k: list(v) for k, v in speech.BUNDLED_GRID.items()}
  assert m['clips'] == len(arrays['label']) == 50 and m['per_word'] == [5] * 10
  assert arrays['audio'].dtype == np.int16 and arrays['offsets'][-1] == len(arrays['audio'])
  # Stored in grid order: each variant's ten words, zero to nine.
  points = speech.grid(m['accents'], m['variants'], m['speeds'], m['pitches'])
  assert arrays['label'].tolist() == [p[4] for p in points]
  assert [m['variants'][v] for v in arrays['variant']] == [p[1] for p in points]
  lengths = np.diff(arrays['offsets'])
  assert lengths.min() > 0.2 * speech.SAMPLE_RATE and lengths.max() <= speech.CLIP_SAMPLES
  assert (BUNDLED / 'clips.npz').stat().st_size < 500_000


def test_labels_are_the_words_spoken(mini):
  """The task's test labels are those the manifest's grid gives its clips; and, where
  espeak-ng of the manifest's version is here, each bundled clip is the one it speaks for
  its label's word (bit for bit: the synthesis is deterministic)."""
  task = mini
  m, arrays = _manifest(), _arrays()
  (test_voice,) = task.params['voices']['test']
  rows = np.flatnonzero(arrays['variant'] == m['variants'].index(test_voice))
  np.testing.assert_array_equal(task.eval_data['targets'], arrays['label'][rows])
  if ESPEAK is None or speech.espeak_version(ESPEAK) != m['espeak_ng']:
    pytest.skip(f'espeak-ng {m["espeak_ng"]} is not installed: labels checked by the grid only')
  with tempfile.TemporaryDirectory() as folder:
    for row in rows[[0, 3, 7, 9]]:
      word = speech.DIGITS[arrays['label'][row]]
      spoken = speech.synthesise(ESPEAK, word, m['accents'][0], test_voice, m['speeds'][0],
                                 m['pitches'][0], folder)
      stored = arrays['audio'][arrays['offsets'][row]:arrays['offsets'][row + 1]]
      np.testing.assert_array_equal(spoken, stored)


def test_voice_split_is_disjoint_complete_and_seeded():
  train, val, test = speech.voice_split(24, 0.125, 0.2, 0)
  assert (len(train), len(val), len(test)) == (16, 3, 5)
  assert sorted([*train, *val, *test]) == list(range(24))
  assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
  assert [len(s) for s in speech.voice_split(5, 0.125, 0.2, 0)] == [3, 1, 1]
  other = speech.voice_split(24, 0.125, 0.2, 1)
  assert not np.array_equal(test, other[2])
  np.testing.assert_array_equal(test, speech.voice_split(24, 0.125, 0.2, 0)[2])


def test_splits_are_by_voice_and_validation_is_apart():
  """Training batches come from the training voices only, the validation and test sets
  from their own voices, so nothing a model is selected or scored on was heard in
  training. With the noise 200 dB down and the words centred, every example is its clip's
  features, which tells where each came from."""
  task = data.build('spoken_digits_mini', **QUIET)
  voices = task.params['voices']
  assert len(voices['train']) == 3 and len(voices['validation']) == len(voices['test']) == 1
  assert not set(voices['train']) & (set(voices['validation']) | set(voices['test']))
  assert voices['validation'] != voices['test']
  m, arrays = _manifest(), _arrays()
  clips, lengths, labels = speech.padded_clips(arrays, np.arange(50))
  audio = speech.place(jnp.asarray(clips, jnp.float32) / 32768,
                       speech.shift_offsets(jax.random.PRNGKey(0), jnp.asarray(lengths), 0.0))
  clean = np.asarray(_features(audio, 'logmel', 1))
  voice_of = [m['variants'][v] for v in arrays['variant']]

  def sources(inputs):
    distance = np.abs(inputs[:, None] - clean[None]).max(axis=(-2, -1))  # [n, 50]
    assert np.all(distance.min(axis=1) < 1e-2)
    return [voice_of[i] for i in distance.argmin(axis=1)], distance.argmin(axis=1)

  drawn = _draw(task, jax.random.PRNGKey(4), 64)
  drawn_voices, drawn_rows = sources(drawn['inputs'])
  assert set(drawn_voices) == set(voices['train'])
  np.testing.assert_array_equal(drawn['targets'], labels[drawn_rows])
  for split, name in ((task.val_data, 'validation'), (task.eval_data, 'test')):
    got, rows = sources(split['inputs'])
    assert set(got) == set(voices[name]) and len(rows) == 10 == len(set(rows))
    np.testing.assert_array_equal(split['targets'], labels[rows])
  # Baselines from the labels: every word equally often.
  assert task.spec.baselines == digits.class_baselines(
      labels[np.isin(voice_of, voices['train'])], task.eval_data['targets'], 10)


def test_held_out_draws_are_fixed_by_split_seed_not_the_run_seed(mini):
  a, b = mini, data.build('spoken_digits_mini', seed=5)
  np.testing.assert_array_equal(a.eval_data['inputs'], b.eval_data['inputs'])
  np.testing.assert_array_equal(a.val_data['inputs'], b.val_data['inputs'])
  assert not np.allclose(a.val_data['inputs'], a.eval_data['inputs'])
  c = data.build('spoken_digits_mini', split_seed=1)
  assert c.params['voices'] != a.params['voices']
  # Training draws anew per key: the same key, the same batch.
  key = jax.random.PRNGKey(9)
  x, y = _draw(a, key, 16), _draw(a, key, 16)
  np.testing.assert_array_equal(x['inputs'], y['inputs'])
  assert not np.allclose(x['inputs'], _draw(a, jax.random.PRNGKey(10), 16)['inputs'])


# ---------------------------------------------------------------------------------------
# Errors: not prepared, espeak-ng missing; and preparing itself.

def _cli(*args):
  out, err = io.StringIO(), io.StringIO()
  with redirect_stdout(out), redirect_stderr(err):
    code = cli.run(['archbench', *map(str, args)])
  return code, out.getvalue(), err.getvalue()


def test_not_prepared_is_one_line_naming_the_command(tmp_path, monkeypatch):
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(tmp_path))
  with pytest.raises(tfds_tasks.NotPrepared) as e:
    data.build('spoken_digits')
  message = str(e.value)
  assert '\n' not in message and 'not prepared' in message
  assert f'archbench data prepare spoken_digits --data_dir {tmp_path}' in message
  assert 'apt-get install espeak-ng' in message
  assert str(tmp_path / 'spoken_digits' / speech.VERSION / 'manifest.json') in message


def test_missing_espeak_ng_is_one_line_naming_the_package(tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path / 'empty'))  # no espeak-ng on it
  with pytest.raises(speech.PrepareError) as e:
    speech.prepare(tmp_path)
  assert '\n' not in str(e.value) and 'apt-get install espeak-ng' in str(e.value)
  code, out, err = _cli('data', 'prepare', 'spoken_digits', '--data_dir', tmp_path)
  assert code == 1 and out == ''
  assert err.count('\n') == 1 and err.startswith('archbench: error: preparing spoken_digits '
                                                 'needs espeak-ng')
  assert 'apt-get install espeak-ng' in err and 'Traceback' not in err
  assert not (tmp_path / 'spoken_digits').exists()


def test_bad_data_prepare_usage_is_exit_2():
  code, _, err = _cli('data', 'prepare', 'spoken_digit')
  assert code == 2 and err.count('\n') == 1 and 'spoken_digits' in err


def _clip(arrays, variants, variant, word):
  (row,) = np.flatnonzero((arrays['variant'] == variants.index(variant))
                          & (arrays['label'] == word))
  return arrays['audio'][arrays['offsets'][row]:arrays['offsets'][row + 1]]


@pytest.mark.skipif(ESPEAK is None, reason='espeak-ng is not installed')
def test_prepare_two_voices_writes_the_bundled_format(tmp_path, monkeypatch):
  """2 voices x 10 digits through the real synthesis, in the format of the bundled clips
  (their manifest's keys, their arrays' names and types), and, at espeak-ng's version of
  the bundled clips, the same clips; preparing again finds them."""
  grid = {**speech.BUNDLED_GRID, 'variants': ('f2', 'm3')}
  path, fresh = speech.prepare(tmp_path, **grid)
  assert fresh and path == tmp_path / 'spoken_digits' / speech.VERSION
  assert speech.prepare(tmp_path, **grid) == (path, False)
  manifest = json.loads((path / 'manifest.json').read_text())
  assert set(manifest) == set(_manifest()) and manifest['clips'] == 20
  assert manifest['variants'] == ['f2', 'm3'] and manifest['espeak_ng'] == speech.espeak_version(ESPEAK)
  with np.load(path / 'clips.npz') as stored:
    mine = {k: stored[k] for k in stored.files}
  bundled = _arrays()
  assert {k: v.dtype for k, v in mine.items()} == {k: v.dtype for k, v in bundled.items()}
  if manifest['espeak_ng'] == _manifest()['espeak_ng']:
    for variant in ('f2', 'm3'):
      for word in range(10):
        np.testing.assert_array_equal(_clip(mine, manifest['variants'], variant, word),
                                      _clip(bundled, _manifest()['variants'], variant, word))
  # Two voices cannot be split three ways: one line.
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(tmp_path))
  with pytest.raises(ValueError, match='2 voices cannot give 1 test and 1 validation'):
    data.build('spoken_digits')


@pytest.mark.skipif(ESPEAK is None, reason='espeak-ng is not installed')
def test_an_unknown_voice_is_refused(tmp_path):
  with pytest.raises(speech.PrepareError, match='no variant nobody'):
    speech.prepare(tmp_path, accents=('en-us',), variants=('m1', 'nobody'))
  with pytest.raises(speech.PrepareError, match='no accent en-mars'):
    speech.prepare(tmp_path, accents=('en-mars',), variants=('m1',))


def test_wav_reading_and_resampling():
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(22050)
    w.writeframes((np.round(_tone(440.0, 22050, rate=22050) * 20000)).astype('<i2').tobytes())
  samples, rate = speech.read_wav(buffer.getvalue())
  assert rate == 22050 and samples.dtype == np.int16 and len(samples) == 22050
  resampled = speech.to_rate(samples, rate)
  assert len(resampled) == speech.SAMPLE_RATE
  spectrum = np.abs(np.fft.rfft(resampled[1000:-1000]))
  peak = spectrum.argmax() * speech.SAMPLE_RATE / len(resampled[1000:-1000])
  assert peak == pytest.approx(440.0, abs=2.0)
  word = np.zeros(4000, np.float32)
  word[1000:1500] = 20000
  assert len(speech.trim(word)) == 500 + 2 * speech.TRIM_MARGIN


# ---------------------------------------------------------------------------------------
# TFDS speech_commands on its fixture (prepared by the real builder from known clips).

@pytest.fixture
def prepared(monkeypatch):
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(FIXTURES / 'tfds'))


def _commands_raw(split):
  """(clip, label) of every clip the builder was given for `split`, as it stores them."""
  out = []
  for word, names in raw.speech_clip_names(split).items():
    label = raw.SPEECH_LABELS.index(word if word in raw.SPEECH_WORDS else '_unknown_')
    out += [(raw.speech_tone(word, split, i), label) for i in range(len(names))]
  if split == 'test':  # the test archive's own _silence_ and _unknown_ folders
    out = [o for o in out if o[1] != raw.SPEECH_LABELS.index('_unknown_')]
    out.append((raw.speech_tone('bed', 'test', 0), raw.SPEECH_LABELS.index('_unknown_')))
    out.append((raw.speech_noise(2, raw.SPEECH_RATE), raw.SPEECH_LABELS.index('_silence_')))
  else:  # a background-noise file cut to one-second windows
    noise = raw.speech_noise(0 if split == 'train' else 1)
    out.append((noise[:raw.SPEECH_RATE], raw.SPEECH_LABELS.index('_silence_')))
  return out


def test_speech_commands_reads_the_recordings_without_tensorflow(prepared):
  task = data.build('speech_commands')
  assert 'tensorflow' not in sys.modules
  assert task.spec.num_classes == 12 and task.spec.feature_dim == speech.N_MELS
  for split, held in (('test', task.eval_data), ('validation', task.val_data)):
    expected = _commands_raw(split)
    clips = speech.one_second([c for c, _ in expected])
    features = np.asarray(_features(jnp.asarray(clips, jnp.float32) / 32768, 'logmel', 1))
    # TFDS stores examples in its own order: match each held-out example to its clip.
    distance = np.abs(held['inputs'][:, None] - features[None]).max(axis=(-2, -1))
    assert len(held['targets']) == len(expected) and np.all(distance.min(axis=1) < 1e-4)
    assert len(set(distance.argmin(axis=1))) == len(expected)
    np.testing.assert_array_equal(held['targets'],
                                  [expected[i][1] for i in distance.argmin(axis=1)])
  columns = tfds_tasks.read_split('speech_commands', 'train', str(FIXTURES / 'tfds'))
  assert isinstance(columns['audio'], list)  # clips of several lengths
  assert sorted(len(a) for a in columns['audio']) == sorted(len(c) for c, _ in
                                                             _commands_raw('train'))
  assert task.spec.baselines == digits.class_baselines(columns['label'].astype(np.int32),
                                                       task.eval_data['targets'], 12)
  drawn = _draw(task, jax.random.PRNGKey(0), 32)
  assert drawn['inputs'].shape == (32, 100, 40) and set(drawn['targets']) <= set(range(12))


def test_one_second_pads_cuts_and_resamples():
  short, long = np.full(4000, 1000, np.int16), raw.speech_tone('go', 'train', 0)
  long = np.tile(long, 20)[:20000]
  out = speech.one_second([short, long])
  assert out.shape == (2, speech.CLIP_SAMPLES) and out.dtype == np.int16
  assert np.all(out[0, 2100:] == 0) and abs(int(out[0, 1000]) - 1000) <= 2  # padded
  assert np.count_nonzero(out[1, -100:])  # cut to a second, which it fills


def test_speech_commands_sizes(prepared):
  task = data.build('speech_commands', eval_size=5, val_size=4, features='raw',
                    samples_per_step=8)
  assert task.eval_size == 5 and task.val_size == 4
  assert task.eval_data['inputs'].shape == (5, 1000, 8)


# ---------------------------------------------------------------------------------------
# The report's spectrograms.

def test_example_spectrograms_round_trip_into_the_report(tmp_path, mini):
  task = mini
  examples = speech.example_spectrograms(task, per_class=1)
  assert [e['class'] for e in examples] == list(speech.DIGITS)
  for e in examples:
    image = report_section.decode(e)
    assert image.shape == (speech.N_MELS, speech.FRAMES)
    original = task.eval_data['inputs'][np.flatnonzero(task.eval_data['targets']
                                                       == e['label'])[0]].T
    step = (original.max() - original.min()) / (speech.LEVELS - 1)
    np.testing.assert_allclose(image, original, atol=step / 2 + 1e-3)
  assert len(json.dumps(examples)) < 10 * 2500  # about two kilobytes per example
  raw_task = data.build('spoken_digits_mini', features='raw', samples_per_step=8)
  again = speech.example_spectrograms(raw_task, per_class=1)
  step = (examples[0]['hi'] - examples[0]['lo']) / (speech.LEVELS - 1)
  np.testing.assert_allclose(report_section.decode(again[0]), report_section.decode(examples[0]),
                             atol=step + 0.01)  # the same clip, its log-mel from samples
  record = {'status': 'ok', 'task': 'spoken_digits_mini', 'arch': 'lstm',
            'config': {'task': {'features': 'logmel'}},
            'metrics': {'eval/accuracy': 0.5, 'examples/logmel': examples}}
  text = '\n\n'.join(report_section.markdown([record, {**record, 'arch': 'gru'}]))
  assert report_section.HEADING in text and 'spectrograms_spoken_digits_mini.png' in text
  assert text.count('| spoken_digits_mini |') == 1  # the same examples drawn once
  (path,) = report_section.write_plots(tmp_path, [record])
  assert path.name == 'spectrograms_spoken_digits_mini.png' and path.stat().st_size > 5000
  assert report_section.markdown([{**record, 'status': 'error'}]) == []


# ---------------------------------------------------------------------------------------
# End to end (slow): every view through the harness, the evaluator writing the examples.

@pytest.mark.slow
@pytest.mark.parametrize('arch,task,params', [
    ('lstm', 'spoken_digits_mini', {}),
    ('cnn', 'spoken_digits_mini', {'features': 'image'}),
    ('tcn', 'spoken_digits_mini', {'features': 'raw', 'samples_per_step': 8}),
    ('vit', 'speech_commands', {'features': 'image'})])
def test_speech_through_a_training_cell(arch, task, params, monkeypatch):
  from archbench.benchmarks.core import Cell, TrainConfig
  from archbench.benchmarks.harness import runner
  monkeypatch.setenv(tfds_tasks.ENV_VAR, str(FIXTURES / 'tfds'))
  train = TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, steps_per_dispatch=2,
                      eval_batch_size=32)
  cell = Cell(arch, task, 'tiny', train=train, fast_compile=True, task_params=params)
  record = runner.run_cell(cell, suite='test', run_id='test', env={})
  assert record['status'] == 'ok', record['error']
  assert 0 <= record['metrics']['eval/accuracy'] <= 1
  # The evaluator's examples: two a class where the test set has them (one test voice of
  # spoken_digits_mini: one a word; one test clip a class in the speech_commands fixture).
  classes = [e['class'] for e in record['metrics']['examples/logmel']]
  assert classes == list(speech.SPEECH_TASKS[task])
