"""The notebook API on the real bundled data (issue 6).

One small fused model is trained per session on ~400 labelled genes for one epoch (the graph,
promoters and expression table are the full bundled ones), written as a checkpoint by
``train_variant`` and loaded back through :meth:`GeneSplice.load`, which rebuilds the training
data and checks its checksums.
"""
from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genesplice.api import GeneSplice
from genesplice.cli import main
from genesplice.training.config import RunConfig, TrainConfig
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence.encode import decode_tokens
from genesplice.sequence.fasta import GenomeWindows

ROOT = Path(__file__).resolve().parents[1]
GRAPH_DIR = ROOT / "graphs" / "built" / "human_default"      # git-ignored build cache
HG38 = {"chr2": "sequence/hg38_chr2_1-2333275.fa.gz",
        "chr17": "sequence/GRCh38_chr17_9958130-12017414.fa.gz"}
TISSUES = ["liver", "skeletal muscle"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """``GeneSplice.from_files``: one epoch of the fused model on ~400 labelled genes (graph,
    promoters and expression table are the full bundled ones), checkpointed by
    ``train_variant``."""
    from genesplice.training.checkpoint import load_checkpoint
    from genesplice.training.experiment import load_graph

    out = tmp_path_factory.mktemp("api_run")
    kg = load_graph(GRAPH_DIR, progress=False)       # built once there when absent
    genes = kg.node_ids["gene"][::50] + ["ALB", "MYH4", "TP53", "MYC"]
    cfg = RunConfig(name="api-test", train=TrainConfig(epochs=1, batch_size=128, warmup_steps=1,
                                                       seed=0))
    fresh = GeneSplice.from_files(graph=GRAPH_DIR, out_dir=out, config=cfg, genes=genes,
                                  progress=False)
    genes_file = out / "labelled_genes.txt"
    genes_file.write_text("\n".join(genes) + "\n")
    ck = load_checkpoint(fresh.checkpoint)
    return {"checkpoint": Path(fresh.checkpoint), "fresh": fresh, "graph": kg, "genes": genes,
            "genes_file": genes_file, "extra": ck.extra}


@pytest.fixture(scope="session")
def gs(trained):
    return GeneSplice.load(trained["checkpoint"], graph=trained["graph"],
                           genes=trained["genes"], progress=False)


def test_predict_dataframe_shape_labels_and_values(gs, trained):
    df = gs.predict(["TP53", "ENSG00000163631", "myc"], tissues=TISSUES, progress=False)
    assert df.shape == (3, 2)
    assert list(df.index) == ["TP53", "ALB", "MYC"]          # Ensembl id and case resolved
    assert df.index.name == "gene_symbol" and df.columns.name == "tissue"
    assert list(df.columns) == TISSUES
    assert df.attrs["unit"] == "log10(nTPM + 1)"
    assert df.attrs["views"] == {g: "sequence+graph" for g in df.index}
    # the numbers training reports (genesplice.training.loop.predict_rows): the level from
    # the level-best weights, the centred profile from the profile-best weights
    from genesplice.training.loop import predict_rows
    from genesplice.training.experiment import build_model

    # (queries use every promoter: gs.data, not the subset run's training data)
    data, extra = gs.data, trained["extra"]
    rows = torch.tensor([data.gene_ids.index(g) for g in df.index])
    parts = []
    for state in (extra["level_state"], extra["profile_state"]):
        model = build_model(extra["model_args"])
        model.load_state_dict(state)
        parts.append(predict_rows(model, data, rows))
    reference = parts[0].mean(1, keepdim=True) + parts[1] - parts[1].mean(1, keepdim=True)
    cols = [data.tissues.index(t) for t in TISSUES]
    np.testing.assert_allclose(df.to_numpy(), reference[:, cols].numpy(), atol=2e-5)


def test_observed_and_embed_layouts(gs):
    obs = gs.observed(["ALB"], tissues="liver")
    assert obs.loc["ALB", "liver"] > 3.0                      # albumin: liver, log10 nTPM > 3
    emb = gs.embed(["TP53", "ALB"], view="all")
    d = gs._model.config.hidden
    assert emb.shape == (2, 3 * d)
    assert [c.split("_")[0] for c in emb.columns[::d]] == ["sequence", "graph", "fused"]
    assert gs.embed("TP53").shape == (1, d)


def test_unknown_gene_lists_close_matches(gs):
    with pytest.raises(GeneSpliceInputError, match=r"unknown gene: 'TP35' \(close matches:.*TP53"):
        gs.predict(["TP35"], progress=False)
    with pytest.raises(GeneSpliceInputError, match="unknown tissue"):
        gs.predict(["TP53"], tissues=["livr"], progress=False)


def test_new_gene_without_sequence_or_known_annotation_is_an_error(gs):
    with pytest.raises(GeneSpliceInputError, match="'NOVEL1' is not in the graph and has "
                                                   "neither a sequence nor an annotation"):
        gs.predict(["NOVEL1"], annotations={"NOVEL1": ["GO:9999999"]}, progress=False)
    with pytest.raises(GeneSpliceInputError, match="already in the graph"):
        gs.predict(["TP53"], sequences={"TP53": "ACGT" * 15}, progress=False)


def test_inductive_prediction_of_a_gene_removed_from_the_graph(gs):
    """ALB (not a TF) is removed from the graph, then predicted from its promoter and its
    annotations alone: the model has no per-gene parameters, so it gets the same answer."""
    full = gs.predict(["ALB"], progress=False)
    annotations, promoter = gs.annotations("ALB"), gs.promoter("ALB")
    assert len(promoter) == 60 and set(annotations["relation"]) == {"GO term", "pathway",
                                                                   "regulator"}
    without = gs.without_genes(["ALB"])
    assert "ALB" not in without.genes
    with pytest.raises(GeneSpliceInputError, match="unknown gene"):
        without.predict(["ALB"], progress=False)
    back = without.predict(["ALB"], sequences={"ALB": promoter},
                           annotations={"ALB": annotations}, progress=False)
    assert back.attrs["views"] == {"ALB": "sequence+graph"}
    n_go = int((annotations["relation"] == "GO term").sum())
    assert f"{n_go} GO terms" in back.attrs["inductive"]["ALB"]
    np.testing.assert_allclose(back.to_numpy(), full.to_numpy(), atol=2e-5)
    # fewer views, other answers: sequence only, and plain annotation ids (default attributes)
    seq_only = without.predict(["ALB"], sequences={"ALB": promoter}, progress=False)
    ids_only = without.predict(["ALB"], annotations={"ALB": list(annotations["neighbour_id"])},
                               progress=False)
    assert seq_only.attrs["views"] == {"ALB": "sequence"}
    assert ids_only.attrs["views"] == {"ALB": "graph"}
    liver = full.columns.get_loc("liver")
    assert abs(seq_only.iloc[0, liver] - full.iloc[0, liver]) > 1e-3


def test_attention_names_and_sums(gs):
    att = gs.attention("ALB")
    assert list(att.columns[:6]) == ["gene", "relation", "edge_type", "neighbour_id",
                                     "neighbour_name", "weight"]
    # GATv2 normalises per destination and relation: each layer's weights sum to 1
    sums = att.groupby("relation")[["weight_layer_1", "weight_layer_2"]].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    go = att[att["relation"] == "GO term"]
    assert len(go) == int((gs.annotations("ALB")["relation"] == "GO term").sum())
    assert go["neighbour_id"].str.startswith("GO:").all()
    assert (go["neighbour_name"] != go["neighbour_id"]).all()       # names, not ids
    regulators = set(att.loc[att["relation"] == "regulator", "neighbour_id"])
    assert {"HNF1A", "HNF4A"} & regulators                          # liver TFs regulate ALB
    top = gs.attention("ALB", top=3)
    assert top.groupby("relation").size().max() == 3


def test_ism_agrees_in_sign_with_gradient_x_input_on_top_positions(gs):
    """MYH4's promoter (minus strand) in skeletal muscle: the five bases whose in-silico
    mutation moves the prediction most have the sign gradient × input gives them."""
    attr = gs.attributions("MYH4", "skeletal muscle")
    assert len(attr) == 60 and attr["offset_to_tss"].tolist() == list(range(-49, 11))
    assert "".join(attr["base"]) == gs.promoter("MYH4")
    assert attr["ism"].abs().max() > 0
    top = attr.reindex(attr["ism"].abs().sort_values(ascending=False).index[:5])
    assert (np.sign(top["ism"]) == np.sign(top["grad_x_input_centred"])).all()
    window = gs.attributions("MYH4", "skeletal muscle", ism_window=(-10, 5))
    assert window["ism"].notna().sum() == 15


def test_explain_returns_both_parts_and_plots(gs):
    import matplotlib

    matplotlib.use("Agg")
    ex = gs.explain("MYH4", "skeletal muscle", top=5, ism_window=(-20, 10))
    assert ex.gene == "MYH4" and ex.unit == "log10(nTPM + 1)"
    assert ex.neighbours.groupby("relation").size().max() <= 5
    assert ex.attributions is not None and ex.attributions["ism"].notna().sum() == 30
    fig = ex.plot()
    assert len(fig.axes) >= 3
    matplotlib.pyplot.close(fig)


def _fasta(chrom):
    return GenomeWindows(knowledge_path(HG38[chrom]))


def test_variant_effect_ref_to_ref_is_exactly_zero_and_snvs_match_ism(gs):
    """Every base of ACP1's (+) and MYH4's (−) promoter windows, as ref→ref and as an SNV."""
    windows = gs.promoter_windows().set_index("gene_symbol")
    assert {"ACP1", "MYH4", "SCO1"} <= set(windows.index)
    rows = []
    for gene in ("ACP1", "MYH4"):
        w = windows.loc[gene]
        chrom = "chr" + w["chrom"]
        tokens, _ = _fasta(chrom).fetch(chrom, int(w["start0"]), int(w["end0"]))
        for i, base in enumerate(decode_tokens(tokens)):
            pos = int(w["start0"]) + i + 1
            rows.append((chrom, pos, base, base))
            rows.append((chrom, pos, base, "G" if base != "G" else "T"))
    variants = pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt"])
    effects = gs.variant_effect(variants, progress=False)
    assert len(effects) == 240 and effects.attrs["unit"] == "Δ log10(nTPM + 1)"
    tissues = gs.tissues
    same = effects[effects["ref"] == effects["alt"]]
    assert len(same) == 120
    assert (same[tissues].to_numpy() == 0.0).all()                  # exactly zero
    snv = effects[effects["ref"] != effects["alt"]]
    assert (snv[tissues].abs().to_numpy().max(axis=1) > 0).all()
    # an SNV's Δ is the ISM Δ of the same base change on the gene's strand
    attr = gs.attributions("MYH4", "skeletal muscle").set_index("offset_to_tss")
    complement = dict(zip("ACGT", "TGCA"))
    myh4 = snv[snv["gene_symbol"] == "MYH4"]
    for _, v in myh4.head(10).iterrows():
        ism = attr.loc[v["offset_to_tss"], f"ism_{complement[v['alt']]}"]
        assert attr.loc[v["offset_to_tss"], "base"] == complement[v["ref"]]
        np.testing.assert_allclose(v["skeletal muscle"], ism, atol=1e-6)


def test_variant_ref_mismatch_names_the_variant(gs):
    w = gs.promoter_windows().set_index("gene_symbol").loc["SCO1"]
    tokens, _ = _fasta("chr17").fetch("chr17", int(w["start0"]), int(w["start0"]) + 1)
    wrong = "A" if decode_tokens(tokens) != "A" else "C"
    bad = pd.DataFrame({"chrom": ["chr17"], "pos": [int(w["start0"]) + 1], "id": ["rsBAD"],
                        "ref": [wrong], "alt": ["T"]})
    with pytest.raises(GeneSpliceInputError, match=r"variant rsBAD .*does not match the genome"):
        gs.variant_effect(bad, progress=False)


def _write_vcf(path: Path, n: int, seed: int) -> None:
    """n random SNVs with correct reference bases in the bundled hg38 chr2 / chr17 regions."""
    rng = np.random.default_rng(seed)
    regions = {"chr2": (10_000, 2_333_275), "chr17": (9_958_130, 12_017_414)}
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for chrom, (lo, hi) in regions.items():
        k = n // 2
        pos = np.sort(rng.integers(lo, hi, size=k))
        fasta = _fasta(chrom)
        tokens, _ = fasta.fetch(chrom, lo - 1, hi)
        seq = np.array(list(decode_tokens(tokens)))
        refs = seq[pos - lo]
        alts = np.where(refs == "A", "C", "A")
        lines += [f"{chrom}\t{p}\t.\t{r}\t{a}\t.\t.\t." for p, r, a in zip(pos, refs, alts)]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def test_variant_streaming_memory_is_flat(gs, tmp_path):
    small, large = tmp_path / "10k.vcf.gz", tmp_path / "100k.vcf.gz"
    _write_vcf(small, 10_000, seed=1)
    _write_vcf(large, 100_000, seed=2)
    gs.variant_effect(pd.DataFrame({"chrom": ["chr2"], "pos": [5], "ref": ["N"],
                                    "alt": ["A"]}), progress=False)   # locate windows once
    peaks, results = [], []
    for path in (small, large):
        tracemalloc.start()
        results.append(gs.variant_effect(path, chunk_size=5_000, progress=False))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert "100,000 variants read" in results[1].attrs["report"]
    assert len(results[1]) > len(results[0]) > 0                    # hits scale with input
    assert peaks[1] <= 1.3 * peaks[0], peaks


def test_load_refuses_a_changed_expression_table(trained, tmp_path):
    src = knowledge_path("expression/hpa_gtex_tissue_nTPM_wide.tsv.gz")
    table = pd.read_csv(src, sep="\t")
    table.iloc[0, -1] = float(table.iloc[0, -1]) + 100.0
    changed = tmp_path / "expression.tsv.gz"
    table.to_csv(changed, sep="\t", index=False)
    with pytest.raises(GeneSpliceInputError, match="expression: checkpoint"):
        GeneSplice.load(trained["checkpoint"], graph=trained["graph"], expression=changed,
                        genes=trained["genes"], progress=False)


def test_subset_run_reloads_without_its_gene_list(trained):
    # the sequence checksum covers every promoter mapped to the graph, not just the ones a
    # quick run on a gene subset encoded, so its checkpoint reloads on the same inputs
    gs = GeneSplice.load(trained["checkpoint"], graph=trained["graph"], progress=False)
    pred = gs.predict(["TP53"], progress=False)
    assert pred.shape == (1, len(gs_tissues(trained)))
    assert np.isfinite(pred.to_numpy()).all()


def gs_tissues(trained):
    return list(trained["extra"]["tissues"])


def test_cli_predict_genes_and_explain(trained, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--genes", "TP53",
                 "MYC", "--out", str(out), "--graph", str(GRAPH_DIR), "--labelled-genes",
                 str(trained["genes_file"]), "--quiet"]) == 0
    df = pd.read_csv(out)
    assert list(df["gene_symbol"]) == ["TP53", "MYC"]
    assert list(df.columns[1:]) == gs_tissues(trained)
    assert main(["predict", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pt: checkpoint not found" in err
    assert main(["explain", "--checkpoint", str(trained["checkpoint"]), "--gene", "MYH4",
                 "--tissue", "skeletal muscle", "--out-dir", str(tmp_path), "--top", "3",
                 "--ism-window", "-5", "5", "--labelled-genes", str(trained["genes_file"]),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "MYH4 in skeletal muscle: predicted" in printed
    for name in ("MYH4_skeletal_muscle_neighbours.csv", "MYH4_skeletal_muscle_attributions.csv",
                 "MYH4_skeletal_muscle.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.slow
def test_cli_predict_all_genes_writes_the_training_table_layout(gs, trained, tmp_path):
    """Without --genes: every gene of the expression table, through the same writer as a
    training run's predictions.csv (first column gene_symbol, tissues as in the table)."""
    data = gs.data
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--out", str(out),
                 "--graph", str(GRAPH_DIR), "--labelled-genes", str(trained["genes_file"]),
                 "--quiet"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["gene_symbol", *data.tissues]
    expected = [data.display_symbols.get(g, g) for g, has in
                zip(data.gene_ids, data.observed.any(1).tolist()) if has]
    assert list(got["gene_symbol"]) == expected and len(expected) > 19_000
    sample = got.sample(50, random_state=0).set_index("gene_symbol")
    api = gs.predict(list(sample.index), progress=False)
    np.testing.assert_allclose(sample.to_numpy(), api.to_numpy(), atol=1e-5)  # %.5f in CSV
    splits = pd.read_csv(out.with_name("predictions.splits.csv"))
    assert len(splits) == len(got) and set(splits["split"]) <= {"train", "val", "test", "none"}


def test_from_files_object_matches_the_loaded_checkpoint(gs, trained):
    """The object from_files returns (after training) answers as the reloaded checkpoint."""
    fresh = trained["fresh"]
    assert Path(fresh.checkpoint) == trained["checkpoint"] and trained["checkpoint"].exists()
    a = fresh.predict(["ALB", "MYH4"], progress=False)
    assert a.attrs["views"] == {"ALB": "sequence+graph", "MYH4": "sequence+graph"}
    np.testing.assert_allclose(a.to_numpy(), gs.predict(["ALB", "MYH4"], progress=False).to_numpy(),
                               atol=1e-6)
