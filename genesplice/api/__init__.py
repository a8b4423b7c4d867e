"""The notebook object: load a trained model, ask about genes.

    from genesplice.api import GeneSplice

    gs = GeneSplice.load("runs/demo/fused.pt")            # checks the inputs' checksums
    gs.predict(["TP53", "MYC", "ENSG00000163631"])          # genes × tissues DataFrame
    gs.embed(["TP53"], view="all")                          # sequence / graph / fused views
    ex = gs.explain("ALB", "liver"); ex.plot()              # attention + per-base attributions
    gs.variant_effect(variants_df)                          # Δ prediction per tissue

:class:`GeneSplice` is a thin facade; each part lives in its own module:

========================  ==========================================================
:mod:`.base`              shared state (model, data, graph, id ↔ symbol maps), relation names
:mod:`.loading`           ``load`` (checksums checked), ``from_files`` (trains when needed)
:mod:`.lookup`            gene / tissue lookup with close matches, ``lookup``
:mod:`.inductive`         new gene nodes from a sequence and/or annotations, ``without_genes``
:mod:`.predictions`       ``predict``, ``observed``, ``embed``, ``write_predictions``,
                          ``annotations``, ``promoter``
:mod:`.explanation`       ``attention``, ``attributions``, ``explain`` → :class:`Explanation`
:mod:`.variant_effects`   ``promoter_windows``, ``variant_effect`` (streamed)
:mod:`.plots`             the explanation plots (matplotlib)
========================  ==========================================================

The maths lives in :mod:`genesplice.models.inference`, :mod:`genesplice.models.attribution`
and :mod:`genesplice.sequence.variants`. Predictions are what training reports: the level
(mean over tissues) from the weights that were best on the validation level, plus the tissue
profile from the weights that were best on the validation profile, in the expression table's
unit (``df.attrs["unit"]``).
"""
from __future__ import annotations

from genesplice.api.base import ANNOTATION_RELATIONS, RELATION_LABELS
from genesplice.api.explanation import Explanation, ExplanationMixin
from genesplice.api.loading import LoadingMixin
from genesplice.api.variant_effects import VariantEffectMixin


class GeneSplice(LoadingMixin, ExplanationMixin, VariantEffectMixin):
    """A trained GeneSplice model with the graph, sequences and expression it was trained on.

    Build it with :meth:`load` (a checkpoint) or :meth:`from_files` (input paths; trains a
    model when no checkpoint is given). Every query method returns a pandas DataFrame.
    """


__all__ = ["ANNOTATION_RELATIONS", "RELATION_LABELS", "Explanation", "GeneSplice"]
