"""Attributions for one gene's prediction (pure torch).

* :func:`onehot_gradient` — gradient of a scalar of the model output with respect to the
  one-hot bases of one gene's sequence (``[4, l]`` for A, C, G, T). Gradient × input is the
  gradient at the reference base; :func:`gradient_x_input` centres the gradient over the four
  bases first (the first-order estimate of in-silico mutagenesis, Majdandzic et al. 2023),
  so it is comparable with ISM position by position.
* :func:`single_base_mutants` / :func:`ism_table` — in-silico mutagenesis: every single-base
  substitution in a sub-window, scored as ``Δ = f(mutant) − f(reference)``.
* :func:`attention_into` — GATv2 attention on the edges into one gene, averaged over heads,
  per layer and over layers.

Shapes: l bases, m mutants, e edges, h heads, L layers.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import Tensor

from genesplice.models.model import (
    GeneSpliceModel,
    GraphInputs,
    ModelOutput,
    SequenceInputs,
)
from genesplice.sequence.encode import N_BASES

EdgeType = tuple[str, str, str]


@contextmanager
def _capture_stem_input(model: GeneSpliceModel, captured: list[Tensor]):
    """Make the sequence encoder's one-hot input (``[b, c, l]``, first stem stage) a leaf that
    requires grad, and record it."""
    stem = model.sequence_encoder.stem[0]

    def hook(_module, args):
        x = args[0].detach().requires_grad_(True)
        captured.append(x)
        return (x, *args[1:])

    handle = stem.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def onehot_gradient(model: GeneSpliceModel, graph: GraphInputs, seq: SequenceInputs, row: int,
                    tokens: Tensor, target: Callable[[ModelOutput], Tensor]) -> Tensor:
    """``∂ target(model(graph, seq, [row])) / ∂ onehot`` as ``[4, l]`` (A, C, G, T rows) where
    gene ``row``'s sequence is ``tokens [l]``.

    ``seq`` are embeddings-mode inputs holding every gene of ``row``'s receptive field (the
    row's own entry is replaced by the encoding of ``tokens``, computed here with gradient),
    so the gradient follows every path from the sequence to the output.
    """
    if model.sequence_encoder is None:
        raise ValueError(f"a {model.config.variant!r} model has no sequence encoder")
    if seq is None or seq.embeddings is None:
        raise ValueError("onehot_gradient needs embeddings-mode sequence inputs")
    hit = torch.nonzero(seq.gene_rows == row).squeeze(1)
    if len(hit) != 1:
        raise ValueError(f"gene row {row} has no sequence input")
    captured: list[Tensor] = []
    was = model.training
    model.eval()
    try:
        with torch.enable_grad(), _capture_stem_input(model, captured):
            emb = model.sequence_encoder(tokens[None], torch.ones(1, len(tokens),
                                                                  dtype=torch.bool,
                                                                  device=tokens.device))
            embeddings = seq.embeddings.detach().index_put((hit,), emb)
            inputs = SequenceInputs(gene_rows=seq.gene_rows, embeddings=embeddings)
            value = target(model(graph, inputs, torch.tensor([row], device=tokens.device)))
            if value.numel() != 1:
                raise ValueError("target must reduce the output to one number")
            (grad,) = torch.autograd.grad(value.sum(), captured[-1])
    finally:
        model.train(was)
    return grad[0, :N_BASES, :len(tokens)].detach()               # [4, l]


def gradient_x_input(gradient: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """``(plain, centred)`` gradient × input per position ``[l]`` for reference ``tokens [l]``.

    ``plain`` is the gradient at the reference base; ``centred`` subtracts the mean gradient
    over A/C/G/T first. Positions whose base is N get 0.
    """
    l = gradient.shape[1]
    tokens = tokens[:l]
    is_base = tokens < N_BASES
    idx = tokens.clamp(max=N_BASES - 1)
    at_ref = gradient.gather(0, idx[None])[0]
    centred = at_ref - gradient.mean(0)
    zero = torch.zeros_like(at_ref)
    return torch.where(is_base, at_ref, zero), torch.where(is_base, centred, zero)


def single_base_mutants(tokens: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every single-base substitution of ``tokens [l]`` at ``positions``: ``(mutant tokens
    [m, l], position [m], new base [m])``, three per position (four at an N)."""
    pos_list, base_list = [], []
    for p in positions.tolist():
        for b in range(N_BASES):
            if b != int(tokens[p]):
                pos_list.append(p)
                base_list.append(b)
    pos = torch.tensor(pos_list, dtype=torch.long, device=tokens.device)
    base = torch.tensor(base_list, dtype=torch.long, device=tokens.device)
    mutants = tokens.repeat(len(pos), 1)
    mutants[torch.arange(len(pos), device=tokens.device), pos] = base
    return mutants, pos, base


def ism_table(delta: Tensor, positions: Tensor, bases: Tensor, length: int) -> Tensor:
    """``Δ [m]`` of :func:`single_base_mutants` → ``[4, length]`` (0 at reference bases and
    outside the mutated positions)."""
    out = torch.zeros(N_BASES, length, dtype=delta.dtype, device=delta.device)
    out[bases, positions] = delta
    return out


def attention_into(layers: list[dict[EdgeType, tuple[Tensor, Tensor]]], row: int
                   ) -> dict[EdgeType, tuple[Tensor, Tensor]]:
    """Attention on the edges into gene ``row``: edge type → ``(source rows [e],
    weights [e, L])`` with each layer's coefficients averaged over heads (each layer's
    weights of one edge type sum to 1 over the gene's incoming edges: GATv2 normalises per
    destination and relation)."""
    out: dict[EdgeType, tuple[Tensor, Tensor]] = {}
    for et in layers[0]:
        if et[2] != "gene":
            continue
        ei0, _ = layers[0][et]
        sel = ei0[1] == row
        if not bool(sel.any()):
            continue
        per_layer = []
        for layer in layers:
            ei, alpha = layer[et]
            if not torch.equal(ei, ei0):
                raise ValueError(f"edge order of {et} differs between layers")
            per_layer.append(alpha[sel].mean(-1))                   # [e] (mean over h)
        out[et] = (ei0[0, sel], torch.stack(per_layer, dim=1))      # [e], [e, L]
    return out
