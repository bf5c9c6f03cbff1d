"""The harness, grouped by role:

  cli.py       the command line
  config.py    suites as ml_collections configs (suites/ holds one file each), resolved
               into cells; plugins.py loads users' architectures and tasks
  harness/     model assembly, training and evaluation, generation, checkpoints, the
               runner (one cell), the suite (plan, resume, dispatch, records) and
               evaluators/ (named ways of measuring: the long-range probes, lengths, cost,
               sampling, and plug-ins')
  measure/     the one timer, compile-ahead, device peaks
  results/     records, summaries, plots, comparison of runs
  core.py      the vocabulary all of them share: Cell, TrainConfig, Execution, errors

core.py imports none of the others; archs/ and data/ never import the harness. Every cell
of every suite goes through `harness.runner.run_cell`.
"""
