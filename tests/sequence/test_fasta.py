"""Windows from the real bundled genome files."""
import os
import shutil

import pyfaidx
import pytest
import torch

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.knowledge import knowledge_path
from genesplice.io.chromosomes import alias_key
from genesplice.sequence import (GenomeWindows, decode_tokens, read_tss_bed,
                                 reverse_complement, reverse_complement_tokens)

from .conftest import CHR2_HG38, CHR17_REGION, CHR20, HG19_WINDOWS

CHR20_LENGTH = 63_025_520


def test_alias_key_aliases():
    assert alias_key("chr20") == alias_key("20") == alias_key("CHR20") == "20"
    assert alias_key("chrX") == alias_key("x") == "X"
    assert alias_key("chrM") == alias_key("MT") == "MT"


def test_spans_and_region_offsets(chr20):
    assert [(s.name, s.chrom, s.start0, s.end0) for s in chr20.spans] == [("20", "20", 0, CHR20_LENGTH)]
    region = GenomeWindows(knowledge_path(CHR17_REGION))
    assert [(s.chrom, s.start0, s.end0) for s in region.spans] == [("17", 9_958_129, 12_017_414)]
    assert region.has_chrom("chr17") and region.covers("chr17", 9_958_129)
    assert not region.covers("chr17", 9_958_128)
    # genome coordinates are shifted onto the record: its first base is genome base 9,958,129
    raw = pyfaidx.Fasta(str(knowledge_path(CHR17_REGION)), rebuild=False, build_index=False)
    first = str(raw["chr17:9958130-12017414"][0:30]).upper()
    assert decode_tokens(region.fetch("chr17", 9_958_129, 9_958_159)[0]) == first
    raw.close()


def test_plus_window_matches_fasta_slice(chr20, hg19_tss):
    row = hg19_tss.set_index("gene_id").loc["ENSG00000101290"]  # a chr20 + strand gene
    assert row["strand"] == "+"
    w = chr20.window("chr20", int(row["tss"]), "+", 1000, 500)
    raw = pyfaidx.Fasta(str(knowledge_path(CHR20)), rebuild=False, build_index=False)
    expected = str(raw["20"][int(row["tss"]) - 1000:int(row["tss"]) + 500]).upper()
    raw.close()
    assert decode_tokens(w.tokens) == expected
    assert w.mask.all() and w.tss_index == 1000 and len(w.tokens) == 1500


def test_minus_window_is_reverse_complement_of_forward_slice(chr20, hg19_tss):
    tss = int(hg19_tss.set_index("gene_id").loc["ENSG00000000419", "tss"])  # DPM1, minus strand
    w = chr20.gene_window(hg19_tss, "ENSG00000000419", 10_000, 10_000)
    assert (w.start0, w.end0, w.strand) == (tss - 9_999, tss + 10_001, "-")
    fwd, fwd_mask = chr20.fetch("20", w.start0, w.end0, "+")
    assert torch.equal(w.tokens, reverse_complement_tokens(fwd))
    assert torch.equal(w.mask, fwd_mask.flip(0))
    # the TSS base sits at index `upstream`: complement of the forward-strand base at tss
    assert decode_tokens(w.tokens[10_000:10_001]) == reverse_complement(decode_tokens(fwd[tss - w.start0:tss - w.start0 + 1]))
    # regression: the 20 bases around DPM1's CAGE TSS on its own strand (GRCh37)
    assert decode_tokens(w.tokens[9_990:10_010]) == "CATCTGGCTCAGTTCCGCCA"


def test_epdnew_promoters_found_on_the_gene_strand(hg38_tss, epdnew):
    """Independent strand check: EPDnew hg38 core promoters (−49..+10, gene strand) occur in
    our strand-aware windows around GENCODE TSSs, and never as their reverse complement."""
    tss = hg38_tss.set_index("gene_id")
    first = epdnew[epdnew["promoter_id"].str.endswith("_1")].set_index("gene_symbol")
    found = {}
    for rel in (CHR17_REGION, CHR2_HG38):   # region file (offset) and soft-masked UCSC file
        genome = GenomeWindows(knowledge_path(rel))
        for gene in genome.coverage(hg38_tss).covered_gene_ids:
            if gene not in first.index:
                continue
            row = tss.loc[gene]
            text = decode_tokens(genome.window(row["chrom"], int(row["tss"]), row["strand"], 1000, 1000).tokens)
            promoter = first.loc[gene, "sequence"]
            assert reverse_complement(promoter) not in text
            if promoter in text:
                found[(gene, row["strand"])] = text.find(promoter) + 49 - 1000
    minus = [g for g, s in found if s == "-"]
    plus = [g for g, s in found if s == "+"]
    assert len(minus) >= 8 and len(plus) >= 3
    assert found[("MYH4", "-")] == 0          # EPDnew and GENCODE agree on MYH4's TSS
    assert found[("ADPRM", "+")] == 49
    assert found[("ACP1", "+")] == 78         # chr2 hg38, soft-masked input uppercased


def test_edge_padding_beyond_contig_ends(chr20):
    w = chr20.window("20", 100, "+", 1000, 1000)
    assert w.mask.tolist() == [False] * 900 + [True] * 1100
    assert decode_tokens(w.tokens[:900]) == "N" * 900
    # chr20 starts with 60,000 real N: they are sequence (mask True) but N
    assert decode_tokens(w.tokens[900:]) == "N" * 1100
    end = chr20.window("chr20", CHR20_LENGTH - 10, "+", 50, 100)
    assert end.mask.sum() == 60 and not end.mask[60:].any()
    # on the minus strand the missing bases beyond the contig end land at the window start
    minus = chr20.window("chr20", CHR20_LENGTH - 10, "-", 100, 50)
    # genomic [tss - 49, tss + 101): 59 real bases, 91 beyond the end
    assert minus.mask.tolist() == [False] * 91 + [True] * 59


def test_chrx_truncated_file_pads_beyond_70mb(chrx):
    w = chrx.window("chrX", 69_999_930 - 5, "+", 10, 10)
    assert w.mask.tolist() == [True] * 15 + [False] * 5
    assert set(decode_tokens(w.tokens[:15])) <= set("ACGTN")


def test_coverage_reports_genes_the_fasta_lacks(chr20, chrx, hg19_tss, caplog):
    rep = chr20.coverage(hg19_tss, 10_000, 10_000)
    assert (rep.n_genes, rep.n_covered, rep.n_full_window) == (18_362, 517, 517)
    assert rep.n_missing_contig == 18_362 - 517 and rep.n_outside_sequence == 0
    assert "chr1" in rep.missing_chroms and "chr20" not in rep.missing_chroms
    assert len(rep.missing_examples) == 5
    assert "lie on chromosomes it lacks" in caplog.text
    repx = chrx.coverage(hg19_tss, 10_000, 10_000)
    assert (repx.n_covered, repx.n_full_window) == (330, 330)
    assert repx.n_outside_sequence == 734 - 330      # chrX genes beyond 70 Mb


def test_asking_for_a_gene_the_fasta_lacks_is_an_error(chr20, chrx, hg19_tss):
    with pytest.raises(GeneSpliceInputError, match="ENSG00000000457.*chr1.*does not contain"):
        chr20.gene_window(hg19_tss, "ENSG00000000457", 100, 100)
    with pytest.raises(GeneSpliceInputError, match="ENSG00000000003.*outside the sequence"):
        chrx.gene_window(hg19_tss, "ENSG00000000003", 100, 100)
    with pytest.raises(GeneSpliceInputError, match="not in the TSS table"):
        chr20.gene_window(hg19_tss, "NOT_A_GENE", 100, 100)


def test_user_aliases(tmp_path):
    genome = GenomeWindows(knowledge_path(CHR20), aliases={"NC_000020.10": "20"})
    assert torch.equal(genome.fetch("NC_000020.10", 1_000_000, 1_000_050)[0],
                       genome.fetch("chr20", 1_000_000, 1_000_050)[0])
    with pytest.raises(GeneSpliceInputError, match="not a record"):
        GenomeWindows(knowledge_path(CHR20), aliases={"x": "chr99"})


def test_never_writes_index_files(tmp_path):
    src = knowledge_path(CHR2_HG38)
    before = {p: os.stat(p).st_mtime_ns for p in src.parent.iterdir()}
    genome = GenomeWindows(src)
    genome.fetch("2", 100_000, 101_000)
    genome.close()
    assert {p: os.stat(p).st_mtime_ns for p in src.parent.iterdir()} == before
    # a bgzip FASTA without its .gzi is refused instead of pyfaidx writing one
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(str(src) + ".fai", tmp_path / (src.name + ".fai"))
    with pytest.raises(GeneSpliceInputError, match=r"\.gzi not found"):
        GenomeWindows(tmp_path / src.name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name, src.name + ".fai"]
    with pytest.raises(GeneSpliceInputError, match="FASTA file not found"):
        GenomeWindows(tmp_path / "absent.fa")


def test_pickles_for_dataloader_workers(chr20):
    import pickle
    clone = pickle.loads(pickle.dumps(chr20))
    assert torch.equal(clone.fetch("20", 5_000_000, 5_000_100)[0], chr20.fetch("20", 5_000_000, 5_000_100)[0])
    clone.close()


def test_bed_reader_and_fasta_agree_on_all_chr20_windows(chr20):
    """CpG islands sit at TSSs: CpG density at TSS±500 bp is several times that 8–10 kb away."""
    tss = read_tss_bed(knowledge_path(HG19_WINDOWS))
    tss = tss[tss["chrom"] == "chr20"].head(200)
    near = far = 0
    for row in tss.itertuples():
        text = decode_tokens(chr20.window(row.chrom, row.tss, row.strand, 10_000, 10_000).tokens)
        near += text[9_500:10_500].count("CG")
        far += text[:2_000].count("CG") + text[-2_000:].count("CG")
    assert near / 1_000 > 3 * far / 4_000
