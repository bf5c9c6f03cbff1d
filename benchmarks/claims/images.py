"""Claims about CNNs and images: locality, pooling, spatial hierarchies.

The cpu size trains on the 8x8 digits (scikit-learn, bundled) at size small (100k
parameters, every architecture within 10%), three seeds, the same settings for every
architecture and a fixed step budget: no early stop, so accuracies compare at equal
steps as well as equal parameters.
"""
from archbench.benchmarks.claims import SEEDS, Claim, register
from archbench.benchmarks.results import claims as rules

_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=30, steps_per_dispatch=50)


def _steps(size: str) -> int:
  return 600 if size == 'cpu' else 3000


def _locality(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  plan = task_plan({}, {'steps': _steps(size)}, archs=('cnn', 'vit', 'transformer'))
  return {'size': 'small', 'seeds': SEEDS, 'train': _TRAIN,
          'tasks': {'digits': plan, 'pdigits': plan}}


register(Claim(
    name='locality',
    text='CNNs exploit local patterns: that is why they beat other models on images',
    source='the common textbook account (e.g. Goodfellow, Bengio & Courville 2016, '
           'Deep Learning, ch. 9: sparse interactions, parameter sharing)',
    family='CNN',
    experiment='digits and pdigits (the same 8x8 images with one fixed permutation of '
               'the 64 pixels, which destroys locality and nothing else): CNN, ViT and a '
               'Transformer reading the 64 pixels as a sequence, size small (100k '
               'parameters), 600 steps (full: 3000), seeds 0-2',
    statistic='held-out accuracy, mean over seeds with its 95% t-interval',
    threshold='on digits the CNN beats the ViT and the Transformer (paired t-tests, '
              'BH-adjusted p < 0.05), and its edge over each (CNN minus other, per seed) is '
              'significantly smaller on pdigits (paired t-test of the edges): the edge is '
              'locality',
    rule=rules.edge_lost('eval/accuracy', 'cnn', ['vit', 'transformer'],
                         kept=rules.condition('digits', task='digits'),
                         lost=rules.condition('pdigits', task='pdigits')),
    plans=_locality))


# Channels that put each depth at the small budget (100k parameters, within 4%): the
# budget solver holds depth fixed only at the architecture's default, so each depth's
# width is given here (stages 1: 100,888; 2: 99,392; 3: 96,796 parameters).
DEPTH_CHANNELS = {1: 86, 2: 37, 3: 18}


def _hierarchy(size: str) -> list:
  from archbench.benchmarks.config import task_plan
  return [{'size': 'small', 'seeds': SEEDS, 'train': _TRAIN, 'tasks': {'digits': task_plan(
      {}, {'steps': _steps(size)}, archs=('cnn',),
      arch_config={'cnn': {'stages': stages, 'channels': channels}})}}
          for stages, channels in DEPTH_CHANNELS.items()]


register(Claim(
    name='hierarchy',
    text='CNNs learn spatial hierarchies: deeper stacks see larger patterns and do better',
    source='the common textbook account (LeCun, Bengio & Hinton 2015, Deep learning, '
           'Nature 521: "compositional hierarchies")',
    family='CNN',
    experiment='the CNN on digits with 1, 2 and 3 stages (each stage two 3x3 convs and a '
               '2x2 pool; 86, 37 and 18 channels, so every depth has 97k-101k parameters), '
               '600 steps (full: 3000), seeds 0-2',
    statistic='per seed, the least-squares slope of held-out accuracy on the number of '
              'stages',
    threshold='the slopes are positive: one-sample t-test over seeds, p < 0.05',
    rule=rules.trend('eval/accuracy', 'arch.stages', ['cnn'],
                     [rules.condition('digits', task='digits')], increasing=True),
    plans=_hierarchy))


def _pooling(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  return {'size': 'small', 'seeds': SEEDS, 'train': _TRAIN, 'tasks': {'digits': task_plan(
      {}, {'steps': _steps(size)}, archs=('cnn',),
      arch_variants={'cnn': {'pool': (True, False)}})}}


register(Claim(
    name='pooling',
    text='Pooling makes CNNs faster and lighter: it shrinks every later layer\'s input',
    source='the common textbook account (e.g. Goodfellow et al. 2016, Deep Learning, '
           '9.3; the CS231n notes: pooling "reduces the amount of parameters and '
           'computation")',
    family='CNN',
    experiment='the same CNN with and without its 2x2 max pooling (pooling has no '
               'parameters: both at 100k) on digits, 600 steps (full: 3000), seeds 0-2',
    statistic='training step time (perf/step_ms, on the machine that ran it) and the '
              'compiled training step\'s peak memory (perf/peak_bytes)',
    threshold='with pooling: faster and less memory, each by at least 1.2x (paired t-tests, '
              'BH-adjusted p < 0.05)',
    rule=rules.compare('perf/step_ms', 'pooled', ['unpooled'], [
        rules.condition('step time', task='digits'),
        rules.condition('peak memory', metric='perf/peak_bytes', higher=False,
                        task='digits')], higher=False, factor=1.2,
        rows={'pooled': {'arch': 'cnn', 'arch.pool': True},
              'unpooled': {'arch': 'cnn', 'arch.pool': False}}),
    plans=_pooling))


# A reduced training set: 200 of the 1,258 training images (about 20 per class), the same
# 180 validation images. 600 steps of 32 are 96 passes over it: room to overfit.
REDUCED_TRAIN = 200


def _pooling_overfitting(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  return {'size': 'small', 'seeds': SEEDS, 'train': _TRAIN, 'tasks': {'digits': task_plan(
      {'train_examples': REDUCED_TRAIN}, {'steps': _steps(size)}, archs=('cnn',),
      arch_variants={'cnn': {'pool': (True, False)}})}}


register(Claim(
    name='pooling-overfitting',
    text='Pooling makes CNNs less prone to overfitting',
    source='the common textbook account (e.g. the CS231n notes: pooling "hence also '
           'controls overfitting")',
    family='CNN',
    experiment=f'the same CNN with and without its 2x2 max pooling (both at 100k '
               f'parameters) on a reduced digits training set ({REDUCED_TRAIN} of the 1,258 '
               'training images; validation and test sets unchanged), 600 steps of 32 '
               '(96 passes; full: 3000), seeds 0-2',
    statistic='the train-validation gap at the end of training: validation loss minus the '
              'training loss of the last 50 steps (the mean over their batches), per seed',
    threshold='with pooling: a smaller gap (paired t-test, BH-adjusted p < 0.05)',
    rule=rules.compare(rules.difference('val/loss', 'train/loss'), 'pooled', ['unpooled'], [
        rules.condition(f'{REDUCED_TRAIN} training images',
                        **{'task': 'digits', 'task.train_examples': REDUCED_TRAIN})],
        higher=False,
        rows={'pooled': {'arch': 'cnn', 'arch.pool': True},
              'unpooled': {'arch': 'cnn', 'arch.pool': False}}),
    plans=_pooling_overfitting))
