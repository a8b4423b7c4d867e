"""Predictions, observed values, embeddings and a gene's graph context, as DataFrames.

Predictions are what training reports: the level (mean over tissues) from the weights that
were best on the validation level, plus the tissue profile from the weights that were best
on the validation profile, in the expression table's unit (``df.attrs["unit"]``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import torch

from genesplice.api.base import RELATION_LABELS
from genesplice.annotations.ids import default_resolver
from genesplice.api.inductive import InductiveMixin, NewGene
from genesplice.io.atomic import atomic_write
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import sha256_file
from genesplice.sequence.encode import decode_tokens
from genesplice.training.experiment import prediction_splits
from genesplice.training.experiment import write_predictions as write_prediction_table

log = logging.getLogger(__name__)

EMBEDDING_VIEWS = ("sequence", "graph", "fused")


class PredictionMixin(InductiveMixin):
    """What the model predicts for genes, what was observed, and the genes' embeddings."""

    def predict(self, genes: Iterable[str] | str | None = None,
                tissues: Iterable[str] | str | None = None, *,
                sequences: Mapping[str, str] | None = None,
                annotations: Mapping[str, Sequence[str] | pd.DataFrame] | None = None,
                batch_size: int = 20_000, progress: bool = True,
                as_anndata: bool = False) -> pd.DataFrame | anndata.AnnData:
        """Predicted expression, genes × tissues.

        ``genes``: symbols, aliases or Ensembl/UniProt ids (default: every gene of the
        expression table). A name the graph lacks is predicted *inductively* when
        ``sequences`` (promoter DNA, gene strand, TSS at base 49 of 60 as in EPDnew) and/or
        ``annotations`` (GO term ids, Reactome pathway ids, regulating TF symbols — or a
        DataFrame from :meth:`annotations`) are given for it: it is added to the graph as a new
        gene node. ``df.attrs``: ``unit``, ``views`` (gene → the views it had: ``sequence``,
        ``graph``), ``inductive`` (new gene → what it was given and what was not usable).

        ``as_anndata=True``: an :class:`anndata.AnnData` instead (scverse convention) —
        ``obs`` = tissues, ``var`` = genes (index: symbol; columns ``ensembl_id``,
        ``graph_gene_id``, ``views``), ``X`` the predictions (float32), ``uns`` the unit, the
        model (variant, checkpoint and its sha256) and the data checksums, ``varm`` the
        gene embeddings (``X_sequence`` / ``X_graph`` / ``X_fused``, the views the model has).
        """
        if genes is None:
            ids = self._expressed_ids()
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
        df = pd.DataFrame(pred.cpu().numpy().astype(np.float64),
                          columns=pd.Index(self.tissues, name="tissue"),
                          index=pd.Index(index, name="gene_symbol"))[columns]
        keep = ~df.index.duplicated(keep="first")
        df = df[keep]
        views, inductive = self._views(index, has.cpu().tolist(), new)
        df.attrs.update({"unit": self.unit, "views": views, "inductive": inductive})
        if not as_anndata:
            return df
        emb = self._model.embeddings(graph, seq, torch.tensor(rows, dtype=torch.long))
        varm = {f"X_{name}": getattr(emb, name).cpu().numpy()[keep].astype(np.float32)
                for name in EMBEDDING_VIEWS if getattr(emb, name) is not None}
        graph_ids = [g or "" for g, k in zip(known, keep) if k]
        return self._anndata(df, graph_ids, varm)

    def _anndata(self, df: pd.DataFrame, graph_ids: list[str],
                 varm: dict[str, np.ndarray]) -> anndata.AnnData:
        """Predictions ``df`` (genes × tissues) as AnnData: obs = tissues, var = genes."""
        ensembl = default_resolver().ensembl_ids_of(graph_ids)
        var = pd.DataFrame({"ensembl_id": ensembl, "graph_gene_id": graph_ids,
                            "views": [df.attrs["views"].get(g, "") for g in df.index]},
                           index=pd.Index([str(g) for g in df.index], name="gene_symbol"))
        obs = pd.DataFrame(index=pd.Index([str(t) for t in df.columns], name="tissue"))
        ck = self.checkpoint
        model = {"variant": self.variant, "checkpoint": "" if ck is None else str(ck),
                 "checkpoint_sha256": (sha256_file(ck) if ck is not None and Path(ck).is_file()
                                       else "")}
        uns = {"unit": self.unit, "model": model,
               "data_checksums": {k: str(v) for k, v in self.data.checksums.items()},
               "inductive": {k: str(v) for k, v in df.attrs["inductive"].items()},
               "layout": "obs = tissues, var = genes, X = predicted expression in uns['unit']"}
        return anndata.AnnData(X=df.to_numpy(np.float32).T, obs=obs, var=var, uns=uns,
                               varm=varm)

    def _views(self, names: list[str], has: list[bool], new: list[NewGene]
               ) -> tuple[dict[str, str], dict[str, str]]:
        """gene → ``sequence+graph`` (the views it had), and new gene → what it was given."""
        graph_view = self._model.config.uses_graph
        new_by_name = {g.name: g for g in new}
        views, inductive = {}, {}
        for name, h in zip(names, has):
            parts = (["sequence"] if h else []) + (["graph"] if graph_view else [])
            if name in new_by_name:
                g = new_by_name[name]
                parts = (["sequence"] if g.tokens is not None else []) + \
                    (["graph"] if g.annotations and graph_view else [])
                inductive[name] = g.describe()
                log.info("%s predicted inductively (%s)", name, inductive[name])
            views[name] = "+".join(parts) or "none"
        return views, inductive

    def observed(self, genes: Iterable[str] | str | None = None,
                 tissues: Iterable[str] | str | None = None) -> pd.DataFrame:
        """The expression table's values (NaN where missing), same layout as :meth:`predict`."""
        ids = self._expressed_ids() if genes is None else self._ids_of(genes)
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
        if view not in (*EMBEDDING_VIEWS, "all"):
            raise GeneSpliceInputError(
                f"view must be one of {EMBEDDING_VIEWS + ('all',)}, got {view!r}")
        ids = self._ids_of(genes)
        emb = self._model.embeddings(self._inputs, self._seq,
                                     torch.tensor([self._row[i] for i in ids]))
        index = pd.Index([self._symbol(i) for i in ids], name="gene_symbol")
        frames = []
        for name in (EMBEDDING_VIEWS if view == "all" else (view,)):
            x = getattr(emb, name)
            if x is None:
                raise GeneSpliceInputError(f"a {self.variant!r} model has no {name} view")
            frames.append(pd.DataFrame(x.cpu().numpy().astype(np.float64), index=index,
                                       columns=[f"{name}_{j}" for j in range(x.shape[1])]))
        df = pd.concat(frames, axis=1)
        df.attrs["has_sequence"] = dict(zip(index, emb.has_sequence.cpu().tolist()))
        return df

    def write_predictions(self, path: str | os.PathLike, genes: Iterable[str] | None = None,
                          progress: bool = True) -> Path:
        """Write predictions atomically: CSV (first column ``gene_symbol``, one column per
        tissue), or AnnData when ``path`` ends in ``.h5ad`` (:meth:`predict` with
        ``as_anndata=True``).

        Without ``genes``: **every gene of the graph**; as CSV the same table (and side files
        ``.splits.csv`` / ``.meta.json``) as a training run's ``predictions.csv``."""
        path = Path(path)
        if genes is None and self._inputs is not self.data.graph_inputs:
            raise GeneSpliceInputError("this GeneSplice holds a modified graph; write the "
                                       "full table from the loaded one")
        wanted = list(self._gene_ids) if genes is None else genes
        if path.suffix.lower() == ".h5ad":
            adata = self.predict(wanted, progress=progress, as_anndata=True)
            if genes is None:
                splits = prediction_splits(self.data).set_index("graph_gene_id")
                adata.var["split"] = splits.loc[adata.var["graph_gene_id"], "split"].to_numpy()
            return atomic_write(path, lambda tmp: adata.write_h5ad(tmp))
        if genes is None:
            df = self.predict(wanted, progress=progress)
            full = df.reindex([self._symbol(g) for g in self._gene_ids]).to_numpy()
            return write_prediction_table(path, self.data, full, self.unit)
        table = self.predict(genes, progress=progress).reset_index()
        return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False,
                                                           float_format="%.5f"))

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
                nid, nname = self._neighbour(et[0], int(ei[0, j]))
                out.append({"gene": self._symbol(gid), "relation": label, "neighbour_id": nid,
                            "neighbour_name": nname,
                            "attrs": None if ea is None else tuple(ea[j].tolist())})
        return pd.DataFrame(out, columns=["gene", "relation", "neighbour_id", "neighbour_name",
                                          "attrs"])

    def promoter(self, gene: str) -> str | None:
        """The gene's sequence input (promoter, gene strand) as text; ``None`` without one."""
        _, row = self._row_of(gene)
        j = self._sequence_index(row)
        return None if j is None else decode_tokens(self._tokens(j))
