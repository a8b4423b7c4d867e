"""Self-supervised pretraining of the sequence encoder: masked-nucleotide modelling.

``pretrain_encoder`` hides 15 % of the real A/C/G/T bases (BERT-style, see
:mod:`genesplice.models.masked_lm`) and trains the encoder plus a shallow head to predict them,
with AdamW, linear warmup then cosine decay (:mod:`genesplice.training.schedules`) and gradient
clipping. The result (and the optional checkpoint) holds the encoder config as plain data and
the encoder ``state_dict``, so the fused model can start from it::

    result = pretrain_encoder(SequenceEncoderConfig.promoter(), (tokens, mask), steps=600)
    cfg, state = load_pretrained_encoder("runs/pretrain/encoder.pt")
    train_variant("fused", data, run_cfg, ridge=ridge, out_dir=out, seq_cfg=cfg,
                  encoder_state=state)

**Contrastive view** (``contrastive_weight > 0``): each step also builds a second view of every
crop — its reverse complement (``contrastive_views="rc"``), a crop of the same locus shifted by
up to ``max_shift_bp`` bases (``"shift"``; the shifted bases come from the source row, padding
only where the row ends), or both at once (``"both"``) — and adds ``contrastive_weight`` ×
symmetric InfoNCE (:func:`~genesplice.training.losses.info_nce`) between the two views' pooled
embeddings, through a small :class:`~genesplice.models.fusion.ProjectionHead`. The masked loss
is taken on the first view only, so runs with and without the term see the same masked targets.
Both views go through the encoder as one batch. The held-out report adds the **RC
consistency** of the pooled embedding: mean cosine of ``emb(x)`` and ``emb(rc(x))``, beside the
mean cosine of ``emb(x)`` and an unrelated sequence's ``emb(rc(y))`` (what "consistent" must
beat).

Scores are reported against the **unigram-entropy baseline**: the cross-entropy (nats) of the
best context-free predictor, i.e. the entropy of the held-out base frequencies. An encoder that
learned nothing about context cannot beat it.

:func:`promoter_pretraining_sequences` assembles the default data of ``genesplice pretrain``:
the EPDnew 60 bp core promoters of genes on training chromosomes only. Genes on the test and
validation chromosomes (chr8, chr9 by default) never enter training; the validation
chromosome's promoters are the held-out set the loss is reported on; promoters whose gene has
no known chromosome are left out (it could lie on a held-out chromosome) and counted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from genesplice.annotations.expression import read_expression_table
from genesplice.io.chromosomes import normalize_chromosome
from genesplice.io.constants import EPDNEW_PROMOTERS, TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.device import module_device, resolve_device
from genesplice.models.heads import build_head
from genesplice.models.masked_lm import (MaskedNucleotideHead, MaskedTokens, mask_tokens,
                                         masked_lm_loss, unigram_entropy)
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence.cohort import build_cohort
from genesplice.sequence.dataset import SequenceBatch, collate_sequences
from genesplice.sequence.encode import (PAD_INDEX, encode_sequence, pad_tokens,
                                        reverse_complement_tokens)
from genesplice.sequence.genome import Genome
from genesplice.sequence.promoters import read_promoter_fasta
from genesplice.sequence.tss import read_tss_bed
from genesplice.sequence.windows import extract_windows
from genesplice.training.checkpoint import load_checkpoint, save_checkpoint
from genesplice.training.losses import info_nce
from genesplice.training.schedules import build_scheduler
from genesplice.training.splits import gene_chromosomes

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "masked_nucleotide_pretraining"

#: the second view of the contrastive term (``contrastive_views``)
CONTRASTIVE_VIEWS = ("rc", "shift", "both")
#: width of the contrastive projection (the :class:`ProjectionHead` output)
CONTRASTIVE_PROJ_DIM = 32

#: what ``sequences`` may be: ``(tokens [n, l], mask [n, l])``, a collated batch, or a Dataset
#: of :class:`~genesplice.sequence.dataset.SequenceItem`
Sequences = tuple[torch.Tensor, torch.Tensor] | SequenceBatch | Dataset


# ------------------------------------------------------------------------------ results

@dataclass(frozen=True)
class MaskedLossScore:
    """Masked-token cross-entropy on a fixed masking of a sequence set (nats per base)."""
    loss: float
    accuracy: float
    unigram_entropy: float      # baseline: entropy of the set's A/C/G/T frequencies
    n_targets: int
    n_sequences: int

    @property
    def gain(self) -> float:
        """Baseline minus loss (nats per masked base); > 0 means context was learned."""
        return self.unigram_entropy - self.loss

    def to_dict(self) -> dict[str, float | int]:
        return {**dataclasses.asdict(self), "gain": self.gain}


@dataclass(frozen=True)
class RcConsistency:
    """Strand consistency of the pooled embedding on a sequence set (one seeded crop each)."""
    cosine: float            # mean cos(emb(x), emb(rc(x))): 1 = strand-invariant
    cosine_unrelated: float  # mean cos(emb(x), emb(rc(y))) for another sequence y of the batch
    n_sequences: int

    @property
    def margin(self) -> float:
        """``cosine - cosine_unrelated``: how much closer x is to its own RC than to another's."""
        return self.cosine - self.cosine_unrelated

    def to_dict(self) -> dict[str, float | int]:
        return {**dataclasses.asdict(self), "margin": self.margin}


@dataclass(frozen=True)
class PretrainResult:
    config: SequenceEncoderConfig
    encoder_state: dict[str, torch.Tensor]
    head_state: dict[str, torch.Tensor]
    steps: int
    train_losses: tuple[float, ...]          # masked-token loss of every step's batch
    held_out_before: MaskedLossScore | None   # the untrained encoder on the held-out set
    held_out_after: MaskedLossScore | None
    n_train_sequences: int
    n_parameters: int
    seconds: float
    checkpoint_path: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    contrastive_losses: tuple[float, ...] = ()  # InfoNCE of every step (contrastive runs only)
    contrast_head_state: dict[str, torch.Tensor] | None = None
    rc_before: RcConsistency | None = None      # held-out RC consistency, untrained / trained
    rc_after: RcConsistency | None = None

    def summary(self) -> str:
        lines = [f"pretrained a {self.n_parameters:,}-parameter encoder for {self.steps} steps "
                 f"on {self.n_train_sequences:,} sequences in {self.seconds:.1f} s"]
        tail = self.train_losses[-max(1, len(self.train_losses) // 10):]
        if tail:
            lines.append(f"training masked loss (last 10% of steps): {sum(tail) / len(tail):.4f} "
                         "nats")
        if self.held_out_after is not None:
            a, b = self.held_out_after, self.held_out_before
            lines.append(
                f"held-out masked loss: {a.loss:.4f} nats (accuracy {a.accuracy:.3f}) vs "
                f"unigram-entropy baseline {a.unigram_entropy:.4f} (gain {a.gain:+.4f}); "
                f"untrained {b.loss:.4f}; {a.n_sequences:,} sequences, {a.n_targets:,} "
                "masked bases" if b is not None else "")
        if self.contrastive_losses:
            tail = self.contrastive_losses[-max(1, len(self.contrastive_losses) // 10):]
            st = self.settings
            lines.append(
                f"contrastive view {st.get('contrastive_views')!r} (max shift "
                f"{st.get('max_shift_bp')} bp), weight {st.get('contrastive_weight')}: training "
                f"InfoNCE (last 10% of steps) {sum(tail) / len(tail):.4f} nats (chance "
                f"ln(batch) = {_log(st.get('batch_size'), self.n_train_sequences):.4f})")
        if self.rc_after is not None:
            r, r0 = self.rc_after, self.rc_before
            lines.append(
                f"held-out RC consistency: cos(emb(x), emb(rc x)) {r.cosine:.4f} vs "
                f"{r.cosine_unrelated:.4f} for unrelated pairs (margin {r.margin:+.4f})"
                + (f"; untrained {r0.cosine:.4f} vs {r0.cosine_unrelated:.4f}"
                   if r0 is not None else ""))
        if self.checkpoint_path is not None:
            lines.append(f"checkpoint: {self.checkpoint_path}")
        return "\n".join(x for x in lines if x)


def _log(batch_size: Any, n: int) -> float:
    """ln of the InfoNCE batch (the loss of a model that cannot tell the pairs apart)."""
    return math.log(max(1, min(int(batch_size or 1), n)))


class PretrainedEncoder(NamedTuple):
    """``(config, state_dict)`` of a pretrained encoder; unpacks like a tuple."""
    config: SequenceEncoderConfig
    state_dict: dict[str, torch.Tensor]


# ------------------------------------------------------------------------------ data access

class _Source:
    """Uniform random access to ``(tokens, mask)`` rows of tensors, a batch or a Dataset."""

    def __init__(self, sequences: Sequences, what: str):
        self.dataset: Dataset | None = None
        if isinstance(sequences, SequenceBatch):
            sequences = (sequences.tokens, sequences.mask)
        if isinstance(sequences, tuple) and len(sequences) == 2:
            tokens, mask = sequences
            if (not isinstance(tokens, torch.Tensor) or not isinstance(mask, torch.Tensor)
                    or tokens.dim() != 2 or mask.shape != tokens.shape
                    or mask.dtype != torch.bool):
                raise ValueError(f"{what}: expected tokens [n, l] and a bool mask of the same "
                                 "shape")
            keep = mask.any(-1)
            if not bool(keep.all()):
                log.info("%s: %d sequences without a real base left out", what,
                         int((~keep).sum()))
                tokens, mask = tokens[keep], mask[keep]
            self.tokens, self.mask = tokens.long(), mask
            self.n = int(tokens.shape[0])
        elif isinstance(sequences, Dataset):
            self.dataset = sequences
            self.n = len(sequences)  # type: ignore[arg-type]
        else:
            raise TypeError(f"{what}: expected (tokens, mask) tensors, a SequenceBatch or a "
                            f"Dataset of SequenceItem, got {type(sequences).__name__}")
        if self.n == 0:
            raise ValueError(f"{what}: no sequences")

    def rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.dataset is None:
            return self.tokens[index], self.mask[index]
        batch = collate_sequences([self.dataset[int(i)] for i in index])
        return batch.tokens, batch.mask


def random_crops(tokens: torch.Tensor, mask: torch.Tensor, crop_bp: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``crop_bp`` slice per row whose centre lies uniformly between the row's first and
    last real base (clamped to the row); rows not longer than ``crop_bp`` are kept whole."""
    if tokens.shape[1] <= crop_bp:
        return tokens, mask
    return _gather_crops(tokens, mask, _crop_starts(mask, crop_bp, generator), crop_bp)


def _crop_starts(mask: torch.Tensor, crop_bp: int, generator: torch.Generator) -> torch.Tensor:
    n, length = mask.shape
    idx = torch.arange(length)
    first = torch.where(mask, idx, length).min(-1).values.clamp(max=length - 1)
    last = torch.where(mask, idx, -1).max(-1).values.clamp(min=0)
    lo = first - crop_bp // 2
    span = (last - first + 1).clamp(min=1)
    start = lo + (torch.rand(n, generator=generator) * span).long().clamp(max=span - 1)
    return start.clamp(min=0, max=length - crop_bp)


def _gather_crops(tokens: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, crop_bp: int):
    cols = start[:, None] + torch.arange(crop_bp)[None, :]          # n crop
    return tokens.gather(1, cols), mask.gather(1, cols)


def _shift_rows(tokens: torch.Tensor, mask: torch.Tensor, shift: torch.Tensor):
    """Row ``i`` moved by ``shift[i]`` bases: ``out[:, j] = row[j + shift]``; positions beyond
    the row become padding (mask False)."""
    length = tokens.shape[1]
    cols = torch.arange(length)[None, :] + shift[:, None]
    inside = (cols >= 0) & (cols < length)
    cols = cols.clamp(0, length - 1)
    shifted = torch.where(inside, tokens.gather(1, cols), torch.full_like(tokens, PAD_INDEX))
    return shifted, mask.gather(1, cols) & inside


def paired_views(tokens: torch.Tensor, mask: torch.Tensor, *, crop_bp: int | None,
                 views: str, max_shift_bp: int, generator: torch.Generator
                 ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Two views of the same locus per row: ``((tokens, mask), (tokens, mask))``.

    The first is :func:`random_crops` (the whole row without ``crop_bp``). The second, for
    ``views`` in :data:`CONTRASTIVE_VIEWS`: ``shift`` — the crop moved by a uniform
    ``-max_shift_bp … +max_shift_bp`` bases, cut from the source row (rows no longer than the
    crop are shifted in place, with padding where they end); ``rc`` — the reverse complement
    of the first view (tokens complemented and reversed, the padding / N mask reversed with
    them); ``both`` — the shifted crop's reverse complement. A shifted row left without a real
    base keeps shift 0.
    """
    if views not in CONTRASTIVE_VIEWS:
        raise ValueError(f"views = {views!r} (expected one of {list(CONTRASTIVE_VIEWS)})")
    if max_shift_bp < 0:
        raise ValueError(f"max_shift_bp must be >= 0 (got {max_shift_bp})")
    n, length = tokens.shape
    crop = crop_bp is not None and length > crop_bp
    start = _crop_starts(mask, crop_bp, generator) if crop else None
    a = _gather_crops(tokens, mask, start, crop_bp) if crop else (tokens, mask)
    b = a
    if views in ("shift", "both") and max_shift_bp > 0:
        shift = torch.randint(-max_shift_bp, max_shift_bp + 1, (n,), generator=generator)
        if crop:
            b = _gather_crops(tokens, mask, (start + shift).clamp(0, length - crop_bp), crop_bp)
        else:
            b = _shift_rows(*a, shift)
        empty = ~b[1].any(-1)
        if bool(empty.any()):
            b = (torch.where(empty[:, None], a[0], b[0]), torch.where(empty[:, None], a[1], b[1]))
    if views in ("rc", "both"):
        b = (reverse_complement_tokens(b[0]), b[1].flip(-1))
    return a, b


def _drop_unused_length(tokens: torch.Tensor, mask: torch.Tensor):
    """Trim trailing columns that are padding in every row (cheaper batches)."""
    used = mask.any(0).nonzero()
    end = int(used.max()) + 1 if len(used) else 1
    return tokens[:, :end], mask[:, :end]


# ------------------------------------------------------------------------------ training

@torch.no_grad()
def masked_loss_score(encoder: SequenceEncoder, head: MaskedNucleotideHead,
                      sequences: Sequences, *, mask_prob: float = 0.15, seed: int = 1,
                      batch_size: int = 64, crop_bp: int | None = None) -> MaskedLossScore:
    """Masked-token cross-entropy over a whole sequence set with a fixed (seeded) masking.

    With ``crop_bp`` each sequence is scored on one seeded random crop of that length.
    """
    src = _Source(sequences, "held-out sequences")
    was_training = encoder.training, head.training
    encoder.eval()
    head.eval()
    dev = module_device(encoder)
    gen = torch.Generator().manual_seed(seed)
    total, correct, n_targets = 0.0, 0.0, 0
    counts = torch.zeros(4, dtype=torch.float64)
    for lo in range(0, src.n, batch_size):
        tokens, mask = src.rows(torch.arange(lo, min(lo + batch_size, src.n)))
        if crop_bp is not None:
            tokens, mask = random_crops(tokens, mask, crop_bp, gen)
        tokens, mask = _drop_unused_length(tokens, mask)
        real = mask & (tokens < 4)
        counts += torch.bincount(tokens[real], minlength=4)[:4].double()
        m = mask_tokens(tokens, mask, mask_prob=mask_prob, generator=gen)
        if not bool(m.target_mask.any()):
            continue
        m = _to_device(m, dev)
        states, _ = encoder.token_states(m.inputs, mask.to(dev))
        out = masked_lm_loss(head(states, tokens.shape[1]), m)
        total += float(out.loss) * out.n_targets
        correct += float(out.accuracy) * out.n_targets
        n_targets += out.n_targets
    encoder.train(was_training[0])
    head.train(was_training[1])
    if n_targets == 0:
        raise ValueError("held-out sequences hold no maskable A/C/G/T base")
    p = counts / counts.sum()
    p = p[p > 0]
    entropy = float(-(p * p.log()).sum())
    return MaskedLossScore(loss=total / n_targets, accuracy=correct / n_targets,
                           unigram_entropy=entropy, n_targets=n_targets, n_sequences=src.n)


def _to_device(m: MaskedTokens, device: torch.device) -> MaskedTokens:
    """The masking is drawn on the CPU (seeded CPU generator); its tensors moved to ``device``."""
    return MaskedTokens(m.inputs.to(device), m.targets.to(device), m.target_mask.to(device))


@torch.no_grad()
def rc_consistency(encoder: SequenceEncoder, sequences: Sequences, *, seed: int = 1,
                   batch_size: int = 64, crop_bp: int | None = None) -> RcConsistency:
    """Mean cosine of the pooled embeddings of each sequence and of its reverse complement,
    beside the mean cosine to the reverse complement of the batch's next sequence (the
    "unrelated" pair). With ``crop_bp`` each sequence is scored on one seeded crop."""
    src = _Source(sequences, "held-out sequences")
    was_training = encoder.training
    encoder.eval()
    dev = module_device(encoder)
    gen = torch.Generator().manual_seed(seed)
    pair, other, n_other = 0.0, 0.0, 0
    for lo in range(0, src.n, batch_size):
        tokens, mask = src.rows(torch.arange(lo, min(lo + batch_size, src.n)))
        if crop_bp is not None:
            tokens, mask = random_crops(tokens, mask, crop_bp, gen)
        tokens, mask = _drop_unused_length(tokens, mask)
        (_, _), (rt, rm) = paired_views(tokens, mask, crop_bp=None, views="rc", max_shift_bp=0,
                                        generator=gen)
        emb = encoder(torch.cat([tokens, rt]).to(dev), torch.cat([mask, rm]).to(dev)).float()
        e, e_rc = emb[:len(tokens)], emb[len(tokens):]
        pair += float(F.cosine_similarity(e, e_rc, dim=-1).sum())
        if len(tokens) > 1:
            other += float(F.cosine_similarity(e, e_rc.roll(1, 0), dim=-1).sum())
            n_other += len(tokens)
    encoder.train(was_training)
    return RcConsistency(cosine=pair / src.n,
                         cosine_unrelated=other / n_other if n_other else math.nan,
                         n_sequences=src.n)


def pretrain_encoder(config: SequenceEncoderConfig, sequences: Sequences, *, steps: int = 1500,
                     lr: float = 3e-3, warmup: int = 50, batch_size: int = 64,
                     mask_prob: float = 0.15, seed: int = 0, weight_decay: float = 0.01,
                     min_lr_ratio: float = 0.1, grad_clip: float = 1.0,
                     crop_bp: int | None = None, held_out: Sequences | None = None,
                     checkpoint_path: str | os.PathLike | None = None,
                     init_state: dict[str, torch.Tensor] | None = None,
                     progress: bool = False, num_threads: int | None = None,
                     extra: dict[str, Any] | None = None, contrastive_weight: float = 0.0,
                     contrastive_views: str = "rc", max_shift_bp: int = 0,
                     contrastive_temperature: float = 0.1,
                     init_heads: dict[str, dict[str, torch.Tensor]] | None = None,
                     device: str | torch.device | None = "cpu") -> PretrainResult:
    """Masked-nucleotide pretraining of a fresh :class:`SequenceEncoder` built from ``config``.

    ``sequences``: ``(tokens [n, l], mask [n, l])``, a :class:`SequenceBatch`, or a Dataset of
    ``SequenceItem`` (read item by item, so its augmentations apply). Each step draws
    ``batch_size`` sequences at random (and, with ``crop_bp``, one random crop of each).
    ``held_out`` (same forms) is scored before and after training with a fixed masking.
    Initialisation, sampling and masking are seeded from ``seed``; the global RNG is left as
    it was. ``init_state`` continues from an earlier encoder state, ``init_heads`` (``{"head":
    …, "contrast_head": …}``, see :func:`load_pretraining_state`) from earlier head states. With
    ``checkpoint_path`` the result is written atomically (encoder config as plain dict, step,
    encoder state; the heads, the settings and the scores in ``extra``) for
    :func:`load_pretrained_encoder`.

    ``contrastive_weight > 0`` adds the contrastive view (module docstring;
    ``contrastive_views``, ``max_shift_bp``, ``contrastive_temperature``). With weight 0 the run
    is the masked-nucleotide run it always was (same random draws). ``device`` (``cpu``,
    ``cuda``, ``mps``, ``auto``; :func:`~genesplice.models.device.resolve_device`) is where the
    encoder runs; sampling, cropping and masking are drawn on the CPU and moved there.

    ``num_threads`` sets torch's intra-op threads for the run (restored afterwards): these
    models are small, and on a busy 2-core machine 1 thread ran ~8x faster than 2 (41 vs
    330 ms per 64 × 60 bp step).
    """
    with torch_threads(num_threads):
        return _pretrain(config, sequences, steps=steps, lr=lr, warmup=warmup,
                         batch_size=batch_size, mask_prob=mask_prob, seed=seed,
                         weight_decay=weight_decay, min_lr_ratio=min_lr_ratio,
                         grad_clip=grad_clip, crop_bp=crop_bp, held_out=held_out,
                         checkpoint_path=checkpoint_path, init_state=init_state,
                         progress=progress, extra=extra,
                         contrastive_weight=contrastive_weight,
                         contrastive_views=contrastive_views, max_shift_bp=max_shift_bp,
                         contrastive_temperature=contrastive_temperature,
                         init_heads=init_heads, device=device)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)`` (``None``: unchanged); restored after."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_contrastive(weight: float, views: str, max_shift_bp: int, temperature: float) -> None:
    if not weight >= 0:
        raise ValueError(f"contrastive_weight must be >= 0 (got {weight})")
    if views not in CONTRASTIVE_VIEWS:
        raise ValueError(f"contrastive_views = {views!r} (expected one of "
                         f"{list(CONTRASTIVE_VIEWS)})")
    if max_shift_bp < 0 or (views in ("shift", "both") and max_shift_bp < 1):
        raise ValueError(f"max_shift_bp = {max_shift_bp} (expected >= 0, and >= 1 for the "
                         f"{views!r} view)")
    if not temperature > 0:
        raise ValueError(f"contrastive_temperature must be > 0 (got {temperature})")


def _pad_right(x: torch.Tensor, length: int, value) -> torch.Tensor:
    return F.pad(x, (0, length - x.shape[1]), value=value)


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _draw_batch(src: "_Source", batch_size: int, gen: torch.Generator, *, crop_bp, views,
                max_shift_bp) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """``(tokens, mask, (tokens_b, mask_b))`` of one training step: ``batch_size`` rows drawn
    from ``src``, cropped; with ``views`` (contrastive) the second view of each crop, else
    ``(None, None)``."""
    index = torch.randint(0, src.n, (min(batch_size, src.n),), generator=gen)
    tokens, mask = src.rows(index)
    second = (None, None)
    if views is not None:
        (tokens, mask), second = paired_views(tokens, mask, crop_bp=crop_bp, views=views,
                                              max_shift_bp=max_shift_bp, generator=gen)
    elif crop_bp is not None:
        tokens, mask = random_crops(tokens, mask, crop_bp, gen)
    tokens, mask = _drop_unused_length(tokens, mask)
    return tokens, mask, second


def _two_view_losses(encoder, head, proj, m_cpu, m, mask, tokens_b, mask_b, dev,
                     temperature):
    """``(masked-LM output of the first view, InfoNCE of the two views)``, both views in one
    encoder pass (right padding does not change the states); ``m_cpu`` / ``m``: the first
    view's masked batch on the CPU / on ``dev``."""
    tokens_b, mask_b = _drop_unused_length(tokens_b, mask_b)
    n, length = m_cpu.inputs.shape
    width = max(length, tokens_b.shape[1])
    inputs = torch.cat([_pad_right(m_cpu.inputs, width, PAD_INDEX),
                        _pad_right(tokens_b, width, PAD_INDEX)]).to(dev)
    masks = torch.cat([_pad_right(mask, width, False), _pad_right(mask_b, width, False)]).to(dev)
    states, state_mask = encoder.token_states(inputs, masks)
    out = masked_lm_loss(head(states[:n], length), m)
    z = proj(encoder.pool(states, state_mask, encoder.default_tss_index(masks)))
    return out, info_nce(z[:n], z[n:], temperature=temperature)


def _pretrain(config, sequences, *, steps, lr, warmup, batch_size, mask_prob, seed,
              weight_decay, min_lr_ratio, grad_clip, crop_bp, held_out, checkpoint_path,
              init_state, progress, extra, contrastive_weight, contrastive_views,
              max_shift_bp, contrastive_temperature, init_heads, device) -> PretrainResult:
    if steps < 1 or batch_size < 1:
        raise ValueError(f"need steps >= 1 and batch_size >= 1 (got {steps}, {batch_size})")
    if crop_bp is not None and crop_bp < 1:
        raise ValueError(f"crop_bp must be >= 1 (got {crop_bp})")
    _check_contrastive(contrastive_weight, contrastive_views, max_shift_bp,
                       contrastive_temperature)
    contrastive = contrastive_weight > 0
    dev = resolve_device(device)
    warmup = min(warmup, steps - 1)
    src = _Source(sequences, "training sequences")
    t0 = time.perf_counter()
    encoder, head, proj = _pretrain_modules(config, seed, contrastive, init_state, init_heads,
                                            dev)
    params = [p for module in (encoder, head, proj) if module is not None
              for p in module.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = build_scheduler(opt, warmup_steps=warmup, total_steps=steps, min_lr=lr * min_lr_ratio)

    def held_out_scores():
        if held_out is None:
            return None, None
        return (masked_loss_score(encoder, head, held_out, mask_prob=mask_prob, seed=seed + 1,
                                  crop_bp=crop_bp),
                rc_consistency(encoder, held_out, seed=seed + 1, crop_bp=crop_bp))

    before, rc_before = held_out_scores()
    gen = torch.Generator().manual_seed(seed)
    encoder.train()
    head.train()
    losses: list[float] = []
    nce_losses: list[float] = []
    bar = tqdm(total=steps, desc="pretrain", unit="step", leave=False, disable=not progress)
    for _ in range(steps):
        step = _step_losses(encoder, head, proj, src, gen, batch_size=batch_size,
                            crop_bp=crop_bp, views=contrastive_views if contrastive else None,
                            max_shift_bp=max_shift_bp, mask_prob=mask_prob, dev=dev,
                            temperature=contrastive_temperature)
        if step is None:
            continue
        out, nce = step
        loss = out.loss
        if nce is not None:
            loss = loss + contrastive_weight * nce
            nce_losses.append(float(nce.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        sched.step()
        losses.append(float(out.loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    encoder.eval()
    after, rc_after = held_out_scores()
    settings = {"steps": steps, "lr": lr, "warmup": warmup, "batch_size": batch_size,
                "mask_prob": mask_prob, "seed": seed, "weight_decay": weight_decay,
                "min_lr_ratio": min_lr_ratio, "grad_clip": grad_clip,
                "crop_bp": crop_bp, "contrastive_weight": float(contrastive_weight),
                "contrastive_views": contrastive_views, "max_shift_bp": int(max_shift_bp),
                "contrastive_temperature": float(contrastive_temperature),
                "device": str(dev)}
    encoder.cpu()
    result = PretrainResult(
        config=config, encoder_state=_cpu_state(encoder), head_state=_cpu_state(head),
        steps=steps, train_losses=tuple(losses), held_out_before=before,
        held_out_after=after, n_train_sequences=src.n, n_parameters=encoder.n_parameters(),
        seconds=time.perf_counter() - t0, settings=settings,
        contrastive_losses=tuple(nce_losses),
        contrast_head_state=_cpu_state(proj) if proj is not None else None,
        rc_before=rc_before, rc_after=rc_after)
    if checkpoint_path is not None:
        path = save_pretrained_encoder(checkpoint_path, result, extra=extra)
        result = dataclasses.replace(result, checkpoint_path=path)
    return result


def _step_losses(encoder, head, proj, src, gen, *, batch_size, crop_bp, views, max_shift_bp,
                 mask_prob, dev, temperature):
    """One batch drawn from ``src``: ``(masked-nucleotide loss output, InfoNCE of the two
    views or None without ``views``)``, or None when the batch masked nothing."""
    tokens, mask, (tokens_b, mask_b) = _draw_batch(src, batch_size, gen, crop_bp=crop_bp,
                                                   views=views, max_shift_bp=max_shift_bp)
    m_cpu = mask_tokens(tokens, mask, mask_prob=mask_prob, generator=gen)
    if not bool(m_cpu.target_mask.any()):
        return None
    m = _to_device(m_cpu, dev)
    if views is not None:
        return _two_view_losses(encoder, head, proj, m_cpu, m, mask, tokens_b, mask_b, dev,
                                temperature)
    states, _ = encoder.token_states(m.inputs, mask.to(dev))
    return masked_lm_loss(head(states, tokens.shape[1]), m), None


def _pretrain_modules(config, seed: int, contrastive: bool, init_state, init_heads, dev):
    """``(encoder, masked-nucleotide head, contrastive projection or None)`` seeded with
    ``seed`` (the projection built last, so a run without the view starts from the same
    weights), loaded from ``init_state`` / ``init_heads`` where given, on ``dev``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = SequenceEncoder(config)
        head = build_head("masked_nucleotides", d_model=config.d_model,
                          downsample=config.downsample)
        proj = (build_head("contrastive", dim=config.d_model, out_dim=CONTRASTIVE_PROJ_DIM)
                if contrastive else None)
    if init_state is not None:
        encoder.load_state_dict(init_state)
    for name, module in (("head", head), ("contrast_head", proj)):
        if module is not None and (init_heads or {}).get(name) is not None:
            module.load_state_dict(init_heads[name])
    for module in (encoder, head, proj):
        if module is not None:
            module.to(dev)
    return encoder, head, proj


# ------------------------------------------------------------------------------ checkpoints

def save_pretrained_encoder(path: str | os.PathLike, result: PretrainResult, *,
                            extra: dict[str, Any] | None = None) -> Path:
    """Atomic checkpoint of a :class:`PretrainResult` (loads with ``weights_only=True``)."""
    scores = {name: s.to_dict() for name, s in (("held_out_before", result.held_out_before),
                                                 ("held_out_after", result.held_out_after))
              if s is not None}
    scores.update({name: s.to_dict() for name, s in (("rc_before", result.rc_before),
                                                      ("rc_after", result.rc_after))
                   if s is not None})
    if result.contrast_head_state is not None:
        scores["contrast_head_state"] = result.contrast_head_state
        nce = result.contrastive_losses[-max(1, len(result.contrastive_losses) // 10):]
        scores["contrastive_loss_tail"] = float(sum(nce) / len(nce)) if nce else float("nan")
    tail = result.train_losses[-max(1, len(result.train_losses) // 10):]
    return save_checkpoint(
        path, model_state=result.encoder_state,
        config={"sequence_encoder": result.config.to_dict(),
                "pretrain": dict(result.settings)},
        step=result.steps,
        best_metric=None if result.held_out_after is None else result.held_out_after.loss,
        extra={"kind": CHECKPOINT_KIND, "head_state": result.head_state, **scores,
               "train_loss_tail": float(sum(tail) / len(tail)) if tail else float("nan"),
               "n_train_sequences": result.n_train_sequences,
               "seconds": float(result.seconds), **dict(extra or {})})


def load_pretrained_encoder(path: str | os.PathLike) -> PretrainedEncoder:
    """``(config, state_dict)`` of a checkpoint written by :func:`pretrain_encoder`.

    Loads with ``weights_only=True``; a checkpoint of another kind, or a state that does not
    fit the stored config, is a :class:`GeneSpliceInputError` naming the file.
    """
    ck = load_checkpoint(path)
    if ck.extra.get("kind") != CHECKPOINT_KIND or "sequence_encoder" not in ck.config:
        raise GeneSpliceInputError(
            f"not a pretrained-encoder checkpoint (kind {ck.extra.get('kind')!r}, expected "
            f"{CHECKPOINT_KIND!r}; write one with `genesplice pretrain`)", path=path)
    config = SequenceEncoderConfig.from_dict(ck.config["sequence_encoder"], path=path)
    expected = SequenceEncoder(config).state_dict()
    missing = sorted(set(expected) - set(ck.model_state))
    unexpected = sorted(set(ck.model_state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(ck.model_state)
                   if tuple(expected[k].shape) != tuple(ck.model_state[k].shape))
    if missing or unexpected or wrong:
        raise GeneSpliceInputError(
            f"encoder state does not fit its stored config (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shape {wrong[:5]})", path=path)
    return PretrainedEncoder(config, dict(ck.model_state))


class PretrainingState(NamedTuple):
    """Everything :func:`pretrain_encoder` needs to continue a checkpoint: pass
    ``init_state=state.encoder_state, init_heads=state.heads`` and the ``settings``."""
    config: SequenceEncoderConfig
    encoder_state: dict[str, torch.Tensor]
    heads: dict[str, dict[str, torch.Tensor] | None]   # "head", "contrast_head" (None: absent)
    settings: dict[str, Any]                             # the run's pretrain settings
    step: int


def load_pretraining_state(path: str | os.PathLike) -> PretrainingState:
    """Encoder, heads and settings of a :func:`pretrain_encoder` checkpoint, to resume from.

    Checkpoints written before the contrastive view have no ``contrast_head`` (``None``: a
    resumed contrastive run starts that head fresh) and no contrastive settings (read as
    weight 0, the run they were)."""
    config, state = load_pretrained_encoder(path)
    ck = load_checkpoint(path)
    settings = {"contrastive_weight": 0.0, "contrastive_views": "rc", "max_shift_bp": 0,
                "contrastive_temperature": 0.1, **dict(ck.config.get("pretrain") or {})}
    return PretrainingState(config, state,
                            {"head": ck.extra.get("head_state"),
                             "contrast_head": ck.extra.get("contrast_head_state")},
                            settings, int(ck.step))


# ------------------------------------------------------------------------------ default data

@dataclass(frozen=True)
class PretrainingData:
    """Training and held-out sequences plus what was left out (counts, never silent)."""
    train: tuple[torch.Tensor, torch.Tensor]
    held_out: tuple[torch.Tensor, torch.Tensor]
    train_gene_ids: tuple[str, ...]
    held_out_gene_ids: tuple[str, ...]
    description: str
    n_records: int
    n_excluded_chromosome: int         # records on test/validation chromosomes not held out
    n_unknown_chromosome: int          # records whose gene has no known chromosome
    excluded_chromosomes: tuple[str, ...]
    held_out_chromosomes: tuple[str, ...]

    def summary(self) -> str:
        return (f"{self.description}: {self.n_records:,} records -> train "
                f"{self.train[0].shape[0]:,} ({len(set(self.train_gene_ids)):,} genes), held-out "
                f"{self.held_out[0].shape[0]:,} on {','.join(self.held_out_chromosomes)}"
                + (f"; left out {self.n_excluded_chromosome:,} on "
                   f"{','.join(self.excluded_chromosomes)} and {self.n_unknown_chromosome:,} with "
                   "unknown chromosome" if self.excluded_chromosomes else ""))


def _to_tensors(sequences: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    toks = [encode_sequence(s) for s in sequences]
    if not toks:
        return (torch.zeros((0, 1), dtype=torch.long), torch.zeros((0, 1), dtype=torch.bool))
    return pad_tokens(toks)


def promoter_pretraining_sequences(promoters_path: str | os.PathLike | None = None,
                                   tss_path: str | os.PathLike | None = None, *,
                                   exclude_chromosomes: Sequence[str] = ("chr8", "chr9"),
                                   held_out_chromosomes: Sequence[str] = ("chr9",)
                                   ) -> PretrainingData:
    """EPDnew core promoters (default: the bundled −49..+10 FASTA), split by chromosome.

    Every record of a gene on a training chromosome is a training sequence; records on
    ``held_out_chromosomes`` form the held-out set (only scored); records on the other
    ``exclude_chromosomes`` (the test chromosome) and records whose gene has no known
    chromosome (``tss_path``: gene symbol → chromosome table, default the bundled hg38 TSS
    table) are left out and counted.
    """
    path = promoters_path or knowledge_path(EPDNEW_PROMOTERS)
    table = read_promoter_fasta(path)
    chrom_of = gene_chromosomes(tss_path)
    chrom = table["gene_symbol"].map(chrom_of)
    held = {normalize_chromosome(c) for c in held_out_chromosomes}
    excluded = {normalize_chromosome(c) for c in exclude_chromosomes} | held
    unknown = chrom.isna()
    is_held = chrom.isin(held)
    is_excl = chrom.isin(excluded) & ~is_held
    is_train = ~unknown & ~chrom.isin(excluded)
    if not is_train.any():
        raise GeneSpliceInputError("no promoter lies on a training chromosome", path=path)
    data = PretrainingData(
        train=_to_tensors(table.loc[is_train, "sequence"].tolist()),
        held_out=_to_tensors(table.loc[is_held, "sequence"].tolist()),
        train_gene_ids=tuple(table.loc[is_train, "gene_symbol"]),
        held_out_gene_ids=tuple(table.loc[is_held, "gene_symbol"]),
        description=f"promoters {Path(path).name}", n_records=len(table),
        n_excluded_chromosome=int(is_excl.sum()), n_unknown_chromosome=int(unknown.sum()),
        excluded_chromosomes=tuple(sorted(excluded - held)),
        held_out_chromosomes=tuple(sorted(held)))
    log.info(data.summary())
    return data


def window_pretraining_sequences(*, flank_bp: int = 10_000,
                                 train_chromosomes: Sequence[str] = ("chrX",),
                                 held_out_chromosomes: Sequence[str] = ("chr20",),
                                 expression_path: str | os.PathLike | None = None,
                                 tss_path: str | os.PathLike | None = None,
                                 fasta_paths: Sequence[str | os.PathLike] | None = None
                                 ) -> PretrainingData:
    """±``flank_bp`` windows (gene strand) around the TSSs of the long-sequence cohort
    (:func:`genesplice.sequence.cohort.build_cohort`: hg19 Xpresso TSSs in the bundled
    GRCh37 chr20 / chrX sequence): ``train_chromosomes`` genes train, ``held_out_chromosomes``
    genes are only scored. Pair with ``crop_bp`` in :func:`pretrain_encoder`."""
    expr = read_expression_table(expression_path)
    tss = read_tss_bed(tss_path or knowledge_path(TSS_BED_HG19))
    with Genome.grch37(fasta_paths) as genome:
        cohort = build_cohort(expr, tss, genome, core_flank_bp=flank_bp,
                              train_chromosomes=train_chromosomes,
                              test_chromosomes=held_out_chromosomes)
        windows = extract_windows(genome, cohort.genes, flank_bp, flank_bp)
    split = cohort.genes["split"].to_numpy()
    train = torch.from_numpy(split == "train")
    held = torch.from_numpy(split == "test")
    ids = list(cohort.genes["gene_id"])
    r = cohort.report
    data = PretrainingData(
        train=(windows.tokens[train].long(), windows.mask[train]),
        held_out=(windows.tokens[held].long(), windows.mask[held]),
        train_gene_ids=tuple(g for g, s in zip(ids, split) if s == "train"),
        held_out_gene_ids=tuple(g for g, s in zip(ids, split) if s == "test"),
        description=f"±{flank_bp:,} bp TSS windows of the GRCh37 chr20/chrX cohort ({r.summary()})",
        n_records=r.n_cohort, n_excluded_chromosome=0, n_unknown_chromosome=0,
        excluded_chromosomes=(),
        held_out_chromosomes=tuple(r.test_chromosomes))
    log.info(data.summary())
    return data


def unigram_baseline(sequences: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Entropy (nats) of the A/C/G/T frequencies of ``(tokens, mask)``."""
    tokens, mask = sequences
    return unigram_entropy(tokens, mask & (tokens != PAD_INDEX))


__all__ = [
    "CHECKPOINT_KIND", "CONTRASTIVE_VIEWS", "MaskedLossScore", "PretrainResult",
    "PretrainedEncoder", "PretrainingData", "PretrainingState", "RcConsistency",
    "load_pretrained_encoder", "load_pretraining_state", "masked_loss_score", "paired_views",
    "pretrain_encoder", "promoter_pretraining_sequences", "random_crops", "rc_consistency",
    "save_pretrained_encoder",
    "torch_threads", "unigram_baseline", "window_pretraining_sequences",
]
