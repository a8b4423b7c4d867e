"""The embedding cache and `genesplice embed`: reuse, invalidation by each key, incremental
extension, resuming after an interruption, skipped genes reported by reason, the CLI.

Most tests run on a tiny SYNTHETIC genome (random bases, written here with its .fai) and a tiny
TSS table; one test reads a few real chr20 genes of the bundled GRCh37 sequence."""
import contextlib
import json

import numpy as np
import pandas as pd
import pyfaidx
import pytest
import torch

from genesplice.cli import main
from genesplice.io.constants import TSS_BED_HG19
from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.models.device import resolve_device
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
from genesplice.sequence import Genome, GenomeWindows, read_tss, read_tss_bed
from genesplice.training.embed import WindowSpec, autocast_for, embed_windows
from genesplice.training.embedding_store import (INDEX_NAME, EmbeddingStore, StoreKeys,
                                                 encoder_checksum)
from genesplice.training.pretrain import pretrain_encoder

SPEC = WindowSpec(200, 200)
#: gene, chrom, tss, strand: FASTA records are chr1 (4,000 bp) and chr2 (3,000 bp)
TSS_ROWS = [("G1", "chr1", 500, "+"), ("G2", "chr1", 1500, "-"), ("G3", "chr1", 3900, "+"),
            ("G4", "2", 1000, "-"), ("G5", "chr2", 2500, "+"), ("G6", "chr1", 2500, "-"),
            ("GX", "chr7", 100, "+"), ("GOFF", "chr2", 5000, "+")]
EMBEDDABLE = ["G1", "G2", "G3", "G4", "G5", "G6"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_fasta(folder, name="synthetic.fa", lengths=(("chr1", 4000), ("chr2", 3000)), seed=0):
    """A synthetic genome (random bases) with its .fai, built by pyfaidx."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = folder / name
    with open(path, "w") as fh:
        for rec, n in lengths:
            seq = "".join(rng.choice(list("ACGT"), n))
            fh.write(f">{rec}\n" + "\n".join(seq[i:i + 60] for i in range(0, n, 60)) + "\n")
    pyfaidx.Faidx(str(path)).close()
    return path


def write_tss(path, rows=TSS_ROWS):
    pd.DataFrame(rows, columns=["gene_symbol", "chrom", "tss", "strand"]).to_csv(
        path, sep="\t", index=False)
    return path


def tiny_encoder(seed=0):
    cfg = SequenceEncoderConfig.small(d_model=16, d_global=32, n_heads=2, n_global_heads=2,
                                      n_pool_heads=2, window=8, stem_channels=(8, 16))
    torch.manual_seed(seed)
    return SequenceEncoder(cfg).eval()


class Counter:
    """Counts the genes each forward pass sees; optionally raises on call number ``fail_on``."""

    def __init__(self, encoder, fail_on=None):
        self.genes, self.fail_on = [], fail_on
        self.handle = encoder.register_forward_pre_hook(self)

    def __call__(self, module, inputs):
        if self.fail_on is not None and len(self.genes) + 1 == self.fail_on:
            raise KeyboardInterrupt("simulated kill")
        self.genes.append(inputs[0].shape[0])

    @property
    def n(self):
        return sum(self.genes)

    def remove(self):
        self.handle.remove()


@pytest.fixture
def data(tmp_path):
    fasta = write_fasta(tmp_path / "genome")
    tss = read_tss(write_tss(tmp_path / "tss.tsv"))
    with Genome([fasta]) as genome:
        yield genome, tss, tmp_path


def run(encoder, genome, tss, store, genes=None, spec=SPEC, **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("device", "cpu")
    return embed_windows(encoder, genome, tss, genes, spec, store, progress=False, **kw)


def test_window_spec_is_validated():
    assert WindowSpec(50_000, 50_000).length == 100_000
    assert WindowSpec(0, 1).key() != WindowSpec(1, 0).key()
    for up, down in [(-1, 10), (10, -1), (0, 0), (600_000, 600_000), (1.5, 2)]:
        with pytest.raises(GeneSpliceInputError):
            WindowSpec(up, down)


def test_first_call_computes_second_reuses_and_skips_are_reported(data):
    genome, tss, tmp = data
    enc = tiny_encoder()
    count = Counter(enc)
    emb, rep = run(enc, genome, tss, tmp / "store")
    assert count.n == 6 and rep["n_embedded"] == 6 and rep["n_reused"] == 0
    assert rep["status"] == "new" and rep["n_requested"] == 8
    # (e) genes the genome lacks are reported by reason, with NaN rows
    assert rep["skipped"]["chromosome_missing"] == ["GX"]
    assert rep["skipped"]["tss_off_sequence"] == ["GOFF"]
    assert rep["n_skipped"] == 2 and rep["n_partial_window"] == 1            # G3 runs off chr1
    assert rep["embedded_genes"] == EMBEDDABLE
    assert rep["has_embedding"].tolist() == [True] * 6 + [False] * 2
    assert emb.shape == (8, 16) and np.isfinite(emb[:6]).all() and np.isnan(emb[6:]).all()
    # the stored vector is the TSS-pooled embedding of the strand-oriented window
    win = GenomeWindows(genome.paths[0]).window("chr2", 1000, "-", 200, 200)       # G4, alias '2'
    with torch.no_grad():
        ref = enc(win.tokens[None], win.mask[None], torch.tensor([200]))[0].numpy()
    np.testing.assert_allclose(emb[3], ref, rtol=1e-5, atol=1e-6)
    # (a) same keys: nothing is computed again
    before = count.n
    emb2, rep2 = run(enc, genome, tss, tmp / "store")
    assert count.n == before and rep2["status"] == "reused"
    assert rep2["n_embedded"] == 0 and rep2["n_reused"] == 6
    np.testing.assert_array_equal(emb2, emb)
    index = json.loads((tmp / "store" / INDEX_NAME).read_text())
    assert index["n_done"] == 6 and index["genes"] == EMBEDDABLE
    assert set(index["keys"]) == {"encoder", "genome", "window"} and index["gene_list_sha256"]


@pytest.mark.parametrize("change", ["encoder", "window", "genome"])
def test_a_changed_key_recomputes(data, change):
    genome, tss, tmp = data
    enc = tiny_encoder()
    first, _ = run(enc, genome, tss, tmp / "store")
    spec = SPEC
    if change == "encoder":
        with torch.no_grad():
            next(enc.parameters()).add_(0.5)
    elif change == "window":
        spec = WindowSpec(300, 100)
    else:
        other = write_fasta(tmp / "other", lengths=(("chr1", 4000), ("chr2", 3001)), seed=1)
        genome = Genome([other])
    count = Counter(enc)
    emb, rep = run(enc, genome, tss, tmp / "store", spec=spec)
    assert rep["status"] == "recomputed" and rep["changed"] == [change]
    assert count.n == 6 and rep["n_embedded"] == 6 and rep["n_reused"] == 0
    assert not np.allclose(emb[:6], first[:6])
    assert len(list((tmp / "store").glob("embeddings-*.npy"))) == 1        # the old file is gone


def test_genome_key_ignores_folder_but_not_name(data):
    genome, tss, tmp = data
    enc = tiny_encoder()
    run(enc, genome, tss, tmp / "store")
    moved = write_fasta(tmp / "moved")                          # same bases, same name, elsewhere
    _, rep = run(enc, Genome([moved]), tss, tmp / "store")
    assert rep["status"] == "reused"
    renamed = write_fasta(tmp / "renamed", name="renamed.fa")
    _, rep = run(enc, Genome([renamed]), tss, tmp / "store")
    assert rep["status"] == "recomputed" and rep["changed"] == ["genome"]


def test_extra_genes_are_embedded_alone(data):
    genome, tss, tmp = data
    enc = tiny_encoder()
    run(enc, genome, tss, tmp / "store", genes=["G1", "G4"])
    count = Counter(enc)
    emb, rep = run(enc, genome, tss, tmp / "store", genes=["G4", "G5", "GX", "G1", "G2"])
    assert rep["status"] == "extended" and count.n == 2
    assert rep["n_embedded"] == 2 and rep["n_reused"] == 2 and rep["n_skipped"] == 1
    full, _ = run(tiny_encoder(), genome, tss, tmp / "fresh", genes=["G4", "G5", "GX", "G1", "G2"])
    np.testing.assert_allclose(emb, full, rtol=1e-5, atol=1e-6)
    # a subset of what is stored: reused, nothing computed, the store keeps every gene
    _, rep = run(enc, genome, tss, tmp / "store", genes=["G2"])
    assert rep["status"] == "reused" and count.n == 2 and rep["n_store_genes"] == 4


def test_a_moved_tss_is_reembedded(data, tmp_path):
    genome, tss, tmp = data
    enc = tiny_encoder()
    run(enc, genome, tss, tmp / "store")
    moved = tss.copy()
    moved.loc[moved["gene_id"] == "G5", "tss"] = 2400
    count = Counter(enc)
    emb, rep = run(enc, genome, moved, tmp / "store")
    assert rep["status"] == "reused" and rep["n_relocated"] == 1 and count.n == 1
    ref, _ = run(tiny_encoder(), genome, moved, tmp / "fresh")
    np.testing.assert_allclose(emb, ref, rtol=1e-5, atol=1e-6)


def test_an_interrupted_run_resumes_where_it_stopped(data):
    genome, tss, tmp = data
    enc = tiny_encoder()
    kill = Counter(enc, fail_on=2)
    with pytest.raises(KeyboardInterrupt):
        run(enc, genome, tss, tmp / "store")
    kill.remove()
    index = json.loads((tmp / "store" / INDEX_NAME).read_text())
    assert index["n_done"] == 2                          # the first batch was committed
    count = Counter(enc)
    emb, rep = run(enc, genome, tss, tmp / "store")
    assert count.n == 4 and rep["n_embedded"] == 4 and rep["n_reused"] == 2
    whole, _ = run(tiny_encoder(), genome, tss, tmp / "whole")
    np.testing.assert_allclose(emb, whole, rtol=1e-5, atol=1e-6)


def test_rows_are_on_disk_before_the_next_batch(data):
    """With commit_seconds=0 each batch is flushed and marked done before the next one runs,
    so even a kill that skips Python's clean-up (SIGKILL) loses at most one batch."""
    genome, tss, tmp = data
    enc = tiny_encoder()
    seen = []
    enc.register_forward_pre_hook(lambda m, i: seen.append(json.loads(
        (tmp / "store" / INDEX_NAME).read_text())["n_done"]))
    run(enc, genome, tss, tmp / "store", commit_seconds=0.0)
    assert seen == [0, 2, 4]


def test_store_survives_orphans_and_a_corrupt_index(tmp_path):
    keys = StoreKeys("e", "g", "w")
    store = EmbeddingStore.open(tmp_path, keys, ["a", "b"], dim=3)
    store.write(["b"], np.ones((1, 3)))
    assert store.is_done(["a", "b"]).tolist() == [False, False]             # not yet committed
    store.close()
    np.testing.assert_array_equal(EmbeddingStore.open(tmp_path, keys, ["a"], dim=3)
                                  .read(["a", "b"]), [[np.nan] * 3, [1.0] * 3])
    (tmp_path / "embeddings-0099.npy").write_bytes(b"left by a kill mid-relayout")
    store = EmbeddingStore.open(tmp_path, keys, ["b"], dim=3)
    assert store.status == "reused" and not (tmp_path / "embeddings-0099.npy").exists()
    (tmp_path / INDEX_NAME).write_text("{ not json")
    store = EmbeddingStore.open(tmp_path, keys, ["b"], dim=3)
    assert store.status == "recomputed" and "unreadable" in store.changed[0]
    assert store.missing(["b"]) == ["b"]
    assert EmbeddingStore.open(tmp_path, keys, ["b"], dim=4).changed == ["dim 3 -> 4"]
    with pytest.raises(GeneSpliceInputError, match="repeat"):
        EmbeddingStore.open(tmp_path, keys, ["b", "b"], dim=4)


def test_device_selection_and_encoder_state_restored(data):
    genome, tss, tmp = data
    enc = tiny_encoder().train()
    assert isinstance(autocast_for(torch.device("cpu")), contextlib.nullcontext)
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        cuda = autocast_for(torch.device("cuda"))
    assert cuda.device == "cuda" and cuda.fast_dtype == torch.bfloat16
    _, rep = run(enc, genome, tss, tmp / "store", device="auto")
    assert rep["device"] == str(resolve_device("auto"))
    assert rep["precision"] == ("bf16 autocast" if rep["device"].startswith("cuda") else "float32")
    assert enc.training and next(enc.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(GeneSpliceInputError, match="CUDA is not available"):
            run(enc, genome, tss, tmp / "store", device="cuda")
    with pytest.raises(GeneSpliceInputError, match="more than once"):
        run(enc, genome, tss, tmp / "store", genes=["G1", "G1"])


def test_encoder_checksum_covers_weights_and_config():
    a, b = tiny_encoder(0), tiny_encoder(0)
    assert encoder_checksum(a) == encoder_checksum(b) != encoder_checksum(tiny_encoder(1))
    assert encoder_checksum(a.state_dict()) == encoder_checksum(b.state_dict())
    # more heads: the same tensor shapes, another output -> another key
    heads = SequenceEncoder(SequenceEncoderConfig(**{**a.config.__dict__, "n_heads": 4}))
    heads.load_state_dict(a.state_dict())
    assert encoder_checksum(heads.state_dict()) == encoder_checksum(a.state_dict())
    assert encoder_checksum(heads) != encoder_checksum(a)


def test_real_chr20_genes(tmp_path):
    """A few real chr20 genes (both strands) at ±2 kb; a chr1 gene and a chrX gene beyond the
    bundled 70 Mb are reported, not embedded."""
    tss = read_tss_bed(knowledge_path(TSS_BED_HG19))
    chr20 = tss[tss["chrom"] == "chr20"]
    picks = list(chr20[chr20["strand"] == "+"]["gene_id"].head(3)) + \
        list(chr20[chr20["strand"] == "-"]["gene_id"].head(3))
    far_x = tss[(tss["chrom"] == "chrX") & (tss["tss"] > 80_000_000)]["gene_id"].iloc[0]
    chr1 = tss[tss["chrom"] == "chr1"]["gene_id"].iloc[0]
    genes = picks + [chr1, far_x]
    enc = tiny_encoder()
    spec = WindowSpec(2_000, 2_000)
    with Genome.grch37() as genome:
        emb, rep = embed_windows(enc, genome, tss, genes, spec, tmp_path / "store",
                                 batch_size=4, device="cpu", progress=False)
        assert rep["n_embedded"] == 6 and rep["embedded_genes"] == picks
        assert rep["skipped"]["chromosome_missing"] == [chr1]
        assert rep["skipped"]["tss_off_sequence"] == [far_x]
        row = tss.set_index("gene_id").loc[picks[-1]]
        win = genome[0].window(row["chrom"], int(row["tss"]), row["strand"], 2_000, 2_000)
        with torch.no_grad():
            ref = enc(win.tokens[None], win.mask[None], torch.tensor([2_000]))[0].numpy()
        np.testing.assert_allclose(emb[5], ref, rtol=1e-5, atol=1e-5)
        count = Counter(enc)
        again, rep = embed_windows(enc, genome, tss, genes, spec, tmp_path / "store",
                                   device="cpu", progress=False)
    assert count.n == 0 and rep["status"] == "reused"
    np.testing.assert_array_equal(again, emb)


def test_cli_embed(tmp_path, capsys):
    fasta = write_fasta(tmp_path / "genome")
    tss = write_tss(tmp_path / "tss.tsv")
    args = ["embed", "--genome", str(fasta), "--tss", str(tss), "--upstream", "200",
            "--downstream", "200", "--batch-size", "2", "--threads", "1", "--device", "cpu",
            "--out", str(tmp_path / "store"), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "random long_study preset, seed 0" in out
    assert "8 asked; 6 embedded now, 0 reused from the store, 2 skipped" in out
    assert "chromosome not in the genome (e.g. GX)" in out and str(tmp_path / "store") in out
    assert main(args) == 0
    assert "0 embedded now, 6 reused" in capsys.readouterr().out
    # a `genesplice pretrain` checkpoint: another encoder, so the store is recomputed
    ck = tmp_path / "encoder.pt"
    tokens = torch.randint(0, 4, (4, 256))
    pretrain_encoder(tiny_encoder().config, (tokens, torch.ones_like(tokens, dtype=torch.bool)),
                     steps=1, warmup=0, batch_size=2, checkpoint_path=ck)
    assert main(args + ["--encoder", str(ck), "--genes", "G1", "G2", "nope"]) == 0
    out = capsys.readouterr().out
    assert f"pretrained, {ck}" in out and "recomputed (changed: encoder, dim 64 -> 16)" in out
    assert "2 embedded now" in out and "not in the TSS table (e.g. nope)" in out
    missing = tmp_path / "nowhere.fa"
    assert main(["embed", "--genome", str(missing), "--tss", str(tss),
                 "--out", str(tmp_path / "s2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "not found" in err
    assert main(["embed", "--genome", str(fasta), "--tss", str(tmp_path / "no.tsv"),
                 "--out", str(tmp_path / "s2")]) == 2
    assert "TSS table not found" in capsys.readouterr().err
    assert not (tmp_path / "s2").exists()
