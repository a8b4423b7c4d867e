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
    assert (epdnew["tss_index"] == 49).all()


def test_one_promoter_per_gene(epdnew):
    first = first_promoter_per_gene(epdnew)
    assert len(first) == 16_455 and first["gene_symbol"].is_unique
    assert first.set_index("gene_symbol").loc["NOC2L", "promoter_id"] == "NOC2L_1"
