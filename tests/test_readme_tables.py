"""The results tables of the README, results/README.md and the manual (docs/) are generated
from the committed runs (benchmarks/results/readme_tables.py, run by tools/readme_tables.py):
the repository's copies are current, a hand edit is caught, a section selector picks its
section, and bad markers are usage errors. Also: the README stays a front page, and every docs/ page is in mkdocs.yml."""

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

from archbench.benchmarks.results import readme_tables as rt

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'readme_tables.py'
_spec = importlib.util.spec_from_file_location('readme_tables_tool', TOOL)
tool = importlib.util.module_from_spec(_spec)  # tools/ is not installed: loaded by path
_spec.loader.exec_module(tool)

SOURCE = """\
# archbench summary: suite `demo`

2 cells, 2 ok

## Accuracy (headline metric on held-out data)

legend line

| arch | adding |
|---|---|
| rnn | 0.5 |

## Long-range dependencies: longest solved length

| arch | adding |
|---|---|
| rnn | 16 |

### Accuracy versus length: adding

| arch | L=16 |
|---|---|
| rnn | 0.1 |

## Performance

| arch | step ms |
|---|---|
| rnn | 3.0 |
"""


def _repo(tmp_path, readme: str) -> pathlib.Path:
  (tmp_path / 'results' / 'demo').mkdir(parents=True)
  (tmp_path / 'results' / 'demo' / 'summary.md').write_text(SOURCE, encoding='utf-8')
  (tmp_path / 'README.md').write_text(readme, encoding='utf-8')
  return tmp_path


def _block(source: str, body: str = 'old') -> str:
  return f'<!-- archbench:table {source} -->\n\n{body}\n\n<!-- /archbench:table -->\n'


def _run(*args, cwd=ROOT):
  return subprocess.run([sys.executable, str(TOOL), *args], cwd=cwd, capture_output=True,
                        text=True, timeout=120)


CHECKED_FILES = rt.expand(ROOT, rt.DEFAULT_FILES)
README_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/archbench run",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q",
)


def _sources(names) -> list[str]:
  return [b.source for name in names
          for b in rt.find_blocks((ROOT / name).read_text(encoding='utf-8'), name)]


@pytest.mark.parametrize('name', CHECKED_FILES)
def test_repository_file_is_current(name):
  """Each file the command fills (README.md, results/README.md, every docs/ page) holds
  exactly what it generates."""
  assert rt.stale_blocks(ROOT, [name]) == [], f'run: {rt.COMMAND}'


def test_repository_files_hold_the_generated_tables():
  """The default files include every docs/ page, and the tables are there (an emptied
  README or manual would pass the staleness check vacuously)."""
  assert CHECKED_FILES[:2] == ['README.md', 'results/README.md']
  pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / 'docs').rglob('*.md'))
  assert len(pages) >= 10 and CHECKED_FILES[2:] == pages
  readme = (ROOT / 'README.md').read_text(encoding='utf-8')
  assert 'results/quick-cpu/summary.md#Accuracy (headline metric on held-out data)' in (
      _sources(['README.md']))
  assert rt.find_blocks((ROOT / 'results' / 'README.md').read_text(encoding='utf-8'),
                        'results/README.md')
  manual = _sources(pages)
  assert 'benchmarks/results/record.schema.json' in manual  # the schema, in full
  for prefix in ('results/quick-cpu/summary.md#', 'results/lrd-cpu/summary.md#',
                 'results/scaling-cpu/summary.md#', 'results/tcn-table1-cpu/reproduction.md#',
                 'results/chomsky-cpu/reproduction.md#',
                 'results/lra-listops-cpu/reproduction.md#', 'results/perf-cpu/vs_torch.md'):
    assert any(s.startswith(prefix) for s in manual), prefix
  # The quick accuracy table in the README is the committed summary's, row for row.
  summary = (ROOT / 'results' / 'quick-cpu' / 'summary.md').read_text(encoding='utf-8')
  accuracy = summary.split('## Accuracy')[1].split('## ')[0]
  rows = [line for line in accuracy.splitlines() if line.startswith('| ')]
  assert len(rows) > 10 and all(f'\n{row}\n' in readme for row in rows)


def test_readme_is_a_front_page():
  """README.md is read in two minutes: at most 250 lines, the two commands verbatim, each
  on a line of its own (.ci/run greps the test command), and links into the manual."""
  readme = (ROOT / 'README.md').read_text(encoding='utf-8')
  lines = readme.splitlines()
  assert len(lines) <= 250
  for command in README_COMMANDS:
    assert command in lines, command
  assert f'TEST_COMMAND="{README_COMMANDS[1]}"' in (ROOT / '.ci' / 'run').read_text()
  for link in re.findall(r'\]\((docs/[^)#]+)', readme):
    assert (ROOT / link).is_file(), link


def test_every_docs_page_is_in_the_navigation():
  """mkdocs.yml's nav lists every page in docs/ once, and nothing else (mkdocs --strict
  also fails on an omitted page, but only where the docs extra is installed)."""
  yaml = pytest.importorskip('yaml')
  config = yaml.safe_load((ROOT / 'mkdocs.yml').read_text(encoding='utf-8'))
  assert config['theme']['name'] == 'material' and config['strict'] is True

  def pages(node):
    if isinstance(node, str):
      return [node]
    if isinstance(node, list):
      return [p for item in node for p in pages(item)]
    return [p for value in node.values() for p in pages(value)]

  nav = pages(config['nav'])
  assert len(nav) == len(set(nav))
  on_disk = sorted(p.relative_to(ROOT / 'docs').as_posix() for p in (ROOT / 'docs').rglob('*.md'))
  assert sorted(nav) == on_disk


def test_check_command_on_the_repository_exits_0():
  proc = _run('--check')
  assert proc.returncode == 0, proc.stderr
  assert proc.stderr == ''


def test_committed_summaries_are_what_report_writes():
  """The blocks copy summary.md rather than recompute: that holds only while each
  committed summary.md is what `archbench report` builds from its results.jsonl."""
  from archbench.benchmarks.results import records as records_lib
  from archbench.benchmarks.results import report
  folders = sorted({pathlib.PurePosixPath(source.split('#')[0]).parent
                    for source in _sources(CHECKED_FILES)
                    if source.split('#')[0].endswith('/summary.md')})
  assert len(folders) >= 3, folders
  for folder in folders:
    records = records_lib.load_records(ROOT / folder / 'results.jsonl')
    records.sort(key=lambda r: (r.get('config') or {}).get('cell_index', 0))
    committed = (ROOT / folder / 'summary.md').read_text(encoding='utf-8')
    assert report.summary_markdown(records) == committed, (
        f'{folder}/summary.md is stale: run archbench report {folder}')


def test_fill_then_stale_block_detected(tmp_path):
  root = _repo(tmp_path, 'intro\n\n' + _block('results/demo/summary.md#Performance')
               + '\nafter\n')
  assert rt.stale_blocks(root, ['README.md']) == [
      'README.md:3 (results/demo/summary.md#Performance)']
  assert rt.update(root, ['README.md']) == {'README.md': (1, 1)}
  text = (root / 'README.md').read_text(encoding='utf-8')
  assert text == ('intro\n\n' + _block('results/demo/summary.md#Performance',
                                       '| arch | step ms |\n|---|---|\n| rnn | 3.0 |')
                  + '\nafter\n')
  assert rt.stale_blocks(root, ['README.md']) == []
  assert rt.update(root, ['README.md']) == {'README.md': (1, 0)}  # idempotent

  # A hand edit of one number inside the block is stale; the command names it.
  (root / 'README.md').write_text(text.replace('| rnn | 3.0 |', '| rnn | 2.9 |'))
  proc = _run('--check', '--root', str(root), 'README.md')
  assert proc.returncode == 1
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1
  assert 'README.md:3' in lines[0] and 'results/demo/summary.md#Performance' in lines[0]
  assert (root / 'README.md').read_text() != text  # --check wrote nothing
  # A changed source makes the block stale as well; regenerating fixes it.
  src = root / 'results' / 'demo' / 'summary.md'
  src.write_text(SOURCE.replace('| rnn | 3.0 |', '| rnn | 4.0 |'))
  assert _run('--root', str(root), 'README.md').returncode == 0
  assert '| rnn | 4.0 |' in (root / 'README.md').read_text()
  assert _run('--check', '--root', str(root), 'README.md').returncode == 0


def test_text_outside_blocks_is_kept(tmp_path):
  readme = ('# Title\n\nprose | with a pipe\n\n' + _block('results/demo/summary.md#Performance')
            + '\nmiddle\n\n' + _block('results/demo/summary.md#longest solved length')
            + '\nend, no newline')
  root = _repo(tmp_path, readme)
  rt.update(root, ['README.md'])
  text = (root / 'README.md').read_text()
  assert text.startswith('# Title\n\nprose | with a pipe\n\n')
  assert '\nmiddle\n' in text and text.endswith('\nend, no newline')
  assert 'old' not in text


def test_section_selector_picks_its_section():
  # Exact heading (case and spaces aside): the lines under it, up to the next heading of
  # any level, so a subsection is left out.
  section = rt.select_section(SOURCE, 'long-range dependencies:  LONGEST solved length', 'x')
  assert section == '| arch | adding |\n|---|---|\n| rnn | 16 |'
  # Part of exactly one heading.
  assert rt.select_section(SOURCE, 'longest solved length', 'x') == section
  # A subsection by its own heading; the last section runs to the end of the file.
  assert rt.select_section(SOURCE, 'Accuracy versus length: adding', 'x').endswith('| 0.1 |')
  assert rt.select_section(SOURCE, 'Performance', 'x') == (
      '| arch | step ms |\n|---|---|\n| rnn | 3.0 |')
  # The legend line belongs to its section; the title's section is the line under it.
  assert rt.select_section(SOURCE, 'Accuracy (headline metric on held-out data)', 'x') \
      .startswith('legend line\n\n| arch | adding |')
  assert rt.select_section(SOURCE, 'suite `demo`', 'x') == '2 cells, 2 ok'
  # An exact match wins over a part of another heading.
  assert rt.select_section('## adding\n\na\n\n## adding, L=128\n\nb\n', 'adding', 'x') == 'a'
  # A part of two headings is ambiguous ("Accuracy" starts two of them).
  with pytest.raises(rt.UsageError, match='ambiguous'):
    rt.select_section(SOURCE, 'accuracy', 'x')
  with pytest.raises(rt.UsageError, match='matches no heading'):
    rt.select_section(SOURCE, 'Throughput', 'x')


def test_section_selector_ignores_headings_in_code():
  text = '## A\n\n```\n## not a heading\n```\n\nbody of A\n\n## B\n\nb\n'
  assert rt.select_section(text, 'A', 'x') == '```\n## not a heading\n```\n\nbody of A'
  with pytest.raises(rt.UsageError):
    rt.select_section(text, 'not a heading', 'x')


def test_reproduction_file_included_whole_or_by_section(tmp_path):
  """Any generated Markdown file, e.g. a reproduction's, is a source like summary.md."""
  reproduction = ('# Reproduction of quick-cpu\n\n## Verdicts\n\n| cell | verdict |\n'
                  '|---|---|\n| lstm/adding | same |\n\n## Environment\n\nx86\n')
  root = _repo(tmp_path, _block('results/demo/reproduction.md#Verdicts')
               + _block('results/demo/reproduction.md'))
  (root / 'results' / 'demo' / 'reproduction.md').write_text(reproduction)
  rt.update(root, ['README.md'])
  text = (root / 'README.md').read_text()
  assert text == (_block('results/demo/reproduction.md#Verdicts',
                         '| cell | verdict |\n|---|---|\n| lstm/adding | same |')
                  + _block('results/demo/reproduction.md', reproduction.strip('\n')))


def test_a_source_that_is_not_markdown_is_a_code_block(tmp_path):
  """A JSON file (the record's schema) is taken whole, fenced in its language; it has no
  sections, and a fence inside it would end the block early."""
  root = _repo(tmp_path, _block('results/demo/schema.json'))
  (root / 'results' / 'demo' / 'schema.json').write_text('{\n  "type": "object"\n}\n')
  rt.update(root, ['README.md'])
  assert (root / 'README.md').read_text() == _block(
      'results/demo/schema.json', '```json\n{\n  "type": "object"\n}\n```')
  assert rt.stale_blocks(root, ['README.md']) == []
  with pytest.raises(rt.UsageError, match='is not Markdown'):
    rt.render('results/demo/schema.json#type', root)
  (root / 'results' / 'demo' / 'schema.json').write_text('```\n')
  with pytest.raises(rt.UsageError, match='holds ```'):
    rt.render('results/demo/schema.json', root)


def test_markers_in_a_code_example_are_not_blocks():
  text = 'how:\n\n```\n' + _block('results/none.md') + '```\n'
  assert rt.find_blocks(text, 'README.md') == []


@pytest.mark.parametrize('marker, message', [
    ('results/missing/summary.md', r'README\.md:1: source file results/missing/summary\.md '
                                   r'does not exist'),
    ('results/demo/summary.md#No such heading', r"README\.md:1: section 'No such heading' "
                                                r'matches no heading'),
    ('results/demo/summary.md#', r'README\.md:1: empty section'),
    ('../outside.md', r'must be a path inside the repository'),
])
def test_bad_source_is_a_usage_error(tmp_path, marker, message):
  root = _repo(tmp_path, _block(marker) + '\nkeep me\n')
  before = (root / 'README.md').read_text()
  for args in (['--root', str(root), 'README.md'],
               ['--check', '--root', str(root), 'README.md']):
    proc = _run(*args)
    assert proc.returncode == 2, proc
    assert proc.stdout == ''
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    assert 'Traceback' not in proc.stderr
    assert re.search(message, lines[0]), lines[0]
  assert (root / 'README.md').read_text() == before  # nothing written


@pytest.mark.parametrize('readme, message', [
    ('<!-- archbench:table results/demo/summary.md#Performance -->\n\nx\n', 'never closed'),
    ('x\n<!-- /archbench:table -->\n', 'without an opening marker'),
    (_block('results/demo/summary.md#Performance').replace('-->\n\nold',
                                                          '-->\n' + _block('a.md')),
     'opens inside the block'),
])
def test_malformed_markers_are_usage_errors(tmp_path, readme, message):
  root = _repo(tmp_path, readme)
  with pytest.raises(rt.UsageError, match=message):
    rt.stale_blocks(root, ['README.md'])
  assert tool.main(['--root', str(root), 'README.md']) == 2
  assert (root / 'README.md').read_text() == readme


def test_a_bad_marker_in_one_file_leaves_every_file_unwritten(tmp_path):
  root = _repo(tmp_path, _block('results/demo/summary.md#Performance'))
  (root / 'other.md').write_text(_block('results/gone.md'))
  assert tool.main(['--root', str(root), 'README.md', 'other.md']) == 2
  assert 'old' in (root / 'README.md').read_text()


def test_glob_patterns_expand_to_their_files(tmp_path):
  """docs/**/*.md (a default FILE) names every page, nested ones included, sorted; each
  page's blocks are filled like the README's."""
  root = _repo(tmp_path, 'no blocks\n')
  (root / 'docs' / 'studies').mkdir(parents=True)
  (root / 'docs' / 'index.md').write_text(_block('results/demo/summary.md#Performance'))
  (root / 'docs' / 'studies' / 'a.md').write_text(_block('results/demo/summary.md'))
  assert rt.expand(root, ['README.md', 'docs/**/*.md', 'docs/index.md']) == [
      'README.md', 'docs/index.md', 'docs/studies/a.md']
  assert rt.stale_blocks(root, ['docs/**/*.md']) == [
      'docs/index.md:1 (results/demo/summary.md#Performance)',
      'docs/studies/a.md:1 (results/demo/summary.md)']
  assert rt.update(root, ['README.md', 'docs/**/*.md']) == {
      'README.md': (0, 0), 'docs/index.md': (1, 1), 'docs/studies/a.md': (1, 1)}
  assert '| rnn | 3.0 |' in (root / 'docs' / 'index.md').read_text()
  assert _run('--check', '--root', str(root), 'docs/**/*.md').returncode == 0


def test_glob_pattern_matching_nothing_is_a_usage_error(tmp_path, capsys):
  root = _repo(tmp_path, _block('results/demo/summary.md#Performance'))
  assert tool.main(['--root', str(root), 'README.md', 'docs/**/*.md']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'docs/**/*.md: matches no file' in err[0]
  assert 'old' in (root / 'README.md').read_text()  # nothing written


def test_missing_target_file_is_a_usage_error(tmp_path, capsys):
  assert tool.main(['--check', '--root', str(tmp_path), 'README.md']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'README.md: no such file' in err[0]
