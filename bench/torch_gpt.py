r"""PyTorch reference for our JAX GPT: a nanoGPT-equivalent model and training recipe.

  python bench/torch_gpt.py --data=/work/shared/data/tinyshakespeare/input.txt
  python bench/torch_gpt.py --tokens_npz=tokens.npz --threads=1 --adamw=fused --compile

Self-contained (torch, numpy, stdlib only), so it runs in genjax's environment or its own:
  pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
(`bench.frameworks --torch_python=...` names another interpreter). On a shared 2-core
machine pass --threads=1: torch's 2 OpenMP threads contending with another busy process
ran ~10x slower per step than 1 thread.

The model follows karpathy/nanoGPT model.py (token + learned position embeddings, pre-LN
blocks with fused-QKV causal attention via scaled_dot_product_attention, exact-GELU MLP,
final LayerNorm, lm_head tied to the token embedding, normal(0.02) init with residual
projections at 0.02/sqrt(2*n_layer)); training follows train.py (AdamW, weight decay on
2-D params only, linear warmup then cosine decay to min_lr, grad clip 1.0, fp32 on CPU).
Defaults are nanoGPT's CPU shakespeare_char config (README: val loss ~1.88 after 2000 steps).
--data builds the char-level data as data/shakespeare_char/prepare.py does (sorted char
vocabulary, first 90% train, last 10% val); validation loss is the mean cross-entropy over
fixed windows (the first 200 non-overlapping block_size+1 windows of val), not random batches.
--tokens_npz takes arrays train_tokens, val_windows, starts [steps, batch_size] and scalar
vocab_size, so a JAX run and this one see exactly the same tokens and batch positions.
bench/frameworks.py runs it, alternating whole runs of it and of our JAX step.
Prints one JSON object: train_seconds (the steps after --untimed_steps, evaluation excluded),
tokens_per_s, val_loss, train_loss_last (mean of the last 50 step losses), curve, params,
torch_version.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm(nn.Module):
  """LayerNorm with an optional bias (torch's LayerNorm cannot drop only the bias)."""

  def __init__(self, ndim, bias):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(ndim))
    self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

  def forward(self, x):
    return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
  def __init__(self, n_embd, n_head, dropout, bias):
    super().__init__()
    assert n_embd % n_head == 0
    self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
    self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
    self.resid_dropout = nn.Dropout(dropout)
    self.n_head, self.dropout = n_head, dropout

  def forward(self, x):
    b, t, c = x.shape
    q, k, v = self.c_attn(x).split(c, dim=2)
    q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
    y = F.scaled_dot_product_attention(
      q, k, v, attn_mask=None, is_causal=True, dropout_p=self.dropout if self.training else 0.0
    )
    y = y.transpose(1, 2).contiguous().view(b, t, c)
    return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
  def __init__(self, n_embd, dropout, bias):
    super().__init__()
    self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
    self.gelu = nn.GELU()  # exact (erf) GELU, as nanoGPT
    self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
    self.dropout = nn.Dropout(dropout)

  def forward(self, x):
    return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
  def __init__(self, n_embd, n_head, dropout, bias):
    super().__init__()
    self.ln_1 = LayerNorm(n_embd, bias)
    self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
    self.ln_2 = LayerNorm(n_embd, bias)
    self.mlp = MLP(n_embd, dropout, bias)

  def forward(self, x):
    x = x + self.attn(self.ln_1(x))
    return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
  def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, dropout=0.0, bias=False):
    super().__init__()
    self.block_size = block_size
    self.transformer = nn.ModuleDict(
      dict(
        wte=nn.Embedding(vocab_size, n_embd),
        wpe=nn.Embedding(block_size, n_embd),
        drop=nn.Dropout(dropout),
        h=nn.ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)]),
        ln_f=LayerNorm(n_embd, bias),
      )
    )
    self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
    self.transformer.wte.weight = self.lm_head.weight  # weight tying
    self.apply(self._init_weights)
    for name, p in self.named_parameters():
      if name.endswith('c_proj.weight'):
        nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

  @staticmethod
  def _init_weights(module):
    if isinstance(module, nn.Linear):
      nn.init.normal_(module.weight, mean=0.0, std=0.02)
      if module.bias is not None:
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
      nn.init.normal_(module.weight, mean=0.0, std=0.02)

  def num_params(self, non_embedding=True):
    n = sum(p.numel() for p in self.parameters())  # the tied weight is counted once
    return n - self.transformer.wpe.weight.numel() if non_embedding else n

  def forward(self, idx, targets):
    t = idx.shape[1]
    assert t <= self.block_size
    pos = torch.arange(t, dtype=torch.long, device=idx.device)
    x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
    for block in self.transformer.h:
      x = block(x)
    logits = self.lm_head(self.transformer.ln_f(x))
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


def configure_optimizer(model, weight_decay, lr, betas, adamw='plain'):
  params = [p for p in model.parameters() if p.requires_grad]
  groups = [
    {'params': [p for p in params if p.dim() >= 2], 'weight_decay': weight_decay},
    {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0},
  ]
  # nanoGPT asks for fused only on CUDA; on a CPU, torch >= 2.4 has fused and foreach too.
  implementation = {
    'plain': {'foreach': False},
    'foreach': {'foreach': True},
    'fused': {'fused': True},
  }
  return torch.optim.AdamW(groups, lr=lr, betas=betas, **implementation[adamw])


def get_lr(it, lr, min_lr, warmup_iters, lr_decay_iters):
  """nanoGPT train.py: linear warmup, cosine decay to min_lr, then min_lr."""
  if it < warmup_iters:
    return lr * (it + 1) / (warmup_iters + 1)
  if it > lr_decay_iters:
    return min_lr
  ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
  return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


@torch.no_grad()
def evaluate(model, val_windows, chunk=50):
  model.eval()
  total, n = 0.0, 0
  for i in range(0, len(val_windows), chunk):
    w = torch.from_numpy(np.asarray(val_windows[i : i + chunk], dtype=np.int64))
    loss = model(w[:, :-1], w[:, 1:])
    total += loss.item() * len(w)
    n += len(w)
  model.train()
  return total / n


class Trainer:
  """nanoGPT's training loop, one step at a time (so a benchmark can interleave it)."""

  def __init__(
    self,
    train_tokens: np.ndarray,
    val_windows: np.ndarray,
    *,
    vocab_size,
    n_layer,
    n_head,
    n_embd,
    block_size,
    batch_size,
    max_iters,
    lr,
    min_lr,
    warmup_iters,
    beta2,
    dropout,
    seed,
    batch_starts_fn=None,
    lr_decay_iters=None,
    weight_decay=0.1,
    bias=False,
    grad_clip=1.0,
    adamw='plain',
    compile_model=False,
  ):
    self.train_tokens = np.asarray(train_tokens, dtype=np.int64)
    self.val_windows = np.asarray(val_windows)
    assert self.val_windows.ndim == 2 and self.val_windows.shape[1] == block_size + 1, (
      self.val_windows.shape
    )
    self.lr, self.min_lr, self.warmup_iters = lr, min_lr, warmup_iters
    self.lr_decay_iters = max_iters if lr_decay_iters is None else lr_decay_iters
    self.batch_size, self.grad_clip = batch_size, grad_clip
    if batch_starts_fn is None:
      high = len(self.train_tokens) - block_size - 1
      batch_starts_fn = lambda step: np.random.default_rng([seed, step]).integers(
        0, high, size=batch_size
      )
    self.batch_starts_fn = batch_starts_fn
    self.offsets = np.arange(block_size + 1)
    torch.manual_seed(seed)
    self.model = GPT(vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias)
    self.model.train()
    self.optimizer = configure_optimizer(self.model, weight_decay, lr, (0.9, beta2), adamw)
    # Compiled after the optimizer holds the parameters; the first steps compile.
    self.forward = torch.compile(self.model) if compile_model else self.model
    self.params = {
      'non_embedding': self.model.num_params(True),
      'total': self.model.num_params(False),
    }

  def step(self, step: int) -> float:
    """One optimizer step on batch `step`; returns its loss (a host sync, as nanoGPT's)."""
    starts = np.asarray(self.batch_starts_fn(step), dtype=np.int64)
    assert starts.shape == (self.batch_size,), starts.shape
    windows = torch.from_numpy(self.train_tokens[starts[:, None] + self.offsets[None, :]])
    x, y = windows[:, :-1], windows[:, 1:]
    for group in self.optimizer.param_groups:
      group['lr'] = get_lr(step, self.lr, self.min_lr, self.warmup_iters, self.lr_decay_iters)
    loss = self.forward(x, y)
    self.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if self.grad_clip > 0:
      torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
    self.optimizer.step()
    return loss.item()

  def evaluate(self) -> float:
    return evaluate(self.model, self.val_windows)


def train(
  train_tokens: np.ndarray,
  val_windows: np.ndarray,
  *,
  max_iters,
  eval_every=0,
  untimed_steps=1,
  log=print,
  **kwargs,
) -> dict:
  """Trains nanoGPT on windows of train_tokens; see the module docstring for the result dict."""
  trainer = Trainer(train_tokens, val_windows, max_iters=max_iters, **kwargs)
  log(
    f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
    f'{trainer.params["non_embedding"] / 1e6:.2f}M params (non-embedding)'
  )
  curve, losses, train_seconds = [], [], 0.0
  for step in range(max_iters):
    if eval_every > 0 and step % eval_every == 0:
      curve.append((step, trainer.evaluate()))
      log(f'step {step}: val loss {curve[-1][1]:.4f}')
    t0 = time.perf_counter()
    losses.append(trainer.step(step))
    if step >= untimed_steps:  # the first (allocation, lazy init, compilation) are not timed
      train_seconds += time.perf_counter() - t0
    if eval_every > 0 and step % max(1, eval_every // 10) == 0:
      log(f'iter {step}: loss {losses[-1]:.4f}')

  val_loss = trainer.evaluate()
  if eval_every > 0:
    curve.append((max_iters, val_loss))
  log(f'final val loss {val_loss:.4f} after {max_iters} steps, {train_seconds:.1f}s')
  batch_size, block_size = kwargs['batch_size'], kwargs['block_size']
  return dict(
    train_seconds=train_seconds,
    steps=max_iters,
    tokens_per_s=(max_iters - untimed_steps) * batch_size * block_size / train_seconds
    if train_seconds > 0
    else float('nan'),
    val_loss=val_loss,
    train_loss_last=float(np.mean(losses[-50:])),
    curve=curve,
    torch_version=torch.__version__,
    num_threads=torch.get_num_threads(),
    params=trainer.params,
  )


def shakespeare_char(path, block_size, num_val_windows=200):
  """nanoGPT's shakespeare_char prepare.py, plus fixed non-overlapping validation windows."""
  with open(path, 'r', encoding='utf-8') as f:
    text = f.read()
  chars = sorted(set(text))
  stoi = {ch: i for i, ch in enumerate(chars)}
  data = np.array([stoi[c] for c in text], dtype=np.int64)
  n = int(len(data) * 0.9)
  train_tokens, val = data[:n], data[n:]
  count = min(num_val_windows, (len(val) - 1) // block_size)
  val_windows = np.stack(
    [val[i * block_size : i * block_size + block_size + 1] for i in range(count)]
  )
  return train_tokens, val_windows, len(chars)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--data', default='/work/shared/data/tinyshakespeare/input.txt')
  p.add_argument(
    '--tokens_npz',
    default=None,
    help='npz with train_tokens, val_windows, starts [steps, batch], vocab_size',
  )
  p.add_argument(
    '--steps',
    '--max_iters',
    dest='steps',
    type=int,
    default=None,
    help='default 2000, or starts.shape[0] with --tokens_npz',
  )
  p.add_argument('--lr_decay_iters', type=int, default=None, help='default: --steps')
  p.add_argument('--n_layer', type=int, default=4)
  p.add_argument('--n_head', type=int, default=4)
  p.add_argument('--n_embd', type=int, default=128)
  p.add_argument('--block_size', type=int, default=64)
  p.add_argument('--batch_size', type=int, default=12)
  p.add_argument('--lr', '--learning_rate', dest='lr', type=float, default=1e-3)
  p.add_argument('--min_lr', type=float, default=1e-4)
  p.add_argument('--warmup_iters', type=int, default=100)
  p.add_argument('--beta2', type=float, default=0.99)
  p.add_argument('--weight_decay', type=float, default=0.1)
  p.add_argument('--grad_clip', type=float, default=1.0)
  p.add_argument('--dropout', type=float, default=0.0)
  p.add_argument('--bias', action='store_true', help='biases in Linear and LayerNorm')
  p.add_argument('--seed', type=int, default=1337)
  p.add_argument('--eval_every', type=int, default=0)
  p.add_argument('--num_val_windows', type=int, default=200)
  p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
  p.add_argument('--untimed_steps', type=int, default=1, help='first steps left out of the timing')
  p.add_argument('--adamw', choices=['plain', 'foreach', 'fused'], default='plain')
  p.add_argument('--compile', action='store_true', help='torch.compile the model')
  p.add_argument('--quiet', action='store_true', help='print only the JSON result')
  a = p.parse_args()
  if a.threads:
    torch.set_num_threads(a.threads)

  batch_starts_fn = None
  if a.tokens_npz:
    z = np.load(a.tokens_npz)
    train_tokens, val_windows, vocab_size = (
      z['train_tokens'],
      z['val_windows'],
      int(z['vocab_size']),
    )
    starts = np.asarray(z['starts'], dtype=np.int64)
    a.block_size, a.batch_size = val_windows.shape[1] - 1, starts.shape[1]
    a.steps = starts.shape[0] if a.steps is None else a.steps
    if a.steps > starts.shape[0]:
      p.error(f'--steps={a.steps} but the npz has starts for {starts.shape[0]} steps')
    batch_starts_fn = lambda step: starts[step]
  else:
    train_tokens, val_windows, vocab_size = shakespeare_char(
      a.data, a.block_size, a.num_val_windows
    )
    a.steps = 2000 if a.steps is None else a.steps

  options = dict(
    vocab_size=vocab_size,
    n_layer=a.n_layer,
    n_head=a.n_head,
    n_embd=a.n_embd,
    block_size=a.block_size,
    batch_size=a.batch_size,
    max_iters=a.steps,
    lr=a.lr,
    min_lr=a.min_lr,
    warmup_iters=a.warmup_iters,
    beta2=a.beta2,
    dropout=a.dropout,
    seed=a.seed,
    batch_starts_fn=batch_starts_fn,
    lr_decay_iters=a.lr_decay_iters,
    weight_decay=a.weight_decay,
    bias=a.bias,
    grad_clip=a.grad_clip,
    adamw=a.adamw,
    compile_model=a.compile,
  )
  result = train(
    train_tokens,
    val_windows,
    eval_every=a.eval_every,
    untimed_steps=a.untimed_steps,
    log=(lambda *_: None) if a.quiet else print,
    **options,
  )
  print(json.dumps(result))


if __name__ == '__main__':
  main()
