"""TensorBoard event files of the training curves (`--config.log.tensorboard=True`, or its
older spelling `--config.tensorboard=True`), written by tensorboardX through the tracker
interface (results/trackers.py) and read back here from the files themselves."""
import struct

import pytest

from archbench.benchmarks import cli
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import tensorboard_events, trackers

event_pb2 = pytest.importorskip('tensorboardX.proto.event_pb2',
                                reason='tensorboardX is the `tensorboard` extra')


def _scalars(directory) -> list[tuple[int, str, float]]:
  """(step, tag, value) of every scalar in a directory's event files: TFRecord framing
  (length, its CRC, the Event proto, its CRC) read by hand, since tensorboardX only writes."""
  out = []
  for path in sorted(directory.glob('events.out.tfevents.*')):
    data = path.read_bytes()
    i = 0
    while i < len(data):
      (length,) = struct.unpack('<Q', data[i:i + 8])
      event = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
      out += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
      i += 12 + length + 4
  return out


def test_a_cell_is_its_curve_and_its_eval_metrics(tmp_path):
  record = {'arch': 'my/arch', 'task': 'copy', 'size': 'tiny', 'seed': 1,
            'cell_id': '0123456789abcdef',
            'metrics': {'eval/accuracy': 0.5, 'eval/loss': 1.25, 'train/steps': 30,
                        'solved': False, 'lrd/grad_init': [1.0, 0.5]},
            'curves': {'train/loss': [[10, 2.0], [20, 1.5], [30, None]]}}
  (tracker,) = trackers.chosen(trackers.Settings(tensorboard=True))
  tracker.start(tmp_path, {'run_id': 'r', 'suite': 's'})
  tracker.write_cell(record)
  path = tmp_path / 'tensorboard' / 'my_arch-copy-tiny-s1-01234567'
  assert _scalars(path) == [(10, 'train/loss', 2.0), (20, 'train/loss', 1.5),
                            (30, 'eval/accuracy', 0.5), (30, 'eval/loss', 1.25)]
  tracker.write_cell(record)  # recorded again: replaced, not doubled
  tracker.finish(tmp_path)
  tracker.close()
  assert len(_scalars(path)) == 4


def test_the_older_flag_asks_for_the_same_tracker():
  """`--config.tensorboard=True`, as commands and run.json plans from before `log` say it."""
  config = config_lib.load('smoke')
  assert config_lib.trackers(config) == {}
  config.tensorboard = True
  older = config_lib.trackers(config)
  config.tensorboard, config.log.tensorboard = False, True
  assert config_lib.trackers(config) == older == trackers.Settings(tensorboard=True).to_dict()


def test_a_run_that_asks_for_them_writes_them(tmp_path):
  code = cli.run(['archbench', 'run', '--suite', 'smoke', '--archs', 'rnn', '--tasks',
                  'adding', '--workers', '1', '--config.train.steps=6',
                  '--config.train.steps_per_dispatch=2', '--config.log.tensorboard=True',
                  '--out', str(tmp_path)])
  assert code == 0
  (record,) = records_lib.load_records(tmp_path / 'results.jsonl')
  [cell] = (tmp_path / 'tensorboard').iterdir()
  assert cell.name == tensorboard_events.cell_name(record)
  losses = [(step, value) for step, tag, value in _scalars(cell) if tag == 'train/loss']
  assert [s for s, _ in losses] == [s for s, _ in record['curves']['train/loss']] == [2, 4, 6]
  # float32 in the event file, the record's float64.
  assert [v for _, v in losses] == pytest.approx([v for _, v in record['curves']['train/loss']])
