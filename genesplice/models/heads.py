"""Prediction heads registered by name: the model builds every head through :func:`build_head`.

A head is an ``nn.Module`` that reads gene states ``h [g, d]`` (or, for the masked-nucleotide
head, the sequence encoder's token states) and returns a tensor. The built-in heads:

=====================  ===============================================  ========================
name                   module                                           reads → returns
=====================  ===============================================  ========================
``tissue``             :class:`~genesplice.models.fusion.ExpressionHeads`  ``h`` → (level, profile)
``function``           ``nn.Linear`` (multi-label gene-function logits)  ``h`` → ``[g, k]``
``contrastive``        :class:`~genesplice.models.fusion.ProjectionHead`   ``h`` → ``[g, p]``
``masked_nucleotides`` :class:`~genesplice.models.masked_lm.MaskedNucleotideHead`  tokens → logits
``tissue_map``         :class:`~genesplice.models.fusion.TissueMap`        (level, profile) → new tissues
=====================  ===============================================  ========================

A new head lives in its own module and registers itself::

    from genesplice.models.heads import register_head

    @register_head("my_labels")
    class MyLabels(nn.Module):
        def __init__(self, *, dim: int, n_outputs: int) -> None: ...
        def forward(self, h): ...          # [g, d] -> [g, n_outputs]

and a model asks for it through its config, without any edit of the core model:
``FusedModelConfig(extra_heads=(("my_labels", "my_labels", 3),))`` (output key, head name,
outputs) builds ``build_head("my_labels", dim=hidden, n_outputs=3)``, whose output appears in
``ModelOutput.extra["my_labels"]`` on every forward pass. (The module that defines the head
must have been imported before the model is built.)
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from genesplice.models.fusion import ExpressionHeads, ProjectionHead, TissueMap
from genesplice.models.masked_lm import MaskedNucleotideHead

HeadFactory = Callable[..., nn.Module]

#: name → factory (a class or a function returning an ``nn.Module``)
HEADS: dict[str, HeadFactory] = {}


def register_head(name: str) -> Callable[[HeadFactory], HeadFactory]:
    """Decorator: register a head factory under ``name`` (refuses a name already taken by
    another factory; registering the same factory again is a no-op, e.g. on a reload)."""
    def add(factory: HeadFactory) -> HeadFactory:
        known = HEADS.get(name)
        if known is not None and _where(known) != _where(factory):
            raise ValueError(f"a head named {name!r} is already registered ({known!r})")
        HEADS[name] = factory
        return factory
    return add


def _where(factory: HeadFactory) -> tuple[str, str]:
    return getattr(factory, "__module__", ""), getattr(factory, "__qualname__", repr(factory))


def build_head(name: str, **kwargs) -> nn.Module:
    """The head registered as ``name``, built with ``kwargs``."""
    if name not in HEADS:
        raise KeyError(f"unknown head {name!r} (registered: {sorted(HEADS)})")
    return HEADS[name](**kwargs)


def head_names() -> list[str]:
    return sorted(HEADS)


@register_head("tissue")
def tissue_head(*, dim: int, n_outputs: int, dropout: float = 0.1) -> ExpressionHeads:
    """Tissue regression: level ``[g]`` + centred profile ``[g, n_outputs]``."""
    return ExpressionHeads(dim, n_outputs, dropout)


@register_head("function")
def function_head(*, dim: int, n_outputs: int) -> nn.Linear:
    """Gene-function logits ``[g, n_outputs]`` (multi-label, auxiliary)."""
    return nn.Linear(dim, n_outputs)


@register_head("contrastive")
def contrastive_head(*, dim: int, out_dim: int = 32) -> ProjectionHead:
    """L2-normalised projection ``[g, out_dim]`` of one view for the InfoNCE loss."""
    return ProjectionHead(dim, out_dim)


@register_head("masked_nucleotides")
def masked_nucleotide_head(*, d_model: int, downsample: int,
                           d_hidden: int = 32) -> MaskedNucleotideHead:
    """Token states ``[b, n, d]`` → base logits ``[b, l, 4]`` (pretraining)."""
    return MaskedNucleotideHead(d_model, downsample, d_hidden)


@register_head("tissue_map")
def tissue_map_head(*, n_inputs: int, n_outputs: int) -> TissueMap:
    """Old tissues' (level, profile) → new tissues' (a fine-tuned model's output)."""
    return TissueMap(n_inputs, n_outputs)
