"""The notebook object: load a trained model, ask about genes.

    from genesplice.api import GeneSplice

    gs = GeneSplice.load("runs/demo/fused.pt")            # checks the inputs' checksums
    gs.predict(["TP53", "MYC", "ENSG00000163631"])          # genes × tissues DataFrame
    gs.embed(["TP53"], view="all")                          # sequence / graph / fused views
    ex = gs.explain("ALB", "liver"); ex.plot()              # attention + per-base attributions
    gs.variant_effect(variants_df)                          # Δ prediction per tissue

``GeneSplice`` wires stages together (training data, the two best-weight models, the genome)
and builds DataFrames; the maths lives in :mod:`genesplice.models.inference`,
:mod:`genesplice.models.attribution` and :mod:`genesplice.sequence.variants`, the plots in
:mod:`genesplice.api.plots`.

Predictions are what training reports: the level (mean over tissues) from the weights that
were best on the validation level, plus the tissue profile from the weights that were best
on the validation profile, in the expression table's unit (``df.attrs["unit"]``).
"""
from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genesplice.io.constants import HG38_REGIONS, PROMOTER_TSS_INDEX, TSS_HG38, unit_label
from genesplice.io.errors import GeneSpliceInputError

log = logging.getLogger(__name__)


#: how a new gene's annotations enter the graph: node type → (relation, whether the gene is
#: the source of the forward edge). Both the forward edge and its ``rev_`` edge are added
#: where the model passes messages along them.
ANNOTATION_RELATIONS = {"go_term": ("annotated_with", True), "pathway": ("member_of", True),
                        "regulator": ("regulates", False)}
RELATION_LABELS = {("go_term", "rev_annotated_with", "gene"): "GO term",
                   ("pathway", "rev_member_of", "gene"): "pathway",
                   ("gene", "regulates", "gene"): "regulator",
                   ("gene", "rev_regulates", "gene"): "target"}


@dataclass(frozen=True)
class Explanation:
    """What :meth:`GeneSplice.explain` returns: the prediction, the neighbours the GAT attended
    to (long format, :meth:`GeneSplice.attention`) and per-base attributions over the gene's
    sequence window (:meth:`GeneSplice.attributions`; ``None`` for a gene without sequence)."""

    gene: str
    tissue: str
    prediction: float
    unit: str
    neighbours: pd.DataFrame
    attributions: pd.DataFrame | None

    def plot(self, top: int = 8):
        """Neighbour-attention bars, gradient × input logo track and ISM heat map."""
        from genesplice.api.plots import plot_explanation

        return plot_explanation(self, top=top)


@dataclass(frozen=True)
class _NewGene:
    name: str
    tokens: torch.Tensor | None
    annotations: tuple[tuple[str, int, tuple[float, ...] | None], ...]   # (kind, row, attrs)
    unmapped: tuple[str, ...]


class GeneSplice:
    """A trained GeneSplice model with the graph, sequences and expression it was trained on.

    Build it with :meth:`load` (a checkpoint) or :meth:`from_files` (input paths; trains a
    model when no checkpoint is given). Every query method returns a pandas DataFrame.
    """

    def __init__(self, model, data, graph, *, config=None, checkpoint: str | None = None,
                 genome: Sequence[str | os.PathLike] | None = None,
                 tss: str | os.PathLike | None = None) -> None:
        from genesplice.graph.features import top_level_pathways

        self._model = model                  # genesplice.models.inference.TwoStateModel
        self.data = data                     # genesplice.training.data.TrainingData
        self.graph = graph                   # genesplice.graph.hetero.KnowledgeGraph
        self.config = config
        self.checkpoint = checkpoint
        self.genome_paths = genome
        self.tss_path = tss
        self._inputs = data.graph_inputs
        self._seq = data.sequences
        self._gene_ids = list(data.gene_ids)
        self._row = {g: i for i, g in enumerate(self._gene_ids)}
        self._display = dict(data.display_symbols)
        self._from_display = {}
        for g, s in self._display.items():
            self._from_display.setdefault(s, g)
        self._upper = {}
        for name in list(self._gene_ids) + list(self._from_display):
            self._upper.setdefault(name.upper(), self._from_display.get(name, name))
        self._data_row = {g: i for i, g in enumerate(data.gene_ids)}
        self._function_pathways = {graph.node_ids["pathway"][j] for j in top_level_pathways(graph)}
        self._feature_col = {f: j for j, f in enumerate(data.feature_names)}
        self._located: dict[tuple, tuple] = {}
        self._attr_defaults: dict = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, checkpoint: str | os.PathLike, *, graph=None,
             expression: str | os.PathLike | None = None, tss: str | os.PathLike | None = None,
             genome: Sequence[str | os.PathLike] | None = None,
             genes: Sequence[str] | None = None, progress: bool = True) -> GeneSplice:
        """Load a checkpoint written by training (``weights_only=True``).

        The training data are rebuilt from the checkpoint's stored run config; ``graph`` (a
        built-graph folder or a ``KnowledgeGraph``), ``expression`` and ``tss`` replace the
        stored paths. The rebuilt data's checksums (graph edges, gene list, expression values,
        promoter sequences) must equal those stored at training time: otherwise a
        :class:`GeneSpliceInputError` names each input that differs.
        ``genes``: the labelled-gene subset, if the model was trained on one
        (``prepare_from_config(genes=...)``, a quick run): such a run encodes only the
        promoters its genes see, so its sequence checksum is re-checked on that subset;
        queries then use every promoter.
        ``genome``: FASTA path(s) for :meth:`variant_effect` (default: the bundled hg38
        regions); ``tss``: also the TSS table that places promoters on it.
        """
        from genesplice.training.config import RunConfig, config_from_dict
        from genesplice.training.experiment import load_graph, load_trained

        model, level_state, profile_state, ck = load_trained(checkpoint)
        cfg = config_from_dict(RunConfig, ck.config, path=checkpoint)
        data_cfg = cfg.data
        for key, value in (("expression_path", expression), ("tss_path", tss)):
            if value is not None:
                data_cfg = replace(data_cfg, **{key: os.fspath(value)})
        if graph is not None and not hasattr(graph, "node_ids"):
            data_cfg = replace(data_cfg, graph_path=os.fspath(graph))
            graph = None
        cfg = replace(cfg, data=data_cfg)
        if graph is None:
            graph = load_graph(cfg.data.graph_path or None, progress=progress)
        data = _checked_data(cfg, graph, ck.data_checksums, genes, checkpoint, progress)
        if list(ck.extra.get("tissues", data.tissues)) != list(data.tissues):
            raise GeneSpliceInputError(
                f"tissues differ from the checkpoint's: {ck.extra['tissues'][:5]}… vs "
                f"{data.tissues[:5]}…", path=checkpoint)
        data = _align_membership(data, graph, list(ck.extra.get("feature_names",
                                                                data.feature_names)), checkpoint)
        return cls._assemble(ck.extra["model_args"], level_state, profile_state, data, graph,
                             config=cfg, checkpoint=str(checkpoint), genome=genome, tss=tss,
                             model=model)

    @classmethod
    def _assemble(cls, args, level_state, profile_state, data, graph, *, config, checkpoint,
                  genome, tss, model=None) -> GeneSplice:
        from genesplice.models.inference import TwoStateModel
        from genesplice.training.experiment import build_model

        profile_model = model if model is not None else build_model(args)
        profile_model.load_state_dict(profile_state)
        level_model = build_model(args)
        level_model.load_state_dict(level_state)
        return cls(TwoStateModel(level_model, profile_model, data.sequences), data, graph, config=config,
                   checkpoint=checkpoint, genome=genome, tss=tss)

    @classmethod
    def from_files(cls, *, checkpoint: str | os.PathLike | None = None,
                   graph: str | os.PathLike | None = None,
                   recipe: str | os.PathLike | None = None,
                   expression: str | os.PathLike | None = None,
                   tss: str | os.PathLike | None = None,
                   genome: Sequence[str | os.PathLike] | None = None,
                   out_dir: str | os.PathLike = "runs/genesplice", variant: str = "fused",
                   config=None, epochs: int | None = None, genes: Sequence[str] | None = None,
                   progress: bool = True) -> GeneSplice:
        """Everything from input paths in one call.

        With ``checkpoint``: :meth:`load` with these paths (``genes``: the labelled subset it
        was trained on, if any). Without: the graph is loaded from
        ``graph`` (a built-graph folder; built there from ``recipe`` — default
        ``graphs/human_default.toml`` — when it holds none), the training data are assembled
        from ``expression`` / ``tss`` (the bundled files by default) and a ``variant`` model is
        trained (ridge warm start, then :func:`genesplice.training.experiment.train_variant`) with
        ``config`` (a :class:`~genesplice.training.config.RunConfig`; ``epochs`` overrides its
        ``train.epochs``; ``genes`` restricts the labelled genes, e.g. for a quick run). The
        checkpoint goes to ``out_dir/<variant>.pt``. Training on all genes takes a while on a
        CPU; ``genesplice train`` / ``make demo`` are the long-running way.
        """
        if checkpoint is not None:
            return cls.load(checkpoint, graph=graph, expression=expression, tss=tss,
                            genome=genome, genes=genes, progress=progress)
        from genesplice.training.config import RunConfig
        from genesplice.training.experiment import (
            fit_ridge,
            load_graph,
            prepare_from_config,
            train_variant,
        )

        cfg = config or RunConfig()
        data_cfg = cfg.data
        for key, value in (("expression_path", expression), ("tss_path", tss),
                           ("graph_path", graph)):
            if value is not None:
                data_cfg = replace(data_cfg, **{key: os.fspath(value)})
        train_cfg = cfg.train if epochs is None else replace(cfg.train, epochs=int(epochs))
        cfg = replace(cfg, out_dir=os.fspath(out_dir), data=data_cfg, train=train_cfg)
        kg = load_graph(cfg.data.graph_path or None, recipe=recipe, progress=progress)
        data = prepare_from_config(cfg, graph=kg, genes=list(genes) if genes else None,
                                   progress=progress)
        ridge = fit_ridge(data, cfg)
        result = train_variant(variant, data, cfg, ridge=ridge, out_dir=Path(out_dir),
                               progress=progress)
        if genes:           # a quick run encoded only its genes' promoters: queries use all
            features = list(data.feature_names)
            data = _align_membership(prepare_from_config(cfg, graph=kg, progress=progress), kg,
                                     features, result.train.checkpoint_path)
        return cls._assemble(result.args, result.train.level_state, result.train.profile_state,
                             data, kg, config=cfg, checkpoint=str(result.train.checkpoint_path),
                             genome=genome, tss=tss)

    # ------------------------------------------------------------------ basic facts
    @property
    def tissues(self) -> list[str]:
        return list(self.data.tissues)

    @property
    def unit(self) -> str:
        """The prediction unit, e.g. ``log10(nTPM + 1)``."""
        unit = self.config.data.unit if self.config is not None else "log10_ntpm1"
        return unit_label(unit)

    @property
    def variant(self) -> str:
        return self._model.config.variant

    @property
    def genes(self) -> list[str]:
        """Every gene of the graph (expression-table symbol where it has one)."""
        return [self._symbol(g) for g in self._gene_ids]

    def __repr__(self) -> str:
        n_seq = 0 if self._seq is None else len(self._seq)
        return (f"GeneSplice({self.variant} model, {len(self._gene_ids):,} genes "
                f"({n_seq:,} with a promoter sequence), {len(self.tissues)} tissues, unit "
                f"{self.unit}, checkpoint={self.checkpoint!r})")

    def _symbol(self, gene_id: str) -> str:
        return self._display.get(gene_id, gene_id)

    # ------------------------------------------------------------------ gene lookup
    def _lookup_one(self, query: str) -> str | None:
        q = str(query).strip()
        if q in self._row:
            return q
        if q in self._from_display:
            return self._from_display[q]
        if q.upper() in self._upper:
            return self._upper[q.upper()]
        from genesplice.annotations.ids import default_resolver

        hit = default_resolver().resolve([q])[0].get(q)
        if hit is not None:
            if hit in self._row:
                return hit
            if hit in self._from_display:
                return self._from_display[hit]
        return None

    def _close_matches(self, query: str, n: int = 5) -> list[str]:
        hits = difflib.get_close_matches(str(query).upper(), list(self._upper), n=n, cutoff=0.6)
        return list(dict.fromkeys(self._symbol(self._upper[h]) for h in hits))

    def _unknown(self, queries: Sequence[str]) -> GeneSpliceInputError:
        parts = []
        for q in queries:
            close = self._close_matches(q)
            parts.append(f"{q!r} (close matches: {', '.join(close)})" if close
                         else f"{q!r} (no close match)")
        return GeneSpliceInputError(
            f"unknown gene{'s' if len(queries) > 1 else ''}: {'; '.join(parts)}. Genes are "
            "looked up as symbols of the graph or expression table, aliases, Ensembl or UniProt "
            "ids; to predict a gene the graph lacks, pass its sequence and/or annotations "
            "(predict(..., sequences={name: 'ACGT…'}, annotations={name: ['GO:…', "
            "'R-HSA-…', 'TF symbol']}))")

    def lookup(self, genes: Iterable[str]) -> pd.DataFrame:
        """How each query resolves: ``query, gene_id`` (graph id), ``gene_symbol`` (as in the
        expression table), ``has_sequence``, ``n_go_terms``, ``n_pathways``, ``n_regulators``,
        ``has_expression``. Unknown genes raise an error listing close matches."""
        genes = [genes] if isinstance(genes, str) else list(genes)
        ids = [self._lookup_one(g) for g in genes]
        missing = [g for g, i in zip(genes, ids) if i is None]
        if missing:
            raise self._unknown(missing)
        rows = torch.tensor([self._row[i] for i in ids], dtype=torch.long)
        counts = {kind: self._in_degree(et, rows) for et, kind in RELATION_LABELS.items()}
        has_seq = self._has_sequence(rows)
        obs = self.data.observed[[self._data_row[i] for i in ids]].any(1).numpy()
        return pd.DataFrame({"query": genes, "gene_id": ids,
                             "gene_symbol": [self._symbol(i) for i in ids],
                             "has_sequence": has_seq, "n_go_terms": counts["GO term"],
                             "n_pathways": counts["pathway"],
                             "n_regulators": counts["regulator"], "has_expression": obs})

    def _in_degree(self, et, rows: torch.Tensor) -> np.ndarray:
        ei = self._inputs.edge_index_dict.get(et)
        if ei is None:
            return np.zeros(len(rows), dtype=np.int64)
        deg = torch.bincount(ei[1], minlength=self._inputs.num_nodes["gene"])
        return deg[rows].numpy()

    def _has_sequence(self, rows: torch.Tensor) -> np.ndarray:
        if self._seq is None:
            return np.zeros(len(rows), dtype=bool)
        has = torch.zeros(self._inputs.num_nodes["gene"], dtype=torch.bool)
        has[self._seq.gene_rows] = True
        return has[rows].numpy()

    def _row_of(self, gene: str) -> tuple[str, int]:
        gid = self._lookup_one(gene)
        if gid is None:
            raise self._unknown([gene])
        return gid, self._row[gid]

    def _tissue_columns(self, tissues: Iterable[str] | str | None) -> list[str]:
        if tissues is None:
            return self.tissues
        tissues = [tissues] if isinstance(tissues, str) else list(tissues)
        known = {t.lower(): t for t in self.tissues}
        out, bad = [], []
        for t in tissues:
            hit = t if t in self.tissues else known.get(str(t).lower())
            (out.append(hit) if hit else bad.append(t))
        if bad:
            hints = {b: difflib.get_close_matches(str(b), self.tissues, n=3, cutoff=0.5)
                     for b in bad}
            raise GeneSpliceInputError(
                "unknown tissue(s): " + "; ".join(f"{b!r} (close: {', '.join(h) or 'none'})"
                                                  for b, h in hints.items())
                + f". Tissues of this model: {', '.join(self.tissues)}")
        return out

    # ------------------------------------------------------------------ new genes
    def _default_attrs(self, et) -> tuple[float, ...] | None:
        """The most common attribute row of an edge type (for annotations given as bare ids):
        GO: direct + experimental evidence; pathways: direct + TAS; regulators: sign +1,
        confidence 1."""
        if et not in self._attr_defaults:
            ea = self.data.graph_inputs.edge_attr_dict.get(et)
            value = None
            if ea is not None and ea.numel():
                rows, counts = torch.unique(ea, dim=0, return_counts=True)
                value = tuple(rows[int(counts.argmax())].tolist())
            self._attr_defaults[et] = value
        return self._attr_defaults[et]

    def _parse_annotations(self, name: str, items) -> tuple[list, list[str]]:
        """(kind, row, attrs or None) per usable annotation, and the unusable ones."""
        go_index = self.graph.node_index("go_term")
        pw_index = self.graph.node_index("pathway")
        out, unmapped = [], []
        if isinstance(items, pd.DataFrame):
            records = items.to_dict("records")
        else:
            records = [{"neighbour_id": str(x)} for x in ([items] if isinstance(items, str)
                                                         else items)]
        for rec in records:
            x = str(rec["neighbour_id"]).strip()
            kind = rec.get("relation")
            attrs = rec.get("attrs")
            if x in go_index and kind in (None, "GO term"):
                out.append(("go_term", go_index[x], attrs))
            elif x in pw_index and kind in (None, "pathway"):
                if x in self._function_pathways:
                    unmapped.append(f"{x} (a top-level pathway: the function head's label, "
                                    "not a graph edge)")
                else:
                    out.append(("pathway", pw_index[x], attrs))
            elif x.upper().startswith("GO:") or x.upper().startswith("R-"):
                unmapped.append(f"{x} (not a node of the graph; terms and pathways with few "
                                "genes are pruned when it is built)")
            else:
                gid = self._lookup_one(x)
                if gid is None or kind not in (None, "regulator"):
                    unmapped.append(f"{x} (neither a GO term, a pathway nor a gene of the "
                                    "graph)")
                else:
                    out.append(("regulator", self._row[gid], attrs))
        if unmapped:
            log.warning("gene %s: %d of %d annotations not used: %s", name, len(unmapped),
                        len(records), "; ".join(unmapped[:5]))
        return out, unmapped

    def _new_gene(self, name: str, sequence: str | None, annotations) -> _NewGene:
        from genesplice.sequence.encode import encode_sequence

        tokens = None
        if sequence is not None:
            tokens = encode_sequence(str(sequence).strip())
            if len(tokens) == 0:
                raise GeneSpliceInputError(f"gene {name!r}: the sequence is empty")
            if self._seq is not None and self._seq.tokens is not None:
                trained = int(self._seq.mask.sum(1).max())
                if len(tokens) != trained:
                    log.warning("gene %s: sequence of %d bp; the model was trained on %d bp "
                                "windows", name, len(tokens), trained)
        parsed, unmapped = ([], []) if annotations is None else \
            self._parse_annotations(name, annotations)
        if tokens is None and not parsed:
            why = f" (unusable annotations: {'; '.join(unmapped[:5])})" if unmapped else ""
            raise GeneSpliceInputError(
                f"gene {name!r} is not in the graph and has neither a sequence nor an "
                f"annotation the graph knows{why}; give its promoter sequence and/or GO term, "
                "pathway or regulator ids")
        return _NewGene(name, tokens, tuple(parsed), tuple(unmapped))

    def _append(self, new: list[_NewGene]):
        """Graph and sequence inputs with the new genes appended; rows of the new genes."""
        from genesplice.models.inference import NewGeneEdges, append_genes

        n_old = self._inputs.num_nodes["gene"]
        edges: dict = {}
        member_rows = []
        for i, g in enumerate(new):
            me = n_old + i
            cols = []
            for kind, row, attrs in g.annotations:
                rel, gene_is_src = ANNOTATION_RELATIONS[kind]
                other = "gene" if kind == "regulator" else kind
                fwd = ("gene", rel, other) if gene_is_src else (other, rel, "gene")
                rev = (fwd[2], f"rev_{rel}", fwd[0])
                for et, src, dst in ((fwd, me if gene_is_src else row, row if gene_is_src
                                      else me),
                                     (rev, row if gene_is_src else me, me if gene_is_src
                                      else row)):
                    if et not in self._inputs.edge_index_dict:
                        continue
                    a = attrs if attrs is not None else self._default_attrs(et)
                    edges.setdefault(et, []).append((src, dst, a))
                name = (self.graph.node_ids[kind][row] if kind != "regulator"
                        else f"TF:{self._gene_ids[row]}")
                if name in self._feature_col:
                    cols.append(self._feature_col[name])
            member_rows.append(torch.tensor(sorted(set(cols)), dtype=torch.long))
        ei = {et: torch.tensor([[s for s, _, _ in v], [d for _, d, _ in v]], dtype=torch.long)
              for et, v in edges.items()}
        ea = {et: torch.tensor([a for _, _, a in v], dtype=torch.float32)
              for et, v in edges.items() if v[0][2] is not None}
        has = torch.tensor([g.tokens is not None for g in new])
        tokens = mask = None
        if bool(has.any()):
            from genesplice.sequence.encode import pad_tokens

            tokens, mask = pad_tokens([g.tokens for g in new if g.tokens is not None])
        return append_genes(self._inputs, self._seq, n_new=len(new),
                            edges=NewGeneEdges(ei, ea), membership_rows=member_rows,
                            tokens=tokens, mask=mask, has_sequence=has)

    # ------------------------------------------------------------------ predictions
    def _resolve_for_prediction(self, genes, sequences, annotations):
        sequences, annotations = dict(sequences or {}), dict(annotations or {})
        genes = [genes] if isinstance(genes, str) else list(genes)
        known, new, missing = [], [], []
        for g in genes:
            gid = self._lookup_one(g) if g not in sequences and g not in annotations else None
            if gid is None and (g in sequences or g in annotations):
                if self._lookup_one(g) is not None:
                    raise GeneSpliceInputError(
                        f"gene {g!r} is already in the graph; give a sequence or annotations "
                        "only for genes it lacks (use a new name for a modified copy)")
                new.append(self._new_gene(g, sequences.get(g), annotations.get(g)))
                known.append(None)
            elif gid is None:
                missing.append(g)
            else:
                known.append(gid)
        if missing:
            raise self._unknown(missing)
        return genes, known, new

    def predict(self, genes: Iterable[str] | str | None = None,
                tissues: Iterable[str] | str | None = None, *,
                sequences: Mapping[str, str] | None = None,
                annotations: Mapping[str, Sequence[str] | pd.DataFrame] | None = None,
                batch_size: int = 20_000, progress: bool = True) -> pd.DataFrame:
        """Predicted expression, genes × tissues.

        ``genes``: symbols, aliases or Ensembl/UniProt ids (default: every gene of the
        expression table). A name the graph lacks is predicted *inductively* when
        ``sequences`` (promoter DNA, gene strand, TSS at base 49 of 60 as in EPDnew) and/or
        ``annotations`` (GO term ids, Reactome pathway ids, regulating TF symbols — or a
        DataFrame from :meth:`annotations`) are given for it: it is added to the graph as a new
        gene node. ``df.attrs``: ``unit``, ``views`` (gene → the views it had: ``sequence``,
        ``graph``), ``inductive`` (new gene → what it was given and what was not usable).
        """
        if genes is None:
            ids = [g for g in self._gene_ids
                   if bool(self.data.observed[self._data_row[g]].any())]
            names, known, new = [self._symbol(g) for g in ids], ids, []
        else:
            names, known, new = self._resolve_for_prediction(genes, sequences, annotations)
        columns = self._tissue_columns(tissues)
        graph, seq = self._inputs, self._seq
        rows = [self._row[g] if g is not None else -1 for g in known]
        if new:
            graph, seq, new_rows = self._append(new)
            it = iter(new_rows.tolist())
            rows = [r if r >= 0 else next(it) for r in rows]
        pred, has = self._model.predict(graph, seq, torch.tensor(rows, dtype=torch.long),
                                        batch_size=batch_size, progress=progress)
        index = [self._symbol(g) if g is not None else n for g, n in zip(known, names)]
        df = pd.DataFrame(pred.numpy().astype(np.float64), columns=pd.Index(self.tissues,
                                                                            name="tissue"),
                          index=pd.Index(index, name="gene_symbol"))[columns]
        df = df[~df.index.duplicated(keep="first")]
        graph_view = self._model.config.uses_graph
        new_by_name = {g.name: g for g in new}
        views, inductive = {}, {}
        for name, h in zip(index, has.tolist()):
            parts = (["sequence"] if h else []) + (["graph"] if graph_view else [])
            if name in new_by_name:
                g = new_by_name[name]
                kinds = [k for k, _, _ in g.annotations]
                parts = (["sequence"] if g.tokens is not None else []) + \
                    (["graph"] if kinds and graph_view else [])
                inductive[name] = (f"new gene node: {'sequence' if g.tokens is not None else 'no'}"
                                   f" sequence, {kinds.count('go_term')} GO terms, "
                                   f"{kinds.count('pathway')} pathways, "
                                   f"{kinds.count('regulator')} regulators"
                                   + (f"; not used: {'; '.join(g.unmapped)}" if g.unmapped
                                      else ""))
                log.info("%s predicted inductively (%s)", name, inductive[name])
            views[name] = "+".join(parts) or "none"
        df.attrs.update({"unit": self.unit, "views": views, "inductive": inductive})
        return df

    def observed(self, genes: Iterable[str] | str | None = None,
                 tissues: Iterable[str] | str | None = None) -> pd.DataFrame:
        """The expression table's values (NaN where missing), same layout as :meth:`predict`."""
        if genes is None:
            ids = [g for g in self._gene_ids if bool(self.data.observed[self._data_row[g]].any())]
        else:
            ids = [self._row_of(g)[0] for g in ([genes] if isinstance(genes, str) else genes)]
        columns = self._tissue_columns(tissues)
        y = self.data.y[[self._data_row[g] for g in ids]].numpy().astype(np.float64)
        df = pd.DataFrame(y, index=pd.Index([self._symbol(g) for g in ids], name="gene_symbol"),
                          columns=pd.Index(self.tissues, name="tissue"))[columns]
        df.attrs["unit"] = self.unit
        return df

    def embed(self, genes: Iterable[str] | str, view: str = "fused") -> pd.DataFrame:
        """Gene embeddings, genes × dims: ``view`` is ``sequence`` (projected sequence-encoder
        embedding; the learned "no sequence" vector for a gene without one), ``graph`` (GAT
        output), ``fused`` (gated fusion, what the heads read) or ``all`` (the three side by
        side, columns prefixed). From the profile-best weights."""
        views = ("sequence", "graph", "fused")
        if view not in (*views, "all"):
            raise GeneSpliceInputError(f"view must be one of {views + ('all',)}, got {view!r}")
        genes = [genes] if isinstance(genes, str) else list(genes)
        ids = [self._row_of(g)[0] for g in genes]
        emb = self._model.embeddings(self._inputs, self._seq,
                                     torch.tensor([self._row[i] for i in ids]))
        index = pd.Index([self._symbol(i) for i in ids], name="gene_symbol")
        frames = []
        for name in (views if view == "all" else (view,)):
            x = getattr(emb, name)
            if x is None:
                raise GeneSpliceInputError(f"a {self.variant!r} model has no {name} view")
            frames.append(pd.DataFrame(x.numpy().astype(np.float64), index=index,
                                       columns=[f"{name}_{j}" for j in range(x.shape[1])]))
        df = pd.concat(frames, axis=1)
        df.attrs["has_sequence"] = dict(zip(index, emb.has_sequence.tolist()))
        return df

    def write_predictions(self, path: str | os.PathLike, genes: Iterable[str] | None = None,
                          progress: bool = True) -> Path:
        """Write predictions as CSV (first column ``gene_symbol``, one column per tissue).

        Without ``genes``: every gene of the expression table, the same table (and side files
        ``.splits.csv`` / ``.meta.json``) as a training run's ``predictions.csv``."""
        from genesplice.training.experiment import write_predictions

        if genes is None:
            if self._inputs is not self.data.graph_inputs:
                raise GeneSpliceInputError("this GeneSplice holds a modified graph; write the "
                                           "full table from the loaded one")
            df = self.predict(progress=progress)
            full = np.full((len(self._gene_ids), len(self.tissues)), np.nan, dtype=np.float64)
            symbols = [self._symbol(g) for g in self._gene_ids]
            pos = pd.Index(symbols).get_indexer(df.index)
            full[pos] = df.to_numpy()
            return write_predictions(path, self.data, full, self.unit)
        df = self.predict(genes, progress=progress)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        df.reset_index().to_csv(tmp, index=False, float_format="%.5f")
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ graph context
    def annotations(self, gene: str) -> pd.DataFrame:
        """The gene's incoming graph context: one row per GO term, pathway, regulator (TF) and
        target (if the gene is a TF) with ``relation, neighbour_id, neighbour_name, attrs``
        (the edge attributes). Can be passed back as ``annotations`` to :meth:`predict`."""
        gid, row = self._row_of(gene)
        out = []
        for et, label in RELATION_LABELS.items():
            ei = self._inputs.edge_index_dict.get(et)
            if ei is None:
                continue
            sel = torch.nonzero(ei[1] == row).squeeze(1)
            ea = self._inputs.edge_attr_dict.get(et)
            for j in sel.tolist():
                src = int(ei[0, j])
                nid, nname = self._neighbour(et[0], src)
                out.append({"gene": self._symbol(gid), "relation": label, "neighbour_id": nid,
                            "neighbour_name": nname,
                            "attrs": None if ea is None else tuple(ea[j].tolist())})
        return pd.DataFrame(out, columns=["gene", "relation", "neighbour_id", "neighbour_name",
                                          "attrs"])

    def _neighbour(self, node_type: str, row: int) -> tuple[str, str]:
        if node_type == "gene":
            gid = self._gene_ids[row]
            return gid, self._symbol(gid)
        nid = self.graph.node_ids[node_type][row]
        return nid, self.graph.name(node_type, nid)

    def promoter(self, gene: str) -> str | None:
        """The gene's sequence input (promoter, gene strand) as text; ``None`` without one."""
        from genesplice.sequence.encode import decode_tokens

        _, row = self._row_of(gene)
        if self._seq is None or self._seq.tokens is None:
            return None
        hit = torch.nonzero(self._seq.gene_rows == row).squeeze(1)
        if not len(hit):
            return None
        j = int(hit[0])
        return decode_tokens(self._seq.tokens[j][self._seq.mask[j]])

    def without_genes(self, genes: Iterable[str] | str) -> GeneSplice:
        """A copy whose graph lacks these genes (nodes, edges, sequences, membership rows) —
        e.g. to check that a gene is predicted from its sequence and annotations alone
        (pass them to :meth:`predict` under its name). The model is shared."""
        from genesplice.models.inference import drop_genes

        genes = [genes] if isinstance(genes, str) else list(genes)
        ids = [self._row_of(g)[0] for g in genes]
        graph, seq, new_index = drop_genes(self._inputs, self._seq,
                                           torch.tensor([self._row[i] for i in ids]))
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._inputs, other._seq = graph, seq
        other._model = self._model.with_base(seq)
        keep = new_index >= 0
        other._gene_ids = [g for g, k in zip(self._gene_ids, keep.tolist()) if k]
        other._row = {g: i for i, g in enumerate(other._gene_ids)}
        gone = set(ids)
        other._display = {g: s for g, s in self._display.items() if g not in gone}
        other._from_display = {s: g for s, g in self._from_display.items() if g not in gone}
        other._upper = {u: g for u, g in self._upper.items() if g not in gone}
        other._located = {}
        return other

    # ------------------------------------------------------------------ explanations
    def attention(self, gene: str, top: int | None = None, weights: str = "profile"
                  ) -> pd.DataFrame:
        """GO terms, pathways, regulators (TFs of the gene) and targets (if it is a TF) ranked
        by the GAT's attention on their edges into the gene: one row per neighbour with
        ``weight`` (mean over heads and layers) and ``weight_layer_<i>``; weights of one
        relation sum to 1 per layer. From the profile-best weights (``weights="level"`` for the
        level-best ones). ``top`` keeps the highest per relation."""
        if not self._model.config.uses_graph:
            raise GeneSpliceInputError(f"a {self.variant!r} model has no graph attention")
        if weights not in ("profile", "level"):
            raise GeneSpliceInputError(f"weights must be 'profile' or 'level', got {weights!r}")
        gid, row = self._row_of(gene)
        records = []
        for et, (src, w) in self._model.attention_into(self._inputs, self._seq, row,
                                                       weights=weights).items():
            label = RELATION_LABELS.get(et, f"{et[0]} {et[1]}")
            for s, wl in zip(src.tolist(), w.tolist()):
                nid, nname = self._neighbour(et[0], s)
                rec = {"gene": self._symbol(gid), "relation": label, "edge_type": "/".join(et),
                       "neighbour_id": nid, "neighbour_name": nname,
                       "weight": float(np.mean(wl))}
                rec.update({f"weight_layer_{i + 1}": v for i, v in enumerate(wl)})
                records.append(rec)
        df = pd.DataFrame(records)
        if df.empty:
            return pd.DataFrame(columns=["gene", "relation", "edge_type", "neighbour_id",
                                         "neighbour_name", "weight", "rank"])
        df = df.sort_values(["relation", "weight"], ascending=[True, False], kind="stable")
        df["rank"] = df.groupby("relation").cumcount() + 1
        if top is not None:
            df = df[df["rank"] <= top]
        return df.reset_index(drop=True)

    def attributions(self, gene: str, tissue: str,
                     ism_window: tuple[int, int] | None = None) -> pd.DataFrame:
        """Per-base attributions of the prediction for ``gene`` in ``tissue`` over its sequence
        window, one row per base: ``position`` (0-based in the window), ``offset_to_tss``,
        ``base``, ``grad_x_input`` (gradient at the reference base), ``grad_x_input_centred``
        (gradient minus its mean over A/C/G/T: comparable with ISM), ``ism_A … ism_T``
        (Δ prediction when the base is changed to that letter; 0 for the reference, NaN outside
        ``ism_window``) and ``ism`` (prediction minus the mean over the three alternatives:
        positive where the reference base raises the prediction). ``ism_window``:
        ``(start, end)`` offsets to the TSS, end exclusive (default: the whole window)."""
        from genesplice.models.attribution import (
            gradient_x_input,
            ism_table,
            single_base_mutants,
        )

        gid, row = self._row_of(gene)
        (col,) = self._tissue_columns(tissue)
        t = self.tissues.index(col)
        if self._seq is None or self._seq.tokens is None or not bool((self._seq.gene_rows == row).any()):
            raise GeneSpliceInputError(f"gene {gene!r} has no sequence input (no promoter); "
                                       "per-base attributions need one")
        if not self._model.config.uses_sequence:
            raise GeneSpliceInputError(f"a {self.variant!r} model does not read sequence")
        j = int(torch.nonzero(self._seq.gene_rows == row)[0, 0])
        tokens = self._seq.tokens[j][self._seq.mask[j]]
        length = len(tokens)
        offsets = np.arange(length) - PROMOTER_TSS_INDEX
        grad = self._model.input_gradient(self._inputs, self._seq, row, tokens, t)
        plain, centred = gradient_x_input(grad, tokens)
        lo, hi = (offsets[0], offsets[-1] + 1) if ism_window is None else ism_window
        positions = torch.tensor([p for p in range(length) if lo <= offsets[p] < hi])
        if not len(positions):
            raise GeneSpliceInputError(f"ism_window {ism_window} lies outside the window "
                                       f"({offsets[0]}..{offsets[-1]} relative to the TSS)")
        mutants, pos, bases = single_base_mutants(tokens, positions)
        delta = self._model.mutagenesis(self._inputs, self._seq, row, tokens, mutants)[:, t]
        table = ism_table(delta, pos, bases, length).numpy().astype(np.float64)
        in_window = np.zeros(length, dtype=bool)
        in_window[positions.numpy()] = True
        table[:, ~in_window] = np.nan
        from genesplice.sequence.encode import decode_tokens

        df = pd.DataFrame({"gene": self._symbol(gid), "tissue": col,
                           "position": np.arange(length), "offset_to_tss": offsets,
                           "base": list(decode_tokens(tokens)),
                           "grad_x_input": plain.numpy().astype(np.float64),
                           "grad_x_input_centred": centred.numpy().astype(np.float64)})
        for b, name in enumerate("ACGT"):
            df[f"ism_{name}"] = table[b]
        alts = np.where(np.arange(4)[:, None] == tokens.numpy()[None, :], np.nan, table)
        df["ism"] = np.where(in_window, -np.nanmean(alts, axis=0), np.nan)
        df.attrs["unit"] = f"Δ {self.unit}"
        return df

    def explain(self, gene: str, tissue: str, *, top: int | None = 10,
                ism_window: tuple[int, int] | None = None) -> Explanation:
        """Why the model predicts what it does for ``gene`` in ``tissue``: the prediction, the
        ``top`` neighbours per relation by GAT attention (:meth:`attention`) and per-base
        attributions over the gene's sequence (:meth:`attributions`; ``None`` when it has no
        sequence). ``Explanation.plot()`` draws them."""
        gid, _ = self._row_of(gene)
        (col,) = self._tissue_columns(tissue)
        pred = float(self.predict([gid], [col], progress=False).iloc[0, 0])
        neighbours = (self.attention(gid, top=top) if self._model.config.uses_graph
                      else pd.DataFrame())
        attributions = None
        if self.promoter(gid) is not None and self._model.config.uses_sequence:
            attributions = self.attributions(gid, col, ism_window=ism_window)
        return Explanation(self._symbol(gid), col, pred, self.unit, neighbours, attributions)

    # ------------------------------------------------------------------ variants
    def promoter_windows(self, genome: Sequence[str | os.PathLike] | None = None,
                         tss: str | os.PathLike | None = None, search_bp: int = 10_000
                         ) -> pd.DataFrame:
        """Where each gene's sequence input lies on the genome (see
        :func:`genesplice.sequence.variants.locate_promoters`): ``gene_id, gene_symbol, chrom, start0,
        end0, strand, tss0, shift_bp``; ``attrs["report"]`` counts what could not be placed."""
        windows, report, _ = self._windows(genome, tss, search_bp)
        df = windows.copy()
        df.insert(1, "gene_symbol", [self._symbol(g) for g in df["gene_id"]])
        df.attrs["report"] = report.summary()
        return df

    def _windows(self, genome, tss, search_bp):
        from genesplice.io.knowledge import knowledge_path
        from genesplice.sequence.encode import decode_tokens
        from genesplice.sequence.tss import read_tss
        from genesplice.training.data import to_graph_ids
        from genesplice.sequence.variants import Genome, locate_promoters

        genome = genome or self.genome_paths or [knowledge_path(p) for p in HG38_REGIONS]
        genome = [genome] if isinstance(genome, (str, os.PathLike)) else list(genome)
        tss = tss or self.tss_path or knowledge_path(TSS_HG38)
        key = (tuple(os.fspath(p) for p in genome), os.fspath(tss), search_bp)
        if key not in self._located:
            if self._seq is None or self._seq.tokens is None:
                raise GeneSpliceInputError("this model has no sequence inputs to place on a "
                                           "genome")
            from genesplice.annotations.ids import default_resolver

            table = read_tss(tss)
            mapping = to_graph_ids(pd.unique(table["gene_id"]), self._row, default_resolver())
            table = table.assign(gene_id=table["gene_id"].map(mapping)).dropna(subset=["gene_id"])
            promoters = pd.Series(
                {self._gene_ids[int(r)]: decode_tokens(self._seq.tokens[j][self._seq.mask[j]])
                 for j, r in enumerate(self._seq.gene_rows.tolist())})
            g = Genome(genome)
            windows, report = locate_promoters(promoters, table, g,
                                               tss_index=PROMOTER_TSS_INDEX,
                                               search_bp=search_bp)
            self._located[key] = (windows, report, g)
        return self._located[key]

    def variant_effect(self, variants: pd.DataFrame | str | os.PathLike, *,
                       genome: Sequence[str | os.PathLike] | None = None,
                       tss: str | os.PathLike | None = None,
                       tissues: Iterable[str] | str | None = None, chunk_size: int = 10_000,
                       batch_size: int = 256, search_bp: int = 10_000,
                       progress: bool = True) -> pd.DataFrame:
        """Δ predicted expression per tissue (alternative − reference) for every gene whose
        sequence window covers a variant.

        ``variants``: a DataFrame or a VCF / TSV path with ``chrom, pos, ref, alt`` (``pos``
        1-based as in VCF; optional ``id``), streamed ``chunk_size`` rows at a time. Promoter
        windows are placed on ``genome`` (FASTA path(s); default the bundled hg38 chr2 /
        chr17 regions) via the ``tss`` table (default the bundled hg38 TSSs); each overlapping
        variant's ``ref`` is checked against the FASTA (mismatch → error naming the variant).
        SNVs and equal-length substitutions are scored; indels and symbolic alleles are
        counted and skipped. The gene is scored as a copy whose sequence carries the allele
        (its graph neighbours still see the reference), reference and alternative copies
        evaluated the same way, so a ref→ref "variant" gives exactly 0.

        One row per (variant, gene): ``variant_id, chrom, pos, ref, alt, gene_symbol, strand,
        offset_to_tss`` (of the variant's 5'-most base in the window, on the gene's strand),
        then one column per tissue. ``attrs``: ``unit``, ``report`` (counts), ``located``.
        """
        from tqdm.auto import tqdm

        from genesplice.models.inference import copy_genes
        from genesplice.sequence.variants import (
            VariantReport,
            WindowIndex,
            iter_variants,
            variant_windows,
        )

        columns = self._tissue_columns(tissues)
        cols_idx = [self.tissues.index(c) for c in columns]
        windows, located, g = self._windows(genome, tss, search_bp)
        index = WindowIndex(windows)
        seq_tokens = {}
        row_of_seq = {int(r): j for j, r in enumerate(self._seq.gene_rows.tolist())}
        for gene_id in windows["gene_id"]:
            j = row_of_seq[self._row[gene_id]]
            seq_tokens[gene_id] = self._seq.tokens[j][self._seq.mask[j]]
        report = VariantReport()
        path = None if isinstance(variants, pd.DataFrame) else variants
        out: list[pd.DataFrame] = []
        pending: list = []

        def score(batch) -> None:
            pairs = pd.concat([b.variants for b in batch], ignore_index=True)
            ref = torch.cat([b.ref_tokens for b in batch])
            alt = torch.cat([b.alt_tokens for b in batch])
            rows = torch.tensor([self._row[x] for x in pairs["gene_id"]], dtype=torch.long)
            preds = []
            for tokens in (ref, alt):
                gi, si, copies = copy_genes(self._inputs, self._seq, rows, tokens=tokens,
                                            mask=torch.ones_like(tokens, dtype=torch.bool))
                preds.append(self._model.predict(gi, si, copies, batch_size=len(rows))[0])
            delta = (preds[1] - preds[0])[:, cols_idx].numpy().astype(np.float64)
            pairs.insert(5, "gene_symbol", [self._symbol(x) for x in pairs.pop("gene_id")])
            out.append(pd.concat([pairs, pd.DataFrame(delta, columns=columns)], axis=1))

        bar = tqdm(desc="variants", unit=" variants", disable=not progress, leave=False)
        n_pending = 0
        for chunk in iter_variants(variants, chunk_size):
            vw = variant_windows(chunk, index, seq_tokens, g, report, path=path)
            bar.update(len(chunk))
            if vw is None:
                continue
            pending.append(vw)
            n_pending += len(vw.variants)
            if n_pending >= batch_size:
                score(pending)
                pending, n_pending = [], 0
        if pending:
            score(pending)
        bar.close()
        if out:
            df = pd.concat(out, ignore_index=True)
        else:
            df = pd.DataFrame(columns=["variant_id", "chrom", "pos", "ref", "alt",
                                       "gene_symbol", "strand", "offset_to_tss", *columns])
        df.attrs.update({"unit": f"Δ {self.unit}", "report": report.summary(),
                         "located": located.summary()})
        log.info("%s", report.summary())
        return df


def _checked_data(cfg, graph, saved: Mapping[str, str], genes, checkpoint, progress: bool):
    """Training data rebuilt from ``cfg`` with every promoter (what queries use), after
    checking the checksums the checkpoint stored (on the ``genes`` subset it was trained on,
    if one is given)."""
    from genesplice.training.checkpoint import compare_checksums
    from genesplice.training.experiment import prepare_from_config

    data = prepare_from_config(cfg, graph=graph, progress=progress)
    check = data
    if genes is not None and saved.get("sequences") != data.checksums.get("sequences"):
        check = prepare_from_config(cfg, graph=graph, genes=list(genes), progress=False)
    try:
        compare_checksums(saved, check.checksums, path=checkpoint)
    except GeneSpliceInputError as err:
        stored = {k: v or "(bundled default)" for k, v in
                  (("graph_path", cfg.data.graph_path), ("expression_path",
                   cfg.data.expression_path), ("tss_path", cfg.data.tss_path))}
        hint = ""
        if "sequences" in err.problem and genes is None:
            hint = (" A model trained on a labelled-gene subset (prepare_from_config(genes=...))"
                    " saw only those genes' promoters: pass the same genes= to load it.")
        raise GeneSpliceInputError(
            f"{err.problem}. Pass the files the model was trained on (graph=, expression=, "
            f"tss=; the run config says {stored}).{hint}", path=checkpoint) from err
    return data


def _align_membership(data, graph, feature_names: list[str], checkpoint):
    """The training data with the membership columns the checkpoint was trained on.

    The kept features depend on which genes were labelled when the model was trained (a
    ``genes=`` subset keeps fewer); the stored names decide, in their stored order."""
    if list(data.feature_names) == feature_names:
        return data
    from genesplice.graph.features import membership_from_graph

    feats = membership_from_graph(graph)
    index = {f: j for j, f in enumerate(feats.feature_ids)}
    missing = [f for f in feature_names if f not in index]
    if missing:
        raise GeneSpliceInputError(f"{len(missing)} membership features of the checkpoint are "
                                   f"not in the graph (e.g. {missing[:5]})", path=checkpoint)
    matrix = feats.matrix.tocsr()[:, [index[f] for f in feature_names]].tocsr()
    matrix.sort_indices()
    csr = torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                  torch.from_numpy(matrix.indices.astype(np.int64)),
                                  torch.from_numpy(matrix.data.astype(np.float32)),
                                  size=matrix.shape, check_invariants=False)
    graph_inputs = replace(data.graph_inputs, membership=csr)
    return replace(data, graph_inputs=graph_inputs, membership=csr, membership_csr=matrix,
                   feature_names=list(feature_names))
