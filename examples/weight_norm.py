"""The weight-matrix norm during training, as an archbench evaluator plug-in: a new way of
measuring, with its own part of the report, in one file.

    archbench run --plugin examples/weight_norm.py --archs lstm,transformer --tasks adding \
        --config.evaluators=weight_norm
    archbench report --plugin examples/weight_norm.py results/runs/<run>   # rebuilds it

The evaluator records the global norm of the model's weight matrices (every parameter array
of two or more dimensions: kernels and embeddings; biases and normalisation scales left
out) at initialisation and after every training dispatch, as the curve
`curves['weight_norm/global']` ([step, norm] pairs), and `metrics['weight_norm/init']`,
`['weight_norm/final']` and `['weight_norm/growth']` (final over initial). Weight decay
pulls the norm down, the gradient steps push it up: where it settles says how far training
moved the model from its initialisation.

The report section `weight_norm` adds a table to summary.md (and so summary.tex and
report.html) and the plot weight_norm.png. It reads records alone, and JAX is imported
inside the evaluator's hooks only, so the report is rebuilt without it.
"""
import pathlib
import statistics

from archbench.benchmarks.harness import evaluators
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import sections

NAME = 'weight_norm'
CURVE = f'{NAME}/global'


def _norm_function():
  """params -> the global norm of its arrays of two or more dimensions, compiled."""
  import jax
  import jax.numpy as jnp

  def norm(params):
    matrices = [a for a in jax.tree_util.tree_leaves(params) if a.ndim >= 2]
    return jnp.sqrt(sum(jnp.sum(jnp.square(a.astype(jnp.float32))) for a in matrices))
  return jax.jit(norm)


def _before_training(ctx: evaluators.Context) -> None:
  norm = ctx.kept[NAME] = _norm_function()
  value = float(norm(ctx.params))
  ctx.metrics[f'{NAME}/init'] = value
  ctx.curves[CURVE] = [[int(ctx.state.step), value]]


def _after_dispatch(ctx: evaluators.Context, step: int) -> None:
  ctx.curves[CURVE].append([step, float(ctx.kept[NAME](ctx.params))])  # float(): on host


def _after_training(ctx: evaluators.Context) -> None:
  final = ctx.curves[CURVE][-1][1]
  ctx.metrics[f'{NAME}/final'] = final
  ctx.metrics[f'{NAME}/growth'] = final / ctx.metrics[f'{NAME}/init']


evaluators.register(evaluators.EvaluatorSpec(
    name=NAME,
    description='global norm of the weight matrices, at initialisation and after every '
                'dispatch (examples/weight_norm.py)',
    before_training=_before_training, after_dispatch=_after_dispatch,
    after_training=_after_training,
    metrics=(f'{NAME}/init', f'{NAME}/final', f'{NAME}/growth'), curves=(CURVE,),
    section=NAME))


# ---------------------------------------------------------------------------------------
# The report section: records in, Markdown and a PNG out.

def _measured(records) -> dict[tuple[str, str, str], list[dict]]:
  """(arch, task, size) -> its ok records that hold the norm, in the run's order."""
  groups: dict[tuple[str, str, str], list[dict]] = {}
  for r in records:
    if r['status'] == 'ok' and f'{NAME}/final' in r.get('metrics', {}):
      groups.setdefault((r['arch'], r['task'], r['size']), []).append(r)
  return groups


def _mean_std(values: list[float]) -> str:
  mean = statistics.fmean(values)
  return f'{mean:.4g}' if len(values) == 1 else f'{mean:.4g} ± {statistics.stdev(values):.2g}'


def markdown(records) -> list[str]:
  groups = _measured(records)
  if not groups:
    return []
  rows = [[arch, task, size, len(group),
           *(_mean_std([r['metrics'][f'{NAME}/{k}'] for r in group])
             for k in ('init', 'final', 'growth'))]
          for (arch, task, size), group in groups.items()]
  return ['## Weight-matrix norm during training',
          'Global norm of the weight matrices (parameters of two or more dimensions) at '
          'initialisation and after the last step; growth is final over initial; mean ± '
          'std over seeds.',
          records_lib.markdown_table(['Architecture', 'Task', 'Size', 'Seeds', 'Initial',
                                      'Final', 'Growth'], rows)]


def plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  groups = _measured(records)
  if not groups:
    return []
  import matplotlib
  matplotlib.use('Agg')  # files only, no display
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6.4, 4.0))
  for (arch, task, size), group in groups.items():
    for r in group:
      steps, values = zip(*r['curves'][CURVE])
      ax.plot(steps, values, label=f'{arch}/{task}/{size}/s{r["seed"]}')
  ax.set_xlabel('training step')
  ax.set_ylabel('global weight-matrix norm')
  ax.ticklabel_format(axis='y', useOffset=False)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  path = out_dir / f'{NAME}.png'
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return [path]


sections.register(sections.Section(NAME, markdown, plots))
