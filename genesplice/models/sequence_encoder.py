"""Hierarchical-attention DNA encoder: tokens around a TSS → one embedding per gene.

Layout (b batch, l bases, n tokens after the stem, w windows, t tokens per window, d width)::

    tokens [b, l] ──one-hot (PAD → 0)──► conv stem, strided (8·4·4 = 128× by default) ──► x [b, n, d]
    x ──► n_layers × HierarchicalBlock ──► token_states [b, n, d]  (+ state_mask [b, n])
          ├ local attention inside windows of t tokens (every other layer shifted by t/2)
          ├ per-window summaries (masked mean) ─► global attention + MLP at width d_global
          │                                         └─► projected back, broadcast to the window
          └ MLP per token
    token_states ──► TSS-aware attention pooling (learned queries + bias on signed log distance
                     to the TSS) ──► embedding [b, d]

Cost is linear in length: the stem reads one-hot bases with a strided first conv (no
full-resolution feature map) and runs over chunks with a halo (exact), local attention costs O(n·t), and global attention runs over
n/t summaries. Most parameters sit in the global path (few tokens, MEGABYTE-style), so compute
per base stays small at a given parameter count.

Masks (``True`` = real base) are honoured everywhere: padded positions are zeroed after every
layer, excluded as attention keys, from window summaries and from pooling, and window
boundaries do not depend on the padded length. So a sequence right-padded to any length gives
the same embedding as the unpadded sequence (up to float rounding).
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.encode import MASK_INDEX, PAD_INDEX, VOCAB_SIZE


@dataclass(frozen=True)
class SequenceEncoderConfig:
    d_model: int = 256                  # token width, and the size of the gene embedding
    d_global: int = 640                 # width of the window-summary (global) path
    n_layers: int = 4
    n_heads: int = 8                    # local attention heads (head dim d_model / n_heads)
    n_global_heads: int = 10
    n_pool_heads: int = 4
    window: int = 128                   # tokens per local-attention window (even)
    stem_strides: tuple[int, ...] = (8, 4, 4)
    stem_channels: tuple[int, ...] = (64, 128)   # widths before the last stage (which is d_model)
    stem_kernel: int = 3                # kernel of the residual conv in each stem stage
    stem_chunk_tokens: int = 512        # run the stem over chunks of this many output tokens
                                        # (+ a halo covering its receptive field): exact, and
                                        # keeps the full-resolution working set cache-sized
    ff_mult: int = 4
    global_ff_mult: int = 4
    dropout: float = 0.0
    rotary_base: float = 10_000.0
    n_distance_buckets: int = 16        # per side, log2-spaced, for the TSS pooling bias
    checkpointing: bool = False         # activation checkpointing of blocks when training

    def __post_init__(self) -> None:
        problems = []
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            problems.append(f"d_model ({self.d_model}) / n_heads ({self.n_heads}) must be an even integer")
        if self.d_global % self.n_global_heads or (self.d_global // self.n_global_heads) % 2:
            problems.append(f"d_global ({self.d_global}) / n_global_heads ({self.n_global_heads}) "
                            "must be an even integer")
        if self.d_model % self.n_pool_heads:
            problems.append(f"d_model ({self.d_model}) must be divisible by n_pool_heads ({self.n_pool_heads})")
        if self.window < 2 or self.window % 2:
            problems.append(f"window must be an even number >= 2 (got {self.window})")
        if not self.stem_strides or any(s < 1 for s in self.stem_strides):
            problems.append(f"stem_strides must be positive (got {self.stem_strides})")
        if len(self.stem_channels) != len(self.stem_strides) - 1:
            problems.append(f"stem_channels needs {len(self.stem_strides) - 1} entries, one per stem "
                            f"stage but the last (got {self.stem_channels})")
        if self.stem_chunk_tokens < 1:
            problems.append(f"stem_chunk_tokens must be >= 1 (got {self.stem_chunk_tokens})")
        if self.n_layers < 1 or not 0.0 <= self.dropout < 1.0:
            problems.append("need n_layers >= 1 and 0 <= dropout < 1")
        if problems:
            raise ValueError("invalid SequenceEncoderConfig: " + "; ".join(problems))

    @property
    def downsample(self) -> int:
        """Bases per token after the stem."""
        return math.prod(self.stem_strides)

    @property
    def out_dim(self) -> int:
        return self.d_model

    @classmethod
    def small(cls, **overrides) -> "SequenceEncoderConfig":
        """~0.8 M parameters, 32 bases per token: tests, short promoters, quick pretraining."""
        base = dict(d_model=64, d_global=128, n_layers=2, n_heads=4, n_global_heads=4,
                    n_pool_heads=4, window=32, stem_strides=(4, 4, 2), stem_channels=(32, 64),
                    stem_kernel=5)
        return cls(**{**base, **overrides})

    @classmethod
    def base(cls, **overrides) -> "SequenceEncoderConfig":
        """~25 M parameters, 128 bases per token, 16 kb local windows: up to 1 Mb per gene."""
        return cls(**overrides)

    @classmethod
    def promoter(cls, **overrides) -> "SequenceEncoderConfig":
        """The fused model's encoder for 60 bp core promoters: 4 bases per token, one local
        window of 16 tokens (~40 k parameters)."""
        base = dict(d_model=32, d_global=64, n_layers=1, n_heads=2, n_global_heads=2,
                    n_pool_heads=2, window=16, stem_strides=(2, 2, 1), stem_channels=(16, 32),
                    stem_kernel=5)
        return cls(**{**base, **overrides})

    @classmethod
    def long_study(cls, **overrides) -> "SequenceEncoderConfig":
        """The long-sequence study's encoder: :meth:`small` widths and depth (~0.64 M
        parameters) with the base config's 128-bases-per-token stem (strides 8·4·4).

        Measured on the shared 2-core machine (1 thread, 100 kb, no_grad): 0.30 s per window
        with the small config's 32× stem against 0.05 s with this one.
        """
        return cls.small(**{"stem_strides": (8, 4, 4), **overrides})

    @classmethod
    def preset(cls, name: str, **overrides) -> "SequenceEncoderConfig":
        """A named preset (:data:`ENCODER_PRESETS`), e.g. ``model.promoter_encoder`` of a run."""
        if name not in ENCODER_PRESETS:
            raise GeneSpliceInputError(f"unknown sequence-encoder preset {name!r} (expected one "
                                       f"of {list(ENCODER_PRESETS)})")
        return getattr(cls, name)(**overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples → lists), as stored in checkpoints."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str | os.PathLike | None = None
                  ) -> "SequenceEncoderConfig":
        """Inverse of :meth:`to_dict`; unknown or invalid fields are an input error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GeneSpliceInputError(f"unknown sequence-encoder config fields {unknown} "
                                       f"(expected a subset of {sorted(known)})", path=path)
        try:
            return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})
        except (TypeError, ValueError) as err:
            raise GeneSpliceInputError(f"invalid sequence-encoder config ({err})",
                                       path=path) from err


#: named encoder configurations (``SequenceEncoderConfig.preset(name)``)
ENCODER_PRESETS = ("promoter", "small", "base", "long_study")


# ---------------------------------------------------------------------------------- helpers

def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotary_table(positions: torch.Tensor, dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``[n, dim]``, of rotary angles at ``positions [n]``."""
    inv_freq = base ** (-torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) / dim)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]       # n dim/2
    angles = torch.cat((angles, angles), dim=-1)                             # n dim
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate ``x [..., n, e]`` by a :func:`rotary_table` (relative positions via q·k)."""
    cos, sin = table
    return (x * cos + rotate_half(x) * sin).to(x.dtype)


def _key_mask(mask: torch.Tensor) -> torch.Tensor:
    """``[B, k]`` key mask → SDPA boolean ``attn_mask [B, 1, 1, k]``; rows with no real key
    attend to everything (their outputs are zeroed by the caller) so SDPA never yields NaN."""
    empty = ~mask.any(dim=-1, keepdim=True)
    return rearrange(mask | empty, "b k -> b 1 1 k")


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim) / weights.sum(dim).clamp(min=1.0)


class ChannelRMSNorm(nn.Module):
    """RMS norm over channels of ``[b, c, l]`` (per position, so padding never leaks in)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x * scale * self.weight[:, None]


class StemStage(nn.Module):
    """Strided conv (downsample by ``stride``, kernel covering the block and half of each
    neighbour) then a residual conv; outputs on padded positions are zeroed."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int):
        super().__init__()
        self.stride = stride
        self.down = nn.Conv1d(c_in, c_out, kernel_size=stride + 2 * (stride // 2), stride=stride,
                              padding=stride // 2)
        self.norm = ChannelRMSNorm(c_out)
        self.conv = nn.Conv1d(c_out, c_out, kernel_size=kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: b c l, mask: b l  (l divisible by stride)
        mask = rearrange(mask, "b (n s) -> b n s", s=self.stride).any(-1)
        keep = mask[:, None, :].to(x.dtype)
        x = self.down(x) * keep
        x = x + self.conv(F.gelu(self.norm(x))) * keep
        return x, mask


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mult: int, dropout: float):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(dim * mult, dim), nn.Dropout(dropout))


class Attention(nn.Module):
    """Pre-norm multi-head self-attention with rotary positions over ``[B, k, dim]``."""

    def __init__(self, dim: int, n_heads: int, dropout: float, rotary_base: float):
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout
        self.rotary_base = rotary_base

    def rotary_table(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        dim = self.qkv.in_features // self.n_heads
        return rotary_table(torch.arange(n, device=device), dim, self.rotary_base)

    def qkv_heads(self, x: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor]):
        q, k, v = rearrange(self.qkv(self.norm(x)), "b k (three h e) -> three b h k e",
                            three=3, h=self.n_heads)
        return apply_rotary(q, table), apply_rotary(k, table), v

    def attend(self, q, k, v, key_mask: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=_key_mask(key_mask),
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out(rearrange(out, "b h k e -> b k (h e)"))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_heads(x, self.rotary_table(x.shape[1], x.device))
        return self.attend(q, k, v, mask)


class HierarchicalBlock(nn.Module):
    """Local window attention, global attention over window summaries (broadcast back), MLP."""

    def __init__(self, cfg: SequenceEncoderConfig, shifted: bool):
        super().__init__()
        self.window = cfg.window
        self.shifted = shifted
        self.local_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout, cfg.rotary_base)
        self.to_global = nn.Sequential(nn.LayerNorm(cfg.d_model), nn.Linear(cfg.d_model, cfg.d_global))
        self.global_attn = Attention(cfg.d_global, cfg.n_global_heads, cfg.dropout, cfg.rotary_base)
        self.global_ff = FeedForward(cfg.d_global, cfg.global_ff_mult, cfg.dropout)
        self.from_global = nn.Sequential(nn.LayerNorm(cfg.d_global), nn.Linear(cfg.d_global, cfg.d_model))
        self.ff = FeedForward(cfg.d_model, cfg.ff_mult, cfg.dropout)

    def _layout(self, n: int) -> tuple[int, int, int]:
        """(left pad, right pad, window size). Windows start at token 0 (or −t/2 when shifted)
        whatever the padded length, so padding never moves a real token to another window.
        With n ≤ t/2 all tokens share window 0 in both layouts: use one window of n tokens."""
        t = self.window
        if n <= t // 2:
            return 0, 0, n
        left = t // 2 if self.shifted else 0
        return left, (-(n + left)) % t, t

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``x [b, n, d]``, ``mask [b, n]``, ``rope``: rotary table of token positions ``0..n-1``."""
        b, n, _ = x.shape
        keep = mask.unsqueeze(-1).to(x.dtype)
        left, right, t = self._layout(n)

        # local attention inside windows (rotary on absolute token positions)
        q, k, v = self.local_attn.qkv_heads(x, rope)
        qkv = torch.stack((q, k, v))                                   # three b h n e
        qkv = F.pad(qkv, (0, 0, left, right))
        qkv = rearrange(qkv, "three b h (w t) e -> three (b w) h t e", t=t)
        wmask = F.pad(mask, (left, right), value=False)
        wmask = rearrange(wmask, "b (w t) -> (b w) t", t=t)
        local = self.local_attn.attend(qkv[0], qkv[1], qkv[2], wmask)  # (b w) t d
        local = rearrange(local, "(b w) t d -> b (w t) d", b=b)[:, left:left + n]
        x = x + local * keep

        # global attention among per-window summaries, broadcast back to every token
        xw = rearrange(F.pad(x, (0, 0, left, right)), "b (w t) d -> b w t d", t=t)
        summary_mask = rearrange(wmask, "(b w) t -> b w t", b=b)
        s = self.to_global(masked_mean(xw, summary_mask, dim=2))       # b w g
        s_mask = summary_mask.any(-1)                                  # b w
        s = s + self.global_attn(s, s_mask)
        s = s + self.global_ff(s)
        back = repeat(self.from_global(s), "b w d -> b (w t) d", t=t)[:, left:left + n]
        x = x + back * keep

        return x + self.ff(x) * keep


class TssAttentionPool(nn.Module):
    """Attention pooling to one vector per gene: learned query per head, plus a learned bias per
    head on the signed, log2-bucketed distance between each token and the TSS."""

    def __init__(self, cfg: SequenceEncoderConfig):
        super().__init__()
        self.n_heads = cfg.n_pool_heads
        self.downsample = cfg.downsample
        self.n_buckets = cfg.n_distance_buckets
        self.norm = nn.LayerNorm(cfg.d_model)
        self.query = nn.Parameter(torch.randn(cfg.n_pool_heads, cfg.d_model // cfg.n_pool_heads) * 0.02)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=False)
        self.distance_bias = nn.Parameter(torch.zeros(2 * cfg.n_distance_buckets - 1, cfg.n_pool_heads))
        self.out = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.LayerNorm(cfg.d_model))

    def buckets(self, n: int, tss_index: torch.Tensor) -> torch.Tensor:
        """``[b, n]`` bucket of each token's centre relative to the TSS (bases, signed)."""
        centres = (torch.arange(n, device=tss_index.device) + 0.5) * self.downsample
        r = centres[None, :] - tss_index[:, None].to(centres.dtype)             # b n
        scale = self.downsample / 2
        mag = torch.floor(torch.log2(1 + r.abs() / scale)).clamp(max=self.n_buckets - 1)
        return (self.n_buckets - 1 + torch.sign(r) * mag).long()

    def weights_and_values(self, states, state_mask, tss_index):
        b, n, _ = states.shape
        k, v = rearrange(self.kv(self.norm(states)), "b n (two h e) -> two b h n e",
                         two=2, h=self.n_heads)
        bias = rearrange(self.distance_bias[self.buckets(n, tss_index)], "b n h -> b h 1 n")
        bias = bias.masked_fill(~state_mask[:, None, None, :], float("-inf"))
        q = repeat(self.query, "h e -> b h 1 e", b=b)
        return q, k, v, bias

    def forward(self, states, state_mask, tss_index) -> torch.Tensor:
        q, k, v, bias = self.weights_and_values(states, state_mask, tss_index)
        pooled = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.out(rearrange(pooled, "b h 1 e -> b (h e)"))

    def attention(self, states, state_mask, tss_index) -> torch.Tensor:
        q, k, _, bias = self.weights_and_values(states, state_mask, tss_index)
        logits = torch.einsum("bhqe,bhne->bhqn", q, k) / math.sqrt(q.shape[-1]) + bias
        return rearrange(logits.softmax(-1), "b h 1 n -> b h n")


class SequenceEncoder(nn.Module):
    """DNA tokens ``[b, l]`` + mask → gene embedding ``[b, d_model]`` (see module docstring).

    Works for any length ≥ 1 base: 60 bp promoters (one token) up to ≥ 1 Mb windows.
    """

    def __init__(self, config: SequenceEncoderConfig):
        super().__init__()
        self.config = config
        onehot = torch.zeros(VOCAB_SIZE, 6)
        onehot[:5, :5] = torch.eye(5)           # A C G T N
        onehot[MASK_INDEX, 5] = 1.0             # hidden base (masked-nucleotide pretraining)
        onehot[PAD_INDEX] = 0.0                 # padding reads as nothing
        self.register_buffer("onehot", onehot, persistent=False)
        widths = [6, *config.stem_channels, config.d_model]
        self.stem = nn.ModuleList(
            StemStage(c_in, c_out, s, config.stem_kernel)
            for c_in, c_out, s in zip(widths[:-1], widths[1:], config.stem_strides))
        self.blocks = nn.ModuleList(HierarchicalBlock(config, shifted=i % 2 == 1)
                                    for i in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.pool = TssAttentionPool(config)

    def stem_halo_tokens(self) -> int:
        """Tokens of context each side that cover the stem's receptive field (for chunking)."""
        radius = 0                                    # in output positions of the current stage
        for stage in reversed(self.stem):
            radius += stage.conv.kernel_size[0] // 2
            radius = (radius + 1) * stage.stride + stage.down.kernel_size[0]
        return -(-radius // self.config.downsample) + 1

    def _stem(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens/mask [b, l]`` (l a multiple of downsample) → ``x [b, d, n]``, ``mask [b, n]``."""
        x = self.onehot[tokens.masked_fill(~mask, PAD_INDEX)]          # b l c
        x = rearrange(x, "b l c -> b c l")
        for stage in self.stem:
            x, mask = stage(x, mask)
        return x, mask

    def _chunked_stem(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same result as :meth:`_stem`, computed over chunks of tokens plus a halo, so memory
        beyond the output is O(chunk) and the working set stays in cache at any length."""
        ds, chunk = self.config.downsample, self.config.stem_chunk_tokens
        n = tokens.shape[1] // ds
        if n <= chunk:
            return self._stem(tokens, mask)
        halo = self.stem_halo_tokens()
        pieces, masks = [], []
        for start in range(0, n, chunk):
            end = min(start + chunk, n)
            lo, hi = max(start - halo, 0), min(end + halo, n)
            x, m = self._stem(tokens[:, lo * ds:hi * ds], mask[:, lo * ds:hi * ds])
            pieces.append(x[:, :, start - lo:end - lo])
            masks.append(m[:, start - lo:end - lo])
        return torch.cat(pieces, dim=2), torch.cat(masks, dim=1)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check(self, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        if tokens.dim() != 2 or mask.shape != tokens.shape or mask.dtype != torch.bool:
            raise ValueError(f"expected tokens [b, l] and a bool mask of the same shape, got "
                             f"{tuple(tokens.shape)} and {tuple(mask.shape)} {mask.dtype}")
        if tokens.shape[1] == 0 or not bool(mask.any(-1).all()):
            raise ValueError("every sequence needs at least one real base (mask True)")

    def token_states(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states [b, n, d], state_mask [b, n])`` with ``n = ceil(l / downsample)``; token
        ``j`` covers bases ``[j·downsample, (j+1)·downsample)``."""
        self._check(tokens, mask)
        ds = self.config.downsample
        pad = (-tokens.shape[1]) % ds
        tokens = F.pad(tokens, (0, pad), value=PAD_INDEX)
        mask = F.pad(mask, (0, pad), value=False)
        x, mask = self._chunked_stem(tokens, mask)
        x = rearrange(x, "b d n -> b n d")
        rope = self.blocks[0].local_attn.rotary_table(x.shape[1], x.device)
        use_ckpt = self.config.checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if use_ckpt:
                x = checkpoint(block, x, mask, rope, use_reentrant=False)
            else:
                x = block(x, mask, rope)
        return self.norm(x) * mask.unsqueeze(-1).to(x.dtype), mask

    @staticmethod
    def default_tss_index(mask: torch.Tensor) -> torch.Tensor:
        """Centre of the real bases of each row: ``(first + last + 1) // 2``."""
        l = mask.shape[1]
        first = mask.to(torch.int8).argmax(1)
        last = l - 1 - mask.flip(1).to(torch.int8).argmax(1)
        return (first + last + 1) // 2

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor,
                tss_index: torch.Tensor | None = None) -> torch.Tensor:
        """Embedding ``[b, d_model]``; ``tss_index [b]`` (bases) defaults to the real-base centre."""
        states, state_mask = self.token_states(tokens, mask)
        if tss_index is None:
            tss_index = self.default_tss_index(mask)
        return self.pool(states, state_mask, tss_index.to(states.device))

    def pooling_attention(self, tokens: torch.Tensor, mask: torch.Tensor,
                          tss_index: torch.Tensor | None = None) -> torch.Tensor:
        """Pooling weights ``[b, n_pool_heads, n]`` over tokens (each row sums to 1)."""
        states, state_mask = self.token_states(tokens, mask)
        if tss_index is None:
            tss_index = self.default_tss_index(mask)
        return self.pool.attention(states, state_mask, tss_index.to(states.device))
