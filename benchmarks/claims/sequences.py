"""Claims about which family suits which task: text generation, translation, image
generation, each run with the families side by side at equal parameters.
"""
from archbench.benchmarks.claims import Claim, register, side_by_side
from archbench.benchmarks.results import claims as rules

_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=30, steps_per_dispatch=50)


register(Claim(
    name='text-generation',
    text='RNNs suit text generation',
    source='Karpathy 2015, The unreasonable effectiveness of recurrent neural networks; '
           'Graves 2013, Generating sequences with recurrent neural networks',
    family='RNN',
    experiment='character language modelling on a Markov source of known entropy rate (8 '
               'symbols, 3 allowed after each pair, T=32), LSTM and GRU beside a decoder '
               'Transformer at size small, 400 steps (full: 3000), seeds 0-2',
    statistic='held-out bits per character (the source\'s entropy rate is the floor)',
    threshold='the decoder does not beat the LSTM or the GRU by a factor 1.05 or more '
              '(paired t-tests, BH-adjusted p < 0.05)',
    rule=rules.compare('eval/bits_per_char', 'decoder', ['lstm', 'gru'],
                       [rules.condition('lm', expect=False, task='lm')], factor=1.05),
    plans=side_by_side('lm', ('lstm', 'gru', 'decoder'), (400, 3000), train=_TRAIN,
                       params={'length': 32, 'alphabet_size': 8, 'support': 3})))


register(Claim(
    name='translation',
    text='Transformers replaced RNNs in translation because they perform better',
    source='Vaswani et al. 2017 (WMT 2014 results); the common account',
    family='Transformer',
    experiment='numbers in digits to English words (seq2seq, greedy decoding), an LSTM '
               'against an encoder-decoder and a decoder-only Transformer at size small, '
               '1000 steps (full: 5000), seeds 0-2',
    statistic='held-out exact match of the whole translation',
    threshold='the encoder-decoder and the decoder each beat the LSTM (paired t-tests, '
              'BH-adjusted p < 0.05)',
    rule=rules.compare('eval/exact_match', ['encdec', 'decoder'], ['lstm'],
                       [rules.condition('translate', task='translate')]),
    plans=side_by_side('translate', ('lstm', 'encdec', 'decoder'), (1000, 5000),
                       train={**_TRAIN, 'warmup_steps': 50}, params={'val_size': 300})))


register(Claim(
    name='image-generation',
    text='Convolutions are the tool for images, generation included',
    source='van den Oord et al. 2016, Pixel recurrent neural networks / Conditional image '
           'generation with PixelCNN decoders; the common account of CNNs',
    family='CNN',
    experiment='the 8x8 digits quantised to 4 levels generated pixel by pixel: a causal '
               'convolution (TCN) beside an LSTM and a decoder Transformer at size small, '
               '600 steps (full: 5000), seeds 0-2',
    statistic='held-out bits per pixel (eval/bits_per_dim)',
    threshold='the TCN beats the LSTM and the decoder (paired t-tests, BH-adjusted p < '
              '0.05)',
    rule=rules.compare('eval/bits_per_dim', 'tcn', ['lstm', 'decoder'],
                       [rules.condition('pixels', task='pixels')]),
    plans=side_by_side('pixels', ('tcn', 'lstm', 'decoder'), (600, 5000), train=_TRAIN)))
