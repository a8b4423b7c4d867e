"""Building a :class:`genesplice.api.GeneSplice`: from a checkpoint (:meth:`LoadingMixin.load`,
checksums checked) or from input paths (:meth:`LoadingMixin.from_files`, training a model
when no checkpoint is given).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from genesplice.graph.features import membership_from_graph
from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.device import resolve_device
from genesplice.models.inference import TwoStateModel
from genesplice.training.checkpoint import compare_checksums
from genesplice.training.config import RunConfig, config_from_dict
from genesplice.training.data import label_edges
from genesplice.training.experiment import (
    build_model,
    fit_ridge,
    load_graph,
    load_trained,
    prepare_for_run,
    prepare_from_config,
    train_variant,
)


def _with_paths(data_cfg, **paths):
    """``data_cfg`` with the given (not ``None``) input paths replaced."""
    given = {key: os.fspath(value) for key, value in paths.items() if value is not None}
    return replace(data_cfg, **given) if given else data_cfg


class LoadingMixin:
    """The constructors of :class:`~genesplice.api.GeneSplice`."""

    @classmethod
    def load(cls, checkpoint: str | os.PathLike, *, graph=None,
             expression: str | os.PathLike | None = None, tss: str | os.PathLike | None = None,
             genome: Sequence[str | os.PathLike] | None = None,
             genes: Sequence[str] | None = None, device: str | None = None,
             progress: bool = True):
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
        ``device``: where the model runs (``auto``, ``cpu``, ``cuda``, ``mps``; default the
        checkpoint config's ``train.device``).
        """
        model, level_state, profile_state, ck = load_trained(checkpoint)
        cfg = config_from_dict(RunConfig, ck.config, path=checkpoint)
        resolve_device(device if device is not None else cfg.train.device)   # before the data
        data_cfg = _with_paths(cfg.data, expression_path=expression, tss_path=tss)
        if graph is not None and not hasattr(graph, "node_ids"):
            data_cfg = replace(data_cfg, graph_path=os.fspath(graph))
            graph = None
        cfg = replace(cfg, data=data_cfg)
        if graph is None:
            graph = load_graph(cfg.data.graph_path or None, progress=progress)
        data = checked_data(cfg, graph, ck.data_checksums, genes, checkpoint, progress,
                            inputs=ck.extra.get("inputs"))
        if list(ck.extra.get("tissues", data.tissues)) != list(data.tissues):
            raise GeneSpliceInputError(
                f"tissues differ from the checkpoint's: {ck.extra['tissues'][:5]}… vs "
                f"{data.tissues[:5]}…", path=checkpoint)
        data = align_membership(data, graph, list(ck.extra.get("feature_names",
                                                               data.feature_names)), checkpoint)
        return cls._assemble(ck.extra["model_args"], level_state, profile_state, data, graph,
                             config=cfg, checkpoint=str(checkpoint), genome=genome, tss=tss,
                             model=model, device=device)

    @classmethod
    def _assemble(cls, args, level_state, profile_state, data, graph, *, config, checkpoint,
                  genome, tss, model=None, device=None):
        profile_model = model if model is not None else build_model(args)
        profile_model.load_state_dict(profile_state)
        level_model = build_model(args)
        level_model.load_state_dict(level_state)
        where = resolve_device(device if device is not None else config.train.device)
        return cls(TwoStateModel(level_model, profile_model, data.sequences, device=where),
                   data, graph, config=config, checkpoint=checkpoint, genome=genome, tss=tss)

    @classmethod
    def from_files(cls, *, checkpoint: str | os.PathLike | None = None,
                   graph: str | os.PathLike | None = None,
                   recipe: str | os.PathLike | None = None,
                   expression: str | os.PathLike | None = None,
                   tss: str | os.PathLike | None = None,
                   genome: Sequence[str | os.PathLike] | None = None,
                   out_dir: str | os.PathLike = "runs/genesplice", variant: str = "fused",
                   config=None, epochs: int | None = None, genes: Sequence[str] | None = None,
                   device: str | None = None, progress: bool = True):
        """Everything from input paths in one call.

        With ``checkpoint``: :meth:`load` with these paths (``genes``: the labelled subset it
        was trained on, if any). Without: the graph is loaded from
        ``graph`` (a built-graph folder; built there from ``recipe`` — default
        ``graphs/human_default.toml`` — when it holds none), the training data are assembled
        from ``expression`` / ``tss`` (the bundled files by default) and a ``variant`` model is
        trained (ridge warm start, then :func:`genesplice.training.experiment.train_variant`) with
        ``config`` (a :class:`~genesplice.training.config.RunConfig`; ``epochs`` overrides its
        ``train.epochs``, ``device`` its ``train.device``; ``genes`` restricts the labelled
        genes, e.g. for a quick run). The checkpoint goes to ``out_dir/<variant>.pt``. Training
        on all genes takes a while on a CPU; ``genesplice train`` / ``make demo`` are the
        long-running way.
        """
        if checkpoint is not None:
            return cls.load(checkpoint, graph=graph, expression=expression, tss=tss,
                            genome=genome, genes=genes, device=device, progress=progress)
        cfg = config or RunConfig()
        data_cfg = _with_paths(cfg.data, expression_path=expression, tss_path=tss,
                               graph_path=graph)
        train_cfg = cfg.train if epochs is None else replace(cfg.train, epochs=int(epochs))
        if device is not None:
            train_cfg = replace(train_cfg, device=str(device))
        cfg = replace(cfg, out_dir=os.fspath(out_dir), data=data_cfg, train=train_cfg)
        kg = load_graph(cfg.data.graph_path or None, recipe=recipe, progress=progress)
        data = prepare_from_config(cfg, graph=kg, genes=list(genes) if genes else None,
                                   progress=progress)
        ridge = fit_ridge(data, cfg)
        result = train_variant(variant, data, cfg, ridge=ridge, out_dir=Path(out_dir),
                               progress=progress)
        if genes:           # a quick run encoded only its genes' promoters: queries use all
            features = list(data.feature_names)
            data = align_membership(prepare_from_config(cfg, graph=kg, progress=progress), kg,
                                    features, result.train.checkpoint_path)
        return cls._assemble(result.args, result.train.level_state, result.train.profile_state,
                             data, kg, config=cfg, checkpoint=str(result.train.checkpoint_path),
                             genome=genome, tss=tss)


def checked_data(cfg, graph, saved: Mapping[str, str], genes, checkpoint, progress: bool,
                 inputs: dict | None = None):
    """Training data rebuilt from ``cfg`` with every promoter (what queries use), after
    checking the checksums the checkpoint stored (on the ``genes`` subset it was trained on,
    if one is given). ``inputs``: a fine-tuned checkpoint's base inputs
    (:func:`~genesplice.training.experiment.prepare_for_run`)."""
    data = prepare_for_run(cfg, graph=graph, inputs=inputs, progress=progress)
    check = data
    if genes is not None and saved.get("sequences") != data.checksums.get("sequences"):
        check = prepare_for_run(cfg, graph=graph, genes=list(genes), inputs=inputs,
                                progress=False)
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


def align_membership(data, graph, feature_names: list[str], checkpoint):
    """The training data with the membership columns the checkpoint was trained on.

    The kept features depend on which genes were labelled when the model was trained (a
    ``genes=`` subset keeps fewer); the stored names decide, in their stored order."""
    if list(data.feature_names) == feature_names:
        return data
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
    label_idf = data.label_idf
    if graph_inputs.label_edge_index is not None:   # similarity over the same columns
        edges = label_edges(matrix, np.flatnonzero(graph_inputs.labelled.cpu().numpy()),
                            data.report.get("similar_genes", 50))
        label_idf = edges.pop("label_idf").numpy()
        graph_inputs = replace(graph_inputs, **edges)
    return replace(data, graph_inputs=graph_inputs, membership=csr, membership_csr=matrix,
                   feature_names=list(feature_names), label_idf=label_idf)
