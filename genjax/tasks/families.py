"""The family registry's names: `config.task` -> the module that trains it.

Only this table lives here, apart from the machinery that uses it (`genjax.tasks`), so
that registering a family changes no code another family runs: the result records
(bench/records.py) leave this file out of what a measurement depends on.
"""

FAMILIES = {
  'vae': 'genjax.tasks.vae',
  'autoencoder': 'genjax.tasks.autoencoder',
  'classifier': 'genjax.tasks.classifier',
  'gan': 'genjax.tasks.gan',
  'diffusion': 'genjax.tasks.diffusion',
  'lm': 'genjax.tasks.lm',
  'seq2seq': 'genjax.tasks.seq2seq',
  'bert': 'genjax.tasks.bert',
  'text_classifier': 'genjax.tasks.text_classifier',
  'vit': 'genjax.tasks.vit',
  'chat': 'genjax.tasks.chat',
  'piano_roll': 'genjax.tasks.piano_roll',
  'voices': 'genjax.tasks.voices',
}
