"""`report.html`: one self-contained page per run, from its records alone: the summary's
tables, every plot of the run, the reproduction verdicts where the run has them, and the
environment the numbers were measured in.

Readable offline and safe to open: the plots are embedded as base64 `data:` URIs, the style
is inline, there is no script, and a Content-Security-Policy tells the browser to load
nothing but those images. Every value shown goes through html.escape (markup.py), so a
plug-in's name or an error message is text, never markup.
"""
from __future__ import annotations

import base64
import html
import pathlib

from archbench.benchmarks.results import claims, compare, markup, reproduction
from archbench.benchmarks.results import records as records_lib

# Nothing from anywhere, except the embedded images and the inline style below.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; color: #1a1a1a; max-width: 1200px;
       margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; border-top: 2px solid #333; border-bottom: 2px solid #333;
        margin: 0.6em 0 1em; font-size: 0.9em; }
thead th { border-bottom: 1px solid #333; text-align: left; }
th, td { padding: 0.2em 0.7em; vertical-align: top; }
tbody tr:nth-child(even) { background: #f4f4f4; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
code { font-family: ui-monospace, monospace; font-size: 0.95em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
.env td:first-child { white-space: nowrap; font-weight: 600; }
.env td { word-break: break-word; }
"""


def _figure(path: pathlib.Path) -> str:
  data = base64.b64encode(path.read_bytes()).decode('ascii')
  name = html.escape(path.name)
  return (f'<figure><img src="data:image/png;base64,{data}" alt="{name}">'
          f'<figcaption>{name}</figcaption></figure>')


def environment_table(records) -> str:
  """Every `env` key of the records, with each distinct value (a resumed run's records can
  come from two sessions, or two machines)."""
  keys = list(dict.fromkeys(k for r in records for k in (r.get('env') or {})))
  rows = []
  for key in keys:
    values = dict.fromkeys(records_lib.env_text(r['env'][key]) for r in records
                           if key in (r.get('env') or {}))
    shown = '<br>'.join(html.escape(v) for v in values)
    rows.append(f'<tr><td>{html.escape(key)}</td><td>{shown}</td></tr>')
  return f'<table class="env"><tbody>{"".join(rows)}</tbody></table>'


def sections_of(out_dir: pathlib.Path) -> list[tuple[str, str]]:
  """The extra sections a run directory holds: the claims' verdicts (`archbench claims`),
  the verdicts of `archbench reproduce`,
  against a paper (reproduction.md) or against the run reproduced (comparison.md)."""
  sections = []
  path = out_dir / claims.FILE_MD  # `archbench claims`
  if path.is_file():
    text = path.read_text(encoding='utf-8')
    sections.append(('Claims: what people believe, tested',
                     text.split('\n', 1)[1] if text.startswith('# ') else text))
  path = out_dir / reproduction.FILE_MD  # `archbench reproduce NAME`
  if path.is_file():
    text = path.read_text(encoding='utf-8')
    sections.append(('Reproduction: verdicts against the paper',
                     text.split('\n', 1)[1] if text.startswith('# ') else text))
  path = out_dir / compare.FILE_MD  # `archbench reproduce DIR`, in the new run
  if path.is_file():
    sections.append(('Reproduction: verdicts against the run reproduced',
                     path.read_text(encoding='utf-8')))
  return sections


def page(records, summary: str, plots: list[pathlib.Path],
         sections: list[tuple[str, str]] | tuple = ()) -> str:
  """The page: `summary` (the records' summary.md) as HTML, the `plots` embedded,
  `sections` ((title, Markdown text) pairs, e.g. sections_of(run directory), escaped like
  everything else), then the environment of the records."""
  first = records[0] if records else {}
  title = html.escape(f'archbench report: suite {first.get("suite")}, run {first.get("run_id")}')
  body = [markup.to_html(summary)]
  if plots:
    body += ['<h2>Plots</h2>', *map(_figure, plots)]
  for heading, text in sections:
    body += [f'<h2>{html.escape(heading)}</h2>', markup.to_html(text, shift=2)]
  if records:
    body += ['<h2>Environment</h2>', environment_table(records)]
  return '\n'.join([
      '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
      f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
      '<meta name="viewport" content="width=device-width, initial-scale=1">',
      f'<title>{title}</title>', f'<style>{STYLE}</style>', '</head>', '<body>', *body,
      '</body>', '</html>', ''])
