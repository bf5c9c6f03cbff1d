"""ListOps at Long Range Arena's settings: LRA's confirmed configuration, which the
lra-listops reproduction cites, and the statistics of archbench's generator next to those of
LRA's own. (The leading underscore: a module of the reproductions, not one of them.)

  python tools/lra_stats.py [--num 20000] [--seed 0]

generates `--num` expressions with archbench's generator (data/listops.py) at LRA's
settings and prints a Markdown table of their length, label and depth distributions beside
LRA_GENERATOR_STATS, the same statistics of LRA's generator (about 1 min for 20,000 on one
core). The table in docs/listops-lra.md condenses its output.

LRA_GENERATOR_STATS was computed outside this repository (LRA's code is not part of
archbench): LRA's `generate_tree`, `to_string` and `to_value` were imported unchanged from
lra_benchmarks/data/listops.py at LRA_COMMIT (TensorFlow, used there only for logging and
writing files, stubbed), driven by the loop of its `main()` (keep a tree when
500 < length < 2000, distinct trees, until N) after `random.seed(0)`, N = 20,000; its
expressions were converted to archbench's token ids and measured by `listops_statistics`
below, so both columns are measured by the same code.
"""
from __future__ import annotations

import math

import numpy as np

from archbench.data import listops

LRA_REPO = 'google-research/long-range-arena'
LRA_COMMIT = 'cd31e5c6b8e5bceabd28de2d2afb23f7ae5d36d8'

LRA_LISTOPS = {
    'source': {'repo': LRA_REPO, 'commit': LRA_COMMIT},
    'generator': {
        'file': 'lra_benchmarks/data/listops.py',
        'operators': ('[MIN', '[MAX', '[MED', '[SM'),
        'values': tuple(range(10)),
        'operator_probability': 0.25,
        'num_args': (2, 10),
        'max_depth': 10,
        'max_args': 10,
        'min_length_exclusive': 500,
        'max_length_exclusive': 2000,
        'num_train': 96_000,
        'num_valid': 2_000,
        'num_test': 2_000,
        'distinct': True,
        'seeded': False,
        'median': 'int(np.median(args))',
        'sum_mod': 'np.sum(args) % 10',
    },
    'tokenisation': {
        'file': 'lra_benchmarks/listops/input_pipeline.py',
        'close_bracket_is_token': True,
        'close_bracket_spelling': 'X',
        'parentheses_are_tokens': False,
        'num_tokens': 15,
        'vocab_size': 17,
        'pad_id': 0,
        'max_length': 2000,
        'truncation': 'inputs[:max_length]',
        'padding': 'at the end, to max_length',
        'bracket_kept_since': 'c209b2a (2021-03-04)',
    },
    'config': {
        'file': 'lra_benchmarks/listops/configs/base_listops_config.py',
        'model_type_file': 'lra_benchmarks/listops/configs/transformer_base.py',
        'model_type': 'transformer',
        'batch_size': 32,
        'num_train_steps': 5000,
        'learning_rate': 0.05,
        'weight_decay': 0.1,
        'warmup': 1000,
        'factors': 'constant * linear_warmup * rsqrt_decay',
        'max_length': 2000,
        'emb_dim': 512,
        'num_heads': 8,
        'num_layers': 4,
        'qkv_dim': 512,
        'mlp_dim': 1024,
        'pooling_mode': 'CLS',
        'tied_weights': False,
        'eval_frequency': 50,
        'num_eval_steps': 99999,
        'random_seed': 0,
        'not_read_by_train_py': ('warmup', 'factors', 'pooling_mode', 'tied_weights'),
        'changed_in': '8d3dc39 (2021-03-22): num_layers 6 -> 4, mlp_dim 2048 -> 1024',
    },
    'training': {
        'file': 'lra_benchmarks/listops/train.py',
        'optimizer': 'adam',
        'beta1': 0.9,
        'beta2': 0.98,
        'eps': 1e-9,
        'weight_decay_form': 'decoupled, times the learning rate, on every parameter',
        'schedule_file': 'lra_benchmarks/utils/train_utils.py',
        'schedule': 'lr(s) = 0.05 * min(1, s / 1000) / sqrt(max(s, 1000))',
        'warmup_steps': 1000,
        'peak_learning_rate': 0.05 / math.sqrt(1000),
        'final_learning_rate': 0.05 / math.sqrt(5000),
        'loss': 'softmax cross-entropy over 10 classes, mean over the batch',
        'global_batch': True,
        'test_evaluation': '--test_only: the last checkpoint on the whole test split',
    },
    'model': {
        'file': 'lra_benchmarks/models/transformer/transformer.py',
        'head_file': 'lra_benchmarks/models/layers/common_layers.py',
        'dropout_rate': 0.1,
        'attention_dropout_rate': 0.1,
        'classifier_pool': 'CLS',
        'cls_token': 'learned, zero-initialised, prepended (2001 positions)',
        'position_embedding': 'sinusoidal, fixed',
        'layer_norm': 'pre-LN in every block, and a final LayerNorm',
        'mlp_activation': 'gelu',
        'attention_qkv_bias': False,
        'padding_mask': 'keys and queries where input id is 0',
        'embedding_init_stddev': 1.0,
        'classifier_head': 'Dense(mlp_dim) -> relu -> Dense(10) on the CLS output',
        'dtype': 'float32',
    },
    'paper': {
        'source': 'Tay et al. 2021, Long Range Arena (ICLR), Appendix and Table 1',
        'transformer_accuracy': 36.37,
        'emb_dim': 512,
        'num_heads': 8,
        'num_layers': 6,
        'mlp_dim': 2048,
        'num_train_steps': 5000,
        'batch_size': 32,
        'learning_rate': 0.05,
        'weight_decay': 0.1,
        'maintainers_say': 'the configs are authoritative (issue #17, 2021-06-09)',
    },
}
"""Long Range Arena's ListOps task and Transformer baseline as its code runs them, read from
LRA_COMMIT; each group names the file its values come from.

* `generator`: `generate_tree(1, max_depth, max_args)`; a node shallower than max_depth is
  an operator with probability 0.25 (uniform over the four), with a uniform 2..max_args
  arguments, else a uniform digit. Lengths count operators, digits and `]`; the window is
  exclusive (501..1999 tokens). The dataset is a set of trees (distinct), split in set
  order; Python's `random` is not seeded, so LRA's released files cannot be regenerated.
* `tokenisation`: `(`/`)` removed, `]` renamed `X` (kept as a token), whitespace tokens;
  a tfds TokenTextEncoder over the 15 tokens seen in the validation split gives ids 1..15
  in arbitrary (set) order, 0 for padding and one unused OOV id (vocab_size 17).
* `config`: what `get_config()` sets. `warmup`, `factors`, `pooling_mode` and
  `tied_weights` are never passed on by train.py; the values used are the defaults of
  `create_learning_rate_scheduler` and `TransformerEncoder`, which happen to agree.
* `training`: `flax.optim.Adam(lr, 0.9, 0.98, 1e-9, weight_decay)`, whose decay is
  `p -= lr * weight_decay * p` (AdamW-style) on all parameters. `learning_rate` 0.05 is
  the schedule's constant, so the rate actually peaks at 0.05 / sqrt(1000) ~ 1.6e-3 at
  step 1000 and ends at ~7.1e-4. The batch of 32 is global (split over devices by pmap).
* `model`: TransformerEncoder defaults not set by the config.
* `paper`: the Transformer row of Table 1 and the hyperparameters the paper's appendix
  states for all models (6 layers, FFN 2048), read from public text of the paper, not
  re-read from the PDF here. The repository's base_listops_config.py said the same until
  8d3dc39 (2021-03-22) made it 4 layers and MLP 1024; the maintainers say the configs
  are the ones behind Table 1 (issue #17).
"""

LRA_TASK_PARAMS = {'max_depth': 10, 'max_args': 10, 'min_length': 501, 'max_length': 1999}
"""`make_listops`/`generate` parameters for LRA's generator (its exclusive 500 < n < 2000
window in archbench's inclusive bounds)."""

LRA_GENERATOR_STATS = {
    'num_examples': 20000,
    'length': {'min': 501, 'q25': 706.0, 'median': 961.0, 'q75': 1315.0, 'mean': 1039.2,
               'max': 1999},
    'label_shares': [0.1704, 0.0896, 0.077, 0.0808, 0.091, 0.0869, 0.0801, 0.0747, 0.0822,
                     0.1674],
    'majority_class': 0,
    'majority_share': 0.1704,
    'depth': {'mean': 10.0, 'max': 10, 'shares': {10: 1.0}},
    'leaf_depth': {'mean': 8.514, 'max': 10,
                   'shares': {2: 0.0062, 3: 0.0139, 4: 0.0241, 5: 0.0387, 6: 0.06, 7: 0.0917,
                              8: 0.1389, 9: 0.2086, 10: 0.418}},
    'args_per_operator': 6.024,
}
"""`listops_statistics` of LRA's own generator, N = 20,000 after random.seed(0) (see the
module docstring for how it was run)."""


def listops_statistics(tokens: np.ndarray, labels: np.ndarray) -> dict:
  """Length, label and depth distributions of ListOps expressions in archbench's token ids
  (tokens [N, T], PAD only at the end; labels [N]).

  Depth is LRA's tree depth (`generate_tree`'s depth: a lone digit is 1, each bracket
  level adds 1), so it is bounded by max_depth. A digit's depth is one more than the
  brackets open around it, which a running count of open minus closed brackets gives
  without parsing; an expression's depth is its deepest digit's. At LRA's lengths nearly
  every expression reaches max_depth, so the depths of the digits (where the values sit)
  are reported too, with the mean number of arguments per operator."""
  tokens = np.asarray(tokens)
  labels = np.asarray(labels)
  lengths = np.count_nonzero(tokens != listops.PAD, axis=1)
  is_digit = (tokens >= listops.DIGIT_BASE) & (tokens < listops.OPERATOR_BASE)
  is_operator = (tokens >= listops.OPERATOR_BASE) & (tokens < listops.CLOSE)
  steps = is_operator.astype(np.int8) - (tokens == listops.CLOSE).astype(np.int8)
  leaf_depths = np.where(is_digit, np.cumsum(steps, axis=1, dtype=np.int16) + 1, 0)
  depths = leaf_depths.max(axis=1)
  leaf_depths = leaf_depths[is_digit]
  # Every node but the root is an argument of one operator.
  num_operators = is_operator.sum()
  args_per_operator = (is_digit.sum() + num_operators - len(labels)) / num_operators
  shares = np.bincount(labels, minlength=10) / len(labels)
  q25, median, q75 = np.percentile(lengths, [25, 50, 75])

  def distribution(values):
    counts = np.bincount(values)
    return {'mean': round(float(values.mean()), 3), 'max': int(values.max()),
            'shares': {d: round(float(c / len(values)), 4) for d, c in enumerate(counts) if c}}

  return {
      'num_examples': int(len(labels)),
      'length': {'min': int(lengths.min()), 'q25': float(q25), 'median': float(median),
                 'q75': float(q75), 'mean': round(float(lengths.mean()), 1),
                 'max': int(lengths.max())},
      'label_shares': [round(float(s), 4) for s in shares],
      'majority_class': int(shares.argmax()),
      'majority_share': round(float(shares.max()), 4),
      'depth': distribution(depths),
      'leaf_depth': distribution(leaf_depths),
      'args_per_operator': round(float(args_per_operator), 3),
  }


def comparison_table(ours: dict, lra: dict) -> str:
  """The two statistics side by side, as a Markdown table."""
  rows = [('expressions', ours['num_examples'], lra['num_examples'])]
  rows += [(f'length {k}', ours['length'][k], lra['length'][k])
           for k in ('min', 'q25', 'median', 'q75', 'mean', 'max')]
  rows += [(f'label {c} share', ours['label_shares'][c], lra['label_shares'][c])
           for c in range(10)]
  rows += [('majority class (its share = majority-class accuracy)',
            f"{ours['majority_class']} ({ours['majority_share']:.4f})",
            f"{lra['majority_class']} ({lra['majority_share']:.4f})"),
           ('args per operator, mean', ours['args_per_operator'], lra['args_per_operator'])]
  for key, name in (('depth', 'depth'), ('leaf_depth', 'digit depth')):
    rows += [(f'{name} mean', ours[key]['mean'], lra[key]['mean']),
             (f'{name} max', ours[key]['max'], lra[key]['max'])]
    levels = sorted(set(ours[key]['shares']) | set(lra[key]['shares']))
    rows += [(f'{name} {d} share', ours[key]['shares'].get(d, 0.0),
              lra[key]['shares'].get(d, 0.0)) for d in levels]
  lines = ['| statistic | archbench | LRA |', '|---|---:|---:|']
  lines += [f'| {name} | {a} | {b} |' for name, a, b in rows]
  return '\n'.join(lines)
