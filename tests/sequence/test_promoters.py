from genesplice.io.constants import EPDNEW_PROMOTERS
from genesplice.io.knowledge import knowledge_path
from genesplice.io.text import open_text
from genesplice.sequence import first_promoter_per_gene


def test_epdnew_core_promoters(epdnew):
    assert len(epdnew) == 29_598
    noc2l = epdnew.set_index("promoter_id").loc["NOC2L_1"]
    assert noc2l["gene_symbol"] == "NOC2L" and noc2l["ensembl_id"] == "ENSG00000188976"
    # lowercase upstream part uppercased
    assert noc2l["sequence"] == "GCGGAAGTGCGCAGCCGCGCGGCATTCTGGGGCCGGAAGTGGGGTGCACGCTTCGGGTTG"
    assert epdnew["ensembl_id"].isna().sum() == 2_564
    assert (epdnew["sequence"].str.len() == 60).sum() == 29_597   # IPMK_1 is 59 bp in the source
    assert set("".join(epdnew["sequence"].head(500))) <= set("ACGTN")


def test_tss_index_is_where_the_file_switches_to_uppercase(epdnew):
    """EPDnew writes −49..−1 in lowercase and the TSS onwards in uppercase: the reader's
    ``tss_index`` must be that switch point, read from the raw file, in every record."""
    with open_text(knowledge_path(EPDNEW_PROMOTERS)) as fh:
        raw = [line.strip() for line in fh if not line.startswith(">")]
    assert len(raw) == len(epdnew)
    switch = [len(s) - len(s.lstrip("acgtn")) for s in raw]
    assert epdnew["tss_index"].tolist() == switch


def test_one_promoter_per_gene(epdnew):
    first = first_promoter_per_gene(epdnew)
    assert len(first) == 16_455 and first["gene_symbol"].is_unique
    assert first.set_index("gene_symbol").loc["NOC2L", "promoter_id"] == "NOC2L_1"
