r"""Measures experiments as a user runs them and keeps each figure as a record.

  python -m bench.results --only=mnist_ae                 # train, evaluate, record, tables
  python -m bench.results --only=mnist_classifier,mnist_dcgan
  python -m bench.results --stale                         # every entry without a current record
  python -m bench.results --tables                        # only rewrite the tables

For each named entry: runs its commands (`launch.main` with the experiment's default config,
then `launch.evaluate`; or the entry's benchmark script) as separate processes in a fresh
workdir under `--workdir_root`, times them, and writes `results/NAME.json` (see
bench/records.py: figures, commands, commit, machine, versions, date, wall times, and the
files the measurement ran). Then it rewrites docs/results.md and the figure column of the
README's experiments table from all records, marking a record stale once a later commit
changes the code it ran. Run one entry at a time on an otherwise idle machine: the record
keeps the share of the cores that other processes used meanwhile, and the table shows it
when that was more than 5%.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

from absl import app, flags

from bench import family_tables, records

_ONLY = flags.DEFINE_list('only', [], 'Entries to measure (see --list).')
_STALE = flags.DEFINE_bool('stale', False, 'Measure every entry whose record is missing or stale.')
_TABLES = flags.DEFINE_bool('tables', False, 'Only rewrite the tables from the records.')
_LIST = flags.DEFINE_bool('list', False, 'List the entries and the state of their records.')
_WORKDIR_ROOT = flags.DEFINE_string(
  'workdir_root', 'runs/results', 'Where the entries train (one fresh workdir each).'
)

RESULTS_MD = os.path.join(records.ROOT, 'docs', 'results.md')
# README rows that name an experiment file whose record goes by another entry's name.
README_ROWS = {
  'shakespeare_char': 'shakespeare_char_cpu',
  'mnist_anomaly_ae': 'one_class_mnist',
  'multi30k_de_en': 'multi30k_de_en_cpu',
  'multi30k_en_de': 'multi30k_en_de_cpu',
}
README = os.path.join(records.ROOT, 'README.md')
BUSY = 0.05  # share of the cores that other processes used, above which a timing is marked


@dataclasses.dataclass(frozen=True)
class Entry:
  """One row of the results table: how to measure it and which figures to show."""

  name: str
  what: str
  config: str = ''  # experiments/NAME.py[:variant]; empty for a benchmark script
  script: tuple[str, ...] = ()  # `python -m` arguments of a benchmark that trains and evaluates
  metrics_file: str = 'eval.json'  # in the workdir, written by the last command
  show: tuple[tuple[str, str], ...] = ()  # (metric key, format); the first is the headline
  needs: tuple[str, ...] = ()  # entries whose workdirs this one reads
  flags: tuple[str, ...] = ()  # extra train flags; `{NAME}` is the workdir of entry NAME
  modules: tuple[str, ...] = ()  # entry modules of `script`, for the code closure
  benchmark: bool = False  # its record carries its own table (a benchmark section)


# FID first: the README's headline, and the figure every family's target is set in.
GAN_SHOW = (
  ('fid', 'FID {:.2f}'),
  ('inception_score', 'IS {:.2f}'),
  ('precision', 'precision {:.3f}'),
  ('recall', 'recall {:.3f}'),
  ('inception_score_test', 'test-set IS {:.2f}'),
  ('fid_train_vs_test', 'train-vs-test FID {:.2f}'),
  ('label_accuracy', 'label accuracy {:.3f}'),
)

# The GAN figures first (the same classifier, the same metrics), then how it sampled.
DIFFUSION_SHOW = (
  *GAN_SHOW,
  ('nfe', '{} model calls a sample'),
  ('sampling_seconds_64', '64 samples in {:.1f} s'),
)


STEPS = (5, 10, 20, 50)


def _steps_show(sampler: str, label: str) -> tuple[tuple[str, str], ...]:
  """FID at each step count of bench.diffusion_steps for one sampler."""
  return tuple(
    (f'fid_by_steps.{sampler}.{steps}', f'{label} {steps} steps FID {{:.2f}}') for steps in STEPS
  )


def _steps_entry(run: str, samplers: tuple[tuple[str, str], ...], shown: str) -> Entry:
  """FID against sampler steps of a recorded diffusion run: bench.diffusion_steps on the same
  1,000 noises for each (sampler, label); the table shows sampler `shown`'s row."""
  names = ','.join(name for name, _ in samplers)
  labels = ' and '.join(label for _, label in samplers)
  return Entry(
    f'{run}_steps',
    f"{run}'s FID against sampler steps ({labels}, the same 1,000 noises each;"
    ' bench.diffusion_steps, which also plots it)',
    script=(
      'bench.diffusion_steps',
      f'--workdir={{{run}}}',
      '--out={workdir}',
      f'--samplers={names}',
      '--steps=' + ','.join(map(str, STEPS)),
      '--num_samples=1000',
    ),
    metrics_file='diffusion_steps.json',
    show=_steps_show(shown, dict(samplers)[shown]),
    needs=(run,),
    modules=(
      'bench.diffusion_steps',
      f'experiments.{run}',
      'genjax.tasks.diffusion',
      'genjax.data.mnist',
    ),
  )


ENTRIES = {
  e.name: e
  for e in (
    Entry(
      'fruits_vae',
      'VAE on procedural fruits: blue-apple anomaly AUROC; NLL by importance sampling; its'
      ' samples scored by the fruits classifier',
      config='experiments/fruits_vae.py',
      show=(
        ('anomaly_auroc', 'AUROC {:.4f}'),
        ('nll', 'NLL {:.0f} nats'),
        ('bits_per_dim', '{:.2f} bits/dim'),
        ('fid', 'samples: FID {:.2f}'),
        ('inception_score', 'IS {:.2f}'),
        ('precision', 'precision {:.3f}'),
        ('recall', 'recall {:.3f}'),
      ),
      needs=('fruits_classifier',),
      flags=('--config.eval.classifier_workdir={fruits_classifier}',),
    ),
    Entry(
      'fruits_ae',
      'autoencoder on fruits: blue-apple anomaly AUROC; MSE against PCA of the same size',
      config='experiments/fruits_ae.py',
      show=(
        ('anomaly_auroc', 'AUROC {:.4f}'),
        ('mse', 'MSE {:.6f}'),
        ('pca_mse', 'PCA MSE {:.6f}'),
        ('psnr', 'PSNR {:.2f} dB'),
      ),
    ),
    Entry(
      'mnist_vae',
      'VAE on dynamically binarized MNIST: test NLL by importance sampling'
      ' (k = 1000, all 10,000 test images)',
      config='experiments/mnist_vae.py',
      show=(('nll', 'NLL {:.2f} nats'), ('elbo', 'ELBO {:.2f}')),
    ),
    Entry(
      'fashion_mnist_vae',
      'VAE on Fashion-MNIST: test NLL by importance sampling',
      config='experiments/fashion_mnist_vae.py',
      show=(('nll', 'NLL {:.2f} nats'), ('elbo', 'ELBO {:.2f}')),
    ),
    Entry(
      'mnist_ae',
      'denoising autoencoder on MNIST (σ = 0.5): PSNR of the noisy and the denoised'
      ' test images; MSE against PCA',
      config='experiments/mnist_ae.py',
      show=(
        ('denoised_psnr', 'denoised PSNR {:.2f} dB'),
        ('noisy_psnr', 'noisy {:.2f} dB'),
        ('mse', 'MSE {:.5f}'),
        ('pca_mse', 'PCA MSE {:.5f}'),
      ),
    ),
    Entry(
      'one_class_mnist',
      'one-class MNIST anomaly detection, ten runs (one per digit): mean AUROC',
      script=('bench.one_class_mnist', '--workdir={workdir}'),
      metrics_file='summary.json',
      show=(('mean_anomaly_auroc', 'mean AUROC {:.4f}'),),
      modules=(
        'bench.one_class_mnist',
        'experiments.mnist_anomaly_ae',
        'genjax.tasks.autoencoder',
        'genjax.data.mnist',
      ),
    ),
    Entry(
      'mnist_classifier',
      'classifier on MNIST (the GAN metrics\' feature network): test accuracy',
      config='experiments/mnist_classifier.py',
      show=(('accuracy', 'accuracy {:.4f}'),),
    ),
    Entry(
      'fashion_mnist_classifier',
      'classifier on Fashion-MNIST: test accuracy',
      config='experiments/fashion_mnist_classifier.py',
      show=(('accuracy', 'accuracy {:.4f}'),),
    ),
    Entry(
      'fruits_classifier',
      'classifier on fruits (5 kinds): test accuracy',
      config='experiments/fruits_classifier.py',
      show=(('accuracy', 'accuracy {:.4f}'),),
    ),
    Entry(
      'fashion_mnist_vit',
      'Vision Transformer on Fashion-MNIST (convolutional stem to 7x7 tokens, 4 blocks 64'
      ' wide, label smoothing, left-right flips; at most 20 minutes of training): test'
      ' accuracy',
      config='experiments/fashion_mnist_vit.py',
      show=(('accuracy', 'accuracy {:.4f}'), ('loss', 'test NLL {:.4f}')),
    ),
    Entry(
      'mnist_vit',
      'Vision Transformer on MNIST (crops, no flips): test accuracy',
      config='experiments/mnist_vit.py',
      show=(('accuracy', 'accuracy {:.4f}'), ('loss', 'test NLL {:.4f}')),
    ),
    Entry(
      'fruits_vit',
      'Vision Transformer on fruits (5 kinds, 8x8 patches of 4x4): test accuracy',
      config='experiments/fruits_vit.py',
      show=(('accuracy', 'accuracy {:.4f}'), ('loss', 'test NLL {:.4f}')),
    ),
    Entry(
      'mnist_dcgan',
      'DCGAN on MNIST, self-conditioned on 100 k-means clusters: 10,000 EMA samples'
      ' scored by the MNIST classifier',
      config='experiments/mnist_dcgan.py',
      show=GAN_SHOW,
      needs=('mnist_classifier',),
      flags=('--config.eval.classifier_workdir={mnist_classifier}',),
    ),
    Entry(
      'mnist_cdcgan',
      'class-conditional DCGAN on MNIST: the same, and the label accuracy of its samples',
      config='experiments/mnist_cdcgan.py',
      show=GAN_SHOW,
      needs=('mnist_classifier',),
      flags=('--config.eval.classifier_workdir={mnist_classifier}',),
    ),
    Entry(
      'fashion_mnist_dcgan',
      'DCGAN on Fashion-MNIST, scored by the Fashion-MNIST classifier',
      config='experiments/fashion_mnist_dcgan.py',
      show=GAN_SHOW,
      needs=('fashion_mnist_classifier',),
      flags=('--config.eval.classifier_workdir={fashion_mnist_classifier}',),
    ),
    Entry(
      'fruits_dcgan',
      'DCGAN on fruits, self-conditioned on 100 k-means clusters: 10,000 EMA samples scored'
      ' by the fruits classifier',
      config='experiments/fruits_dcgan.py',
      show=GAN_SHOW,
      needs=('fruits_classifier',),
      flags=('--config.eval.classifier_workdir={fruits_classifier}',),
    ),
    Entry(
      'mnist_diffusion',
      'class-conditional diffusion on MNIST (v, cosine schedule; DDIM, 50 steps, guidance'
      ' 1.5 at 0.4 < t <= 0.85): EMA samples scored by the MNIST classifier',
      config='experiments/mnist_diffusion.py',
      show=DIFFUSION_SHOW,
      needs=('mnist_classifier',),
      flags=('--config.eval.classifier_workdir={mnist_classifier}',),
    ),
    Entry(
      'mnist_flow',
      'class-conditional flow matching on MNIST (the same U-Net; Heun, 20 steps, guidance 1.5'
      ' at 0.4 < t <= 0.85), scored by the MNIST classifier',
      config='experiments/mnist_flow.py',
      show=DIFFUSION_SHOW,
      needs=('mnist_classifier',),
      flags=('--config.eval.classifier_workdir={mnist_classifier}',),
    ),
    Entry(
      'mnist_vdm',
      'unconditional variational diffusion model on MNIST: its bound on the test NLL in bits'
      ' per dimension (all 10,000 test images); samples scored by the MNIST classifier',
      config='experiments/mnist_vdm.py',
      show=(('bits_per_dim', '{:.3f} bits/dim'), *DIFFUSION_SHOW),
      needs=('mnist_classifier',),
      flags=('--config.eval.classifier_workdir={mnist_classifier}',),
    ),
    Entry(
      'fashion_mnist_diffusion',
      'class-conditional diffusion on Fashion-MNIST (mnist_diffusion\'s recipe), scored by the'
      ' Fashion-MNIST classifier',
      config='experiments/fashion_mnist_diffusion.py',
      show=DIFFUSION_SHOW,
      needs=('fashion_mnist_classifier',),
      flags=('--config.eval.classifier_workdir={fashion_mnist_classifier}',),
    ),
    Entry(
      'fruits_diffusion',
      'class-conditional diffusion on fruits (v; DDIM, 50 steps, guidance 1.5), scored by the'
      ' fruits classifier',
      config='experiments/fruits_diffusion.py',
      show=DIFFUSION_SHOW,
      needs=('fruits_classifier',),
      flags=('--config.eval.classifier_workdir={fruits_classifier}',),
    ),
    _steps_entry('mnist_diffusion', (('ddim', 'DDIM'), ('heun', 'Heun')), shown='ddim'),
    _steps_entry('mnist_flow', (('euler', 'Euler'), ('heun', 'Heun')), shown='heun'),
    Entry(
      'mnist_augment',
      'classifier on 1,000 labelled MNIST images alone (real) and with half of each'
      ' batch from the class-conditional GAN (gan): test accuracy',
      script=('bench.augmentation', '--workdir={workdir}', '--generator_workdir={mnist_cdcgan}'),
      metrics_file='results.json',
      show=(
        ('variants.gan.test_accuracy', 'with GAN samples {:.4f}'),
        ('variants.real.test_accuracy', 'real only {:.4f}'),
      ),
      needs=('mnist_cdcgan',),
      modules=(
        'bench.augmentation',
        'experiments.mnist_augment',
        'genjax.tasks.classifier',
        'genjax.data.mnist',
      ),
    ),
    Entry(
      'jax_vs_pytorch',
      'JAX against PyTorch, shakespeare_char:cpu train step (bench.frameworks\'s protocol)',
      script=('bench.frameworks', '--workdir={workdir}'),
      metrics_file='frameworks.json',
      modules=(
        'bench.frameworks',
        'bench.torch_gpt',
        'experiments.shakespeare_char',
        'genjax.tasks.lm',
        'genjax.data.text',
      ),
      benchmark=True,
    ),
    Entry(
      'throughput',
      'train-step throughput of the image experiments',
      script=('bench.throughput', '--out={workdir}/throughput.json'),
      metrics_file='throughput.json',
      modules=(
        'bench.throughput',
        *(
          f'experiments.{n}'
          for n in (
            'mnist_vae',
            'mnist_ae',
            'fruits_vae',
            'fruits_ae',
            'mnist_dcgan',
            'fruits_dcgan',
            'mnist_classifier',
          )
        ),
        'genjax.tasks.vae',
        'genjax.tasks.autoencoder',
        'genjax.tasks.gan',
        'genjax.tasks.classifier',
        'genjax.data.mnist',
        'genjax.data.fruits',
      ),
      benchmark=True,
    ),
    Entry(
      'fsdp_memory',
      "train-state memory a device under 'jit' and 'fsdp' on 1, 2 and 4 devices",
      script=('bench.memory', '--out={workdir}/memory.json'),
      metrics_file='memory.json',
      modules=(
        'bench.memory',
        'experiments.shakespeare_char',
        'genjax.tasks.lm',
        'genjax.data.text',
        'genjax.step.sharding',
      ),
      benchmark=True,
    ),
    Entry(
      'lm',
      'language models: train-step FLOP/s, cached decoding',
      script=('bench.lm', '--out={workdir}/lm.json'),
      metrics_file='lm.json',
      modules=('bench.lm', 'experiments.shakespeare_char', 'genjax.tasks.lm', 'genjax.data.text'),
      benchmark=True,
    ),
    Entry(
      'lm_kept_malloc',
      'the same train step with freed host memory kept (glibc; genjax.run.host_memory)',
      script=('bench.lm', '--parts=flops', '--host_malloc=keep', '--out={workdir}/lm.json'),
      metrics_file='lm.json',
      modules=(
        'bench.lm',
        'experiments.shakespeare_char',
        'genjax.tasks.lm',
        'genjax.data.text',
        'genjax.run.host_memory',
      ),
      benchmark=True,
    ),
    Entry(
      'multi30k_de_en_cpu',
      'encoder-decoder, Multi30k German -> English, the CPU recipe: test_2016_flickr BLEU'
      ' (lowercased Moses tokens; beam 5), sacreBLEU, chrF',
      config='experiments/multi30k_de_en.py:cpu',
      show=(('bleu', 'BLEU {:.2f}'), ('sacrebleu', 'sacreBLEU {:.2f}'), ('chrf', 'chrF {:.2f}')),
    ),
    Entry(
      'multi30k_en_de_cpu',
      'the same, English -> German',
      config='experiments/multi30k_en_de.py:cpu',
      show=(('bleu', 'BLEU {:.2f}'), ('sacrebleu', 'sacreBLEU {:.2f}'), ('chrf', 'chrF {:.2f}')),
    ),
    Entry(
      'stdlib_docstrings',
      'code summarization, stdlib functions -> first docstring line: smoothed BLEU-4'
      ' (CodeXGLUE), ROUGE-L, and the two baselines\' BLEU-4',
      config='experiments/stdlib_docstrings.py',
      show=(
        ('bleu4', 'BLEU-4 {:.2f}'),
        ('rouge_l', 'ROUGE-L {:.2f}'),
        ('name_words_bleu4', 'name-words baseline {:.2f}'),
        ('nearest_train_bleu4', 'nearest-train baseline {:.2f}'),
        ('loss', 'test loss {:.3f}'),
        ('loss_shuffled_sources', '{:.3f} with shuffled sources'),
      ),
    ),
    Entry(
      'shakespeare_char_cpu',
      'character GPT at nanoGPT\'s CPU size on Tiny Shakespeare: validation loss'
      ' (nats/char) over all windows of the last 10%',
      config='experiments/shakespeare_char.py:cpu',
      show=(('loss', 'val loss {:.4f}'), ('bits_per_char', '{:.3f} bits/char')),
    ),
    Entry(
      'python_code',
      'GPT with a 2,048-piece BPE on the Python standard library: validation loss'
      ' (nats/token), bits/char, parse rate of completed function headers',
      config='experiments/python_code.py',
      show=(
        ('loss', 'val loss {:.4f}'),
        ('bits_per_char', '{:.3f} bits/char'),
        ('parse_rate', 'parse rate {:.2f}'),
      ),
    ),
    Entry(
      'stdlib_bert',
      'BERT encoder pretrained by masked language modelling on the Python standard library'
      ' (python_code\'s corpus and BPE): masked-token accuracy on the held-out files',
      config='experiments/stdlib_bert.py',
      show=(
        ('masked_token_accuracy', 'masked-token accuracy {:.4f}'),
        ('masked_token_loss', 'loss {:.4f}'),
        ('most_common_token_accuracy', 'commonest-token baseline {:.4f}'),
      ),
    ),
    Entry(
      'stdlib_classify',
      'which of 10 stdlib packages a function is from (its module\'s names hidden): held-out'
      ' accuracy fine-tuned from stdlib_bert and from scratch, 100 labels a class and all',
      script=('bench.bert_finetune', '--workdir={workdir}', '--bert_workdir={stdlib_bert}'),
      metrics_file='results.json',
      show=(
        ('variants.pretrained_100.held_out_accuracy', 'fine-tuned, 100 a class {:.4f}'),
        ('variants.scratch_100.held_out_accuracy', 'from scratch {:.4f}'),
        ('variants.pretrained_all.held_out_accuracy', 'fine-tuned, all labels {:.4f}'),
        ('variants.scratch_all.held_out_accuracy', 'from scratch {:.4f}'),
      ),
      needs=('stdlib_bert',),
      modules=(
        'bench.bert_finetune',
        'experiments.stdlib_classify',
        'genjax.tasks.text_classifier',
        'genjax.data.stdlib_modules',
      ),
    ),
    Entry(
      'chitchat',
      'chat GPT on the Chit-Chat Challenge conversations (turns, 4,096-piece BPE): validation'
      ' perplexity per token against an interpolated Kneser-Ney 3-gram on the same tokens;'
      ' distinct-1/2 of 200 sampled replies against the human replies to the same turns',
      config='experiments/chitchat.py',
      show=(
        ('perplexity', 'val perplexity {:.2f}'),
        ('kn3_perplexity', 'KN 3-gram {:.2f}'),
        ('distinct_1', 'distinct-1 {:.3f}'),
        ('human_distinct_1', '(human {:.3f})'),
        ('distinct_2', 'distinct-2 {:.3f}'),
        ('human_distinct_2', '(human {:.3f})'),
      ),
    ),
    Entry(
      'jsb_frames',
      'Bach chorales as piano rolls (quarter notes, Boulanger-Lewandowski split): a Transformer'
      ' over steps with a NADE over each step\'s 88 keys, test NLL per time step (nats)',
      config='experiments/jsb_frames.py',
      show=(
        ('test_nll_per_step', 'test NLL {:.3f}'),
        ('valid_nll_per_step', 'valid NLL {:.3f}'),
      ),
    ),
    Entry(
      'jsb_voices',
      'Bach chorales as four voices (16th notes, Coconet\'s split): the decoder LM, NLL per'
      ' token; musical statistics of 32 composed pieces beside the test chorales\'',
      config='experiments/jsb_voices.py',
      show=(
        ('test_nll_per_token', 'test NLL {:.3f}'),
        ('valid_nll_per_token', 'valid NLL {:.3f}'),
        ('samples.in_key_share', 'in key {:.3f}'),
        ('test_set.in_key_share', '(test {:.3f})'),
        ('samples.parallel_fifth_rate', 'parallel fifths {:.4f}'),
        ('test_set.parallel_fifth_rate', '(test {:.4f})'),
      ),
    ),
  )
}


def _workdir(name: str) -> str:
  return os.path.join(_WORKDIR_ROOT.value, name)


def _config_of(entry: Entry):
  path, _, variant = entry.config.partition(':')
  module = importlib.import_module(path[: -len('.py')].replace('/', '.'))
  return module.get_config(variant) if variant else module.get_config()


def _code(entry: Entry) -> list[str]:
  modules = list(entry.modules)
  if entry.config:
    from genjax import tasks  # pylint: disable=import-outside-toplevel (only to find the files)
    from genjax.data import datasets  # pylint: disable=import-outside-toplevel

    config = _config_of(entry)
    modules += [
      'launch.main',
      'launch.evaluate',
      entry.config.partition(':')[0][: -len('.py')].replace('/', '.'),
      tasks.FAMILIES[config.task],
      datasets.DATASETS[config.data.name],
    ]
  return records.code_closure(modules)


def _commands(entry: Entry) -> list[list[str]]:
  names = {need: _workdir(need) for need in entry.needs}
  fill = lambda args: [a.format(workdir=_workdir(entry.name), **names) for a in args]
  workdir = f'--workdir={_workdir(entry.name)}'
  if entry.script:
    return [['-m', entry.script[0], *fill(entry.script[1:])]]
  return [
    ['-m', 'launch.main', f'--config={entry.config}', workdir, *fill(entry.flags)],
    ['-m', 'launch.evaluate', workdir],
  ]


def _get(metrics: dict, key: str):
  for part in key.split('.'):
    if not isinstance(metrics, dict) or part not in metrics:
      return None
    metrics = metrics[part]
  return metrics


def _devices(log: str) -> int | None:
  found = re.findall(r'CPU: (\d+) XLA device', log)
  return int(found[-1]) if found else None


def measure(entry: Entry) -> str:
  """Runs the entry's commands in a fresh workdir and writes its record."""
  for need in entry.needs:
    if not os.path.exists(os.path.join(_workdir(need), 'config.json')):
      raise app.UsageError(
        f'{entry.name} reads the workdir of {need}, and {_workdir(need)} has no run: '
        f'measure it first (python -m bench.results --only={need},{entry.name}).'
      )
  workdir = _workdir(entry.name)
  if os.path.exists(workdir):  # a fresh run, not a resumed one; the old one is kept aside
    aside = f'{workdir}.previous'
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(workdir, aside)
    print(f'{workdir} existed: moved to {aside}', flush=True)
  # launch.main makes its own workdir; a benchmark writes into it.
  os.makedirs(workdir if entry.script else os.path.dirname(os.path.abspath(workdir)), exist_ok=True)
  code = _code(entry)
  record = {'entry': entry.name, 'what': entry.what, **records.provenance(code)}
  commands, seconds, log = [], [], ''
  with records.OtherLoad() as other:
    for args in _commands(entry):
      command = [records.python(), *args]
      commands.append(' '.join(command))
      print(f'$ {commands[-1]}', flush=True)
      start = time.perf_counter()
      done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
      seconds.append(round(time.perf_counter() - start, 2))
      log += done.stderr
      with open(f'{workdir}.log', 'a') as f:
        f.write(f'$ {commands[-1]}\n{done.stdout}{done.stderr}')
      if done.returncode:
        raise RuntimeError(
          f'{commands[-1]} exited with {done.returncode}; its output is in {workdir}.log:\n'
          + done.stderr[-3000:]
        )
  with open(os.path.join(workdir, entry.metrics_file)) as f:
    metrics = json.load(f)
  table = {k: metrics.pop(k) for k in ('title', 'summary', 'columns', 'rows') if k in metrics}
  record.update(
    **table,
    commands=commands,
    wall_seconds=dict(zip(('train', 'evaluate') if len(seconds) == 2 else ('total',), seconds)),
    metrics=metrics,
  )
  record['machine']['xla_cpu_devices'] = _devices(log)
  record['machine']['other_processes_cpu_share'] = round(other.share, 3)
  return records.write(entry.name, record)


def _minutes(seconds: float) -> str:
  return f'{int(seconds // 60)} min {seconds % 60:.0f} s' if seconds >= 60 else f'{seconds:.1f} s'


def figures(entry: Entry, record: dict) -> str:
  shown = []
  for key, fmt in entry.show:
    value = _get(record['metrics'], key)
    if value is not None:
      shown.append(fmt.format(value))
  return ', '.join(shown)


def _when(record: dict) -> str:
  machine = record['machine']
  other = machine.get('other_processes_cpu_share', 0.0)
  devices = machine.get('xla_cpu_devices')
  return (
    f"{record['date'][:10]}, {record['git']['commit'][:7]}, {machine['cores']} cores"
    + (f', {devices} XLA devices' if devices else '')
    + (f'; other processes used {100 * other:.0f}% of the cores' if other > BUSY else '')
  )


def experiments_table(found: dict[str, dict]) -> list[str]:
  lines = [
    '| entry | what | measured | training | evaluation | when, commit, machine | current? |',
    '|---|---|---|---|---|---|---|',
  ]
  for name, entry in ENTRIES.items():
    if entry.benchmark:
      continue
    record = found.get(name)
    if record is None:
      lines.append(f'| `{name}` | {entry.what} | no record yet | | | | `--only={name}` |')
      continue
    wall = record['wall_seconds']
    stale = records.staleness(record)
    lines.append(
      f"| `{name}` | {entry.what} | **{figures(entry, record)}** | "
      f"{_minutes(wall.get('train', wall.get('total', 0)))} | "
      f"{_minutes(wall['evaluate']) if 'evaluate' in wall else '(included)'} | {_when(record)} | "
      f"{'stale: ' + stale if stale else 'yes'} |"
    )
  return lines


def benchmark_sections(found: dict[str, dict]) -> list[str]:
  """Records written by the benchmarks: each carries its own table (columns, rows)."""
  lines = []
  for name, entry in ENTRIES.items():
    record = found.get(name)
    if not entry.benchmark:
      continue
    if record is None:
      lines += [
        f'### {entry.what}',
        '',
        f'No record yet: `python -m bench.results --only={name}`.',
        '',
      ]
      continue
    stale = records.staleness(record)
    lines += [
      f"### {record['title']}",
      '',
      f"`results/{name}.json`: {_when(record)}; CPU {record['machine']['cpu']}; "
      f"{'**stale**: ' + stale if stale else 'current'}. Command: `{record['commands'][0]}`.",
      '',
      *([record['summary'], ''] if record.get('summary') else []),
      '| ' + ' | '.join(record['columns']) + ' |',
      '|' + '---|' * len(record['columns']),
      *('| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in record['rows']),
      '',
    ]
  return lines


HEADER = """# Results

Every figure on this page is read from a record in `results/`, written by the script that
measured it; this page is generated from them by `python -m bench.results --tables`, so
edit the records' producers, not the page. A record holds the exact commands, the commit,
the machine (CPU model, cores, XLA devices, load), the library versions, the date and the
wall times. *current?* says whether any commit since the record changed a file the
measurement ran; a stale row is re-measured with `python -m bench.results --only=NAME`,
one entry at a time on an otherwise idle machine.

Training time is the wall time of `launch.main` with the experiment's default config
(start-up, data loading or generation, in-training evaluation, samples and checkpoints
included); evaluation is `launch.evaluate`'s on the full test set.

## Experiments

"""

REFERENCES = """
For reference (not measured here): Burda et al. (2015) report 86.76 nats for a
one-stochastic-layer VAE on MNIST; Ruff et al. (2018, Deep SVDD) report a mean one-class
AUROC of 0.948; nanoGPT's README gives a validation loss of about 1.88 for its CPU
shakespeare_char run.

"""


def write_tables() -> None:
  found = records.load_all()
  machines = sorted({r['machine']['cpu'] for r in found.values()})
  text = (
    HEADER
    + (f"Machines in these records: {'; '.join(machines)}.\n\n" if machines else '')
    + '\n'.join(experiments_table(found))
    + '\n\nThe commands each record ran (its JSON file has the rest of its provenance):\n\n'
    + '\n'.join(
      f"- `{name}`: " + ', then '.join(f'`{c}`' for c in found[name]['commands'])
      for name, entry in ENTRIES.items()
      if name in found and not entry.benchmark
    )
    + '\n'
    + REFERENCES
    + '\n'.join(family_tables.sections(found))
    + '\n## Benchmarks\n\n'
    + ('\n'.join(benchmark_sections(found)) or 'No benchmark records yet.\n')
  )
  with open(RESULTS_MD, 'w') as f:
    f.write(text.rstrip('\n') + '\n')
  _readme_figures(found)


def _readme_figures(found: dict[str, dict]) -> None:
  """Fills the last column of the README's experiments table with each headline figure."""
  with open(README) as f:
    lines = f.read().split('\n')
  for i, line in enumerate(lines):
    names = (
      re.findall(r'`(?:experiments/)?(\w+)\.py', line.split('|')[1])
      if line.startswith('| `')
      else []
    )
    if not names:
      continue
    cells = []
    for name in names:
      name = README_ROWS.get(name, name)
      entry, record = ENTRIES.get(name), found.get(name)
      if entry and record:
        headline = figures(dataclasses.replace(entry, show=entry.show[:1]), record)
        cells.append(headline + (' (stale)' if records.staleness(record) else ''))
    parts = line.split('|')
    parts[-2] = ' ' + ('; '.join(cells) if cells else '—') + ' '
    lines[i] = '|'.join(parts)
  with open(README, 'w') as f:
    f.write('\n'.join(lines))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  unknown = [name for name in _ONLY.value if name not in ENTRIES]
  if unknown:
    raise app.UsageError(f'--only: unknown {unknown}; the entries: {", ".join(ENTRIES)}.')
  found = records.load_all()
  if _LIST.value:
    for name in ENTRIES:
      record = found.get(name)
      state = 'no record' if record is None else (records.staleness(record) or 'current')
      print(f'{name}: {state}')
    return
  names = list(_ONLY.value)
  if _STALE.value:
    names += [n for n in ENTRIES if n not in found or records.staleness(found[n])]
  failed = {}
  if not _TABLES.value:
    for name in dict.fromkeys(names):
      if any(need in failed for need in ENTRIES[name].needs):
        failed[name] = 'an entry it needs failed'
        continue
      try:
        print(f'Wrote {measure(ENTRIES[name])}', flush=True)
      except RuntimeError as e:  # one failed run does not cost the others theirs
        failed[name] = str(e)
        print(f'{name} FAILED: {e}', file=sys.stderr, flush=True)
      write_tables()
  write_tables()
  print(f'Wrote {RESULTS_MD} and the figures of {README}')
  if failed:
    raise SystemExit(f'Failed: {", ".join(failed)} (their logs: {_WORKDIR_ROOT.value}/NAME.log)')


if __name__ == '__main__':
  app.run(main)
