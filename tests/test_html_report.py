"""Reports for a paper, from records alone: training curves (plot), summary.tex (booktabs)
and report.html (self-contained, every value escaped, nothing from the network), the page
opened in a real browser (headless Chromium) when one is installed."""
import base64
import html.parser
import json
import shutil
import subprocess

import numpy as np
import pytest

from archbench.benchmarks.core import Cell
from archbench.benchmarks.results import compare
from archbench.benchmarks.results import curves
from archbench.benchmarks.results import html_report
from archbench.benchmarks.results import markup
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report
from archbench.benchmarks.results import sections

EVIL_ARCH = '<script>alert(1)</script>'
EVIL_ERROR = 'ValueError: <img src=x onerror=alert(2)> at 100% & $x_1 {y} ~ ^ \\ #'
ENV = {'backend': 'cpu', 'device_kind': 'cpu', 'device_count': 1, 'cpu': 'Test CPU',
       'jax': '0.4.30', 'flax': '0.10.0', 'packages': {'jax': '0.4.30', 'optax': None},
       'cpu_features': ['avx2', 'fma'], 'git_commit': 'abc123', 'command': 'archbench run'}
PNG = b'\x89PNG\r\n\x1a\n'


def _record(arch, task='copy', seed=0, *, status='ok', value=0.9, scale=1.0,
            steps=(10, 20, 30, 40), error=None):
  """A schema-4 record as the runner writes it, with a training curve."""
  cell = Cell(arch=arch, task=task, size='tiny', seed=seed, task_params={'length': 8})
  ok = status == 'ok'
  curve = [[s, scale * 2.0 / (1 + s / 10)] for s in steps]
  if status == 'diverged':
    curve[-1][1] = None  # a non-finite loss, as JSON writes it
  return {
      'schema': 4, 'run_id': 'run-1', 'cell_id': cell.digest, 'suite': 'paper', 'arch': arch,
      'task': task, 'size': 'tiny', 'seed': seed,
      'config': {'cell': cell.to_dict(), 'task': {'length': 8},
                 'task_spec': {'metric': 'eval/accuracy', 'higher_is_better': True,
                               'solved': 0.95}},
      'status': status, 'error': error,
      'metrics': {'eval/accuracy': value, 'eval/loss': 1 - value, 'train/loss': curve[-1][1],
                  'baseline/eval/accuracy': 0.125} if ok else {},
      'perf': {'params': 1000, 'step_ms': 2.5, 'compile_s': 1.0} if ok else {},
      'curves': {'train/loss': curve}, 'env': ENV, 'ran_on': {'host': 'h'}}


def _records():
  return [_record('lstm', seed=0, value=0.8), _record('lstm', seed=1, value=0.9, scale=1.5),
          _record('transformer', value=0.99, scale=0.5),
          _record('lstm', task='adding', steps=(5, 10)),
          _record(EVIL_ARCH, status='diverged', error=EVIL_ERROR)]


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('run')
  records = _records()
  for r in records:
    records_lib.append_record(tmp_path / 'results.jsonl', r)
  # The verdicts of `archbench reproduce`, against a run whose lstm did worse.
  base = json.loads(json.dumps(records))
  base[0]['metrics']['eval/accuracy'] = 0.1
  compare.write(tmp_path, compare.compare(base, records, timing=False))
  report.write_summaries(tmp_path, plots=True)
  return tmp_path


class _Page(html.parser.HTMLParser):
  """Every tag and attribute of a page, and its text."""

  def __init__(self):
    super().__init__()
    self.tags, self.text = [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append((tag, dict(attrs)))

  def handle_data(self, data):
    self.text.append(data)


def _parse(text: str) -> _Page:
  page = _Page()
  page.feed(text)
  return page


# ---------------------------------------------------------------------------------------
# Curves.

def test_curve_plot_one_line_per_architecture_mean_over_seeds(tmp_path):
  records = _records() + [dict(_record('gru'), curves={})]  # older records: no curve
  groups = curves.curve_groups(records)
  assert list(groups) == ['copy', 'adding']
  assert list(groups['copy']['copy']) == ['lstm', 'transformer', EVIL_ARCH]
  steps, mean, low, high = curves.over_seeds(groups['copy']['copy']['lstm'])
  assert steps.tolist() == [10, 20, 30, 40]
  np.testing.assert_allclose(mean, 1.25 * 2.0 / (1 + steps / 10))
  np.testing.assert_allclose(low, 2.0 / (1 + steps / 10))
  # The diverged cell's None (a NaN loss) is left out, its finite points kept.
  assert curves.over_seeds(groups['copy']['copy'][EVIL_ARCH])[0].tolist() == [10, 20, 30]
  written = report.write_plots(tmp_path, records)
  assert [p.name for p in written] == ['curves_copy.png', 'curves_adding.png']
  for path in written:
    assert path.read_bytes()[:8] == PNG


# ---------------------------------------------------------------------------------------
# Report sections.

def test_a_plugin_section_comes_after_the_built_in_studies(monkeypatch, tmp_path):
  """A plug-in's section, even one registered before report.py registered the built-in
  studies, shows after them: Markdown before the performance table, plots before the
  training curves."""
  plugin = sections.Section('weight_norm', lambda records: ['## Weight norm', 'norms'],
                            lambda out_dir, records: [out_dir / 'weight_norm.png'])
  monkeypatch.setattr(sections, '_SECTIONS', {'weight_norm': plugin, **sections._SECTIONS})
  assert sections.names() == [*sections.BUILT_IN, 'weight_norm']
  text = report.summary_markdown(_records())
  assert text.index('## Held-out loss') < text.index('## Weight norm') < text.index(
      '## Performance') < text.index('## Failed cells')
  written = report.write_plots(tmp_path, _records())
  assert [p.name for p in written] == ['weight_norm.png', 'curves_copy.png',
                                       'curves_adding.png']


# ---------------------------------------------------------------------------------------
# LaTeX.

def test_latex_escapes_every_special_character():
  assert markup.latex_escape('_ & % # $ { } ~ ^ \\') == (
      r'\_ \& \% \# \$ \{ \} \textasciitilde{} \textasciicircum{} \textbackslash{}')
  assert markup.inline_latex('*baseline* `a_b` **x** 0.9 ± 0.1 ✓') == (
      r'\emph{baseline} \texttt{a\_b} \textbf{x} 0.9 $\pm$ 0.1 \checkmark{}')


def test_summary_tex_has_the_summary_tables_in_booktabs(run_dir):
  tex = (run_dir / 'summary.tex').read_text()
  md = (run_dir / 'summary.md').read_text()
  tables = sum(b.kind == 'table' for b in markup.blocks(md))
  assert tables == 4  # accuracy, held-out loss, the aggregate across tasks, performance
  for command in (r'\toprule', r'\midrule', r'\bottomrule', r'\begin{tabular}',
                  r'\end{table}'):
    assert tex.count(command) == tables, command
  assert r'\caption[{Accuracy (headline metric on held-out data)}]' in tex
  assert r'\label{tab:held-out-loss}' in tex
  # The markup of a name is text: < > set as text commands, no raw character left.
  assert r'\textless{}script\textgreater{}alert(1)\textless{}/script\textgreater{}' in tex
  body = '\n'.join(line for line in tex.splitlines() if not line.startswith('%'))
  assert '<' not in body and '_' not in body.replace(r'\_', '')
  # A row per architecture, the baseline first; numbers right-aligned, words left.
  assert r'\emph{baseline} & 0.125 & 0.125 \\' in tex
  assert r'lstm & 0.850 [0.215, 1.000] n=2 & 0.900 \ddag{} \\' in tex  # t interval, 1 seed
  assert r'\begin{tabular}{lllrrr}' in tex  # arch, task, status, params, compile s, step ms


def test_summary_tex_compiles(run_dir, tmp_path):
  """\\input into a document with the two packages it names, it compiles with pdflatex
  (default OT1 fonts), every character set."""
  if shutil.which('pdflatex') is None:
    pytest.skip('no pdflatex: `apt-get install texlive-latex-recommended` (Debian)')
  (tmp_path / 'paper.tex').write_text(
      '\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{amssymb}\n'
      f'\\begin{{document}}\n\\input{{{run_dir / "summary.tex"}}}\n\\end{{document}}\n')
  run = subprocess.run(['pdflatex', '-interaction=nonstopmode', '-halt-on-error', 'paper.tex'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stdout[-3000:]
  assert 'Missing character' not in (tmp_path / 'paper.log').read_text()


# ---------------------------------------------------------------------------------------
# HTML.

def test_markdown_tables_keep_a_pipe_inside_a_cell():
  text = records_lib.markdown_table(['a', 'b|c'], [['x|y', '1']])
  [table] = markup.blocks(text)
  assert (table.header, table.rows) == (['a', 'b|c'], [['x|y', '1']])


def test_report_html_is_self_contained_and_escapes_every_value(run_dir):
  text = (run_dir / 'report.html').read_text()
  page = _parse(text)
  tags = [tag for tag, _ in page.tags]
  # Values are text: the arch name and the error message are escaped, never markup.
  assert '&lt;script&gt;alert(1)&lt;/script&gt;' in text
  assert '&lt;img src=x onerror=alert(2)&gt;' in text
  assert '<script' not in text.lower() and '<img src=x' not in text
  assert EVIL_ARCH in ''.join(page.text) and EVIL_ERROR.split(' at ')[0] in ''.join(page.text)
  assert not {'script', 'link', 'iframe', 'object', 'embed', 'base', 'form'} & set(tags)
  # Nothing from the network: no URL anywhere, every image an embedded PNG.
  assert 'http://' not in text and 'https://' not in text and 'url(' not in text
  images = [attrs for tag, attrs in page.tags if tag == 'img']
  pngs = sorted(p.name for p in run_dir.glob('*.png'))
  assert sorted(a['alt'] for a in images) == pngs == ['curves_adding.png', 'curves_copy.png']
  for attrs in images:
    prefix = 'data:image/png;base64,'
    assert attrs['src'].startswith(prefix)
    assert base64.b64decode(attrs['src'][len(prefix):])[:8] == PNG
  for tag, attrs in page.tags:
    for name, value in attrs.items():
      assert not name.startswith('on'), (tag, name)
      if name in ('src', 'href', 'srcset', 'action', 'poster', 'data'):
        assert tag == 'img' and name == 'src', (tag, name, value)
  csp = [a for tag, a in page.tags if tag == 'meta' and a.get('http-equiv')]
  assert csp == [{'http-equiv': 'Content-Security-Policy',
                  'content': html_report.CONTENT_SECURITY_POLICY}]
  # Tables as HTML tables: the summary's three, the comparison's, the environment.
  assert tags.count('table') >= 5 and '|---|' not in text
  headings = [t.strip() for t in page.text if t.strip()]
  for heading in ('Accuracy (headline metric on held-out data)', 'Plots',
                  'Reproduction: verdicts against the run reproduced', 'Environment'):
    assert heading in headings, heading
  assert 'Regressions:' not in text and 'better' in text  # the verdict rows are there
  for value in ('Test CPU', 'jax 0.4.30, optax None', 'avx2 fma', 'abc123', 'run-1'):
    assert value in text, value


def test_extra_sections_are_escaped_too():
  section = ('Extra <b>', '# Verdicts\n\n| cell | verdict |\n|---|---|\n| <i>x</i> | same |')
  records = _records()
  text = html_report.page(records, report.summary_markdown(records), [], [section])
  assert '<h2>Extra &lt;b&gt;</h2>' in text and '<h3>Verdicts</h3>' in text
  assert '<td>&lt;i&gt;x&lt;/i&gt;</td><td>same</td>' in text


# ---------------------------------------------------------------------------------------
# In a browser.

def _chromium() -> str | None:
  return next(filter(None, map(shutil.which, ('chromium', 'chromium-browser',
                                             'google-chrome'))), None)


def test_report_html_in_headless_chromium(run_dir, tmp_path):
  """The page as a reader sees it: Chromium parses it (the DOM holds the summary, the
  injected markup as text), draws it (a screenshot that is not blank), and tries to load
  nothing: the page's Content-Security-Policy would report any attempt on the console,
  and the host resolver maps every name to nowhere, so the test itself stays offline."""
  chromium = _chromium()
  if chromium is None:
    pytest.skip('no Chromium: `apt-get install chromium` (Debian) to open report.html '
                'in a real browser')
  url = (run_dir / 'report.html').as_uri()
  flags = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           f'--user-data-dir={tmp_path / "profile"}', '--host-resolver-rules=MAP * ~NOTFOUND',
           '--enable-logging=stderr', '--v=0']
  dom = subprocess.run([*flags, '--dump-dom', url], capture_output=True, text=True,
                       timeout=120)
  assert dom.returncode == 0, dom.stderr[-2000:]
  assert '<h1>archbench summary: suite <code>paper</code></h1>' in dom.stdout
  assert '&lt;script&gt;alert(1)&lt;/script&gt;' in dom.stdout
  assert '<script' not in dom.stdout and dom.stdout.count('<img ') == 2
  shot = tmp_path / 'report.png'
  run = subprocess.run([*flags, f'--screenshot={shot}', '--window-size=1200,1600', url],
                       capture_output=True, text=True, timeout=120)
  assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
  for log in (dom.stderr, run.stderr):  # a blocked load or script is a console message
    assert 'Content Security Policy' not in log and 'CONSOLE' not in log, log[-2000:]
  import matplotlib.image
  pixels = matplotlib.image.imread(shot)[..., :3]
  assert pixels.shape[:2] == (1600, 1200)
  assert pixels.reshape(-1, 3).std(axis=0).max() > 0.05  # not one colour
  dark = (pixels.min(axis=-1) < 0.5).mean()  # text, rules and plot lines
  assert 0.005 < dark < 0.5, dark
