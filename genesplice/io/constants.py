"""Bundled default files (paths relative to ``knowledge/``, see :mod:`genesplice.io.knowledge`)
and the constants several stages share. Every reader takes its own path; these are defaults.
"""
from __future__ import annotations

# --- annotations
GO_OBO = "annotations/go.obo.gz"
GO_GAF = "annotations/goa_human.gaf.gz"
GENE_ID_TABLE = "annotations/gene_ids_human_orgHs_2022.tsv.gz"
UNIPROT_TO_SYMBOL = "annotations/uniprot_to_symbol.tsv.gz"
REACTOME_MAPPING = "annotations/reactome_uniprot2reactome_human.tsv.gz"
REACTOME_RELATION = "annotations/reactome_pathways_relation_human.tsv.gz"
REACTOME_NAMES = "annotations/reactome_pathways_human.tsv.gz"
REACTOME_GMT = "annotations/ReactomePathways_2021-02.gmt.gz"
TRRUST = "annotations/trrust_human.tsv.gz"
DOROTHEA = "annotations/dorothea_human.tsv.gz"
EXPRESSION = "expression/hpa_gtex_tissue_nTPM_wide.tsv.gz"

# --- coordinates and sequence
#: EPDnew human core promoters, −49..+10 around the TSS (60 bp, hg38, gene strand)
EPDNEW_PROMOTERS = "coords/epdnew_hs_core_promoters_m49_p10.fa.gz"
#: EPDnew core promoters run from −49 to +10: the TSS is base 49 of the 60
PROMOTER_TSS_INDEX = 49
PROMOTER_LENGTH = 60
#: gene symbol → chromosome / TSS (hg38)
TSS_HG38 = "coords/tss_hg38.tsv.gz"
#: GENCODE V24 canonical transcripts (hg38): symbol, chrom, TSS, strand, span, exon count
GENCODE_CANONICAL = "coords/spliceai_gencode_v24_canonical_tss_hg38.tsv.gz"
#: CAGE-corrected TSS windows (hg19), the long-sequence study's gene coordinates
TSS_BED_HG19 = "sequence/annotation/hg19_promoters_cage_corrected_withChr.bed.gz"
#: the bundled GRCh37 sequence (long-sequence study, window pretraining)
GRCH37_FASTAS = ("sequence/GRCh37_chr20.fa.gz", "sequence/GRCh37_chrX_1-69999930.fa.gz")
#: the bundled hg38 regions (variant effects in EPDnew promoters)
HG38_REGIONS = ("sequence/hg38_chr2_1-2333275.fa.gz",
                "sequence/GRCh38_chr17_9958130-12017414.fa.gz")

# --- units
#: expression units (``data.unit``) and how they are written in reports and tables
UNIT_LABELS = {"log10_ntpm1": "log10(nTPM + 1)", "log1p_ntpm": "ln(nTPM + 1)", "ntpm": "nTPM"}


def unit_label(unit: str) -> str:
    """``log10_ntpm1`` → ``log10(nTPM + 1)``; an unknown unit is returned as it is."""
    return UNIT_LABELS.get(unit, unit)
