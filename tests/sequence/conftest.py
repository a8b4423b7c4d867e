"""Session-scoped fixtures over the real bundled sequence files (parsed once per run)."""
from __future__ import annotations

import pytest

from genesplice.annotations.expression import read_expression_table
from genesplice.io.knowledge import knowledge_path
from genesplice.sequence import (Genome, GenomeWindows, read_promoter_fasta, read_tss_bed,
                                 read_tss_tsv)

CHR20 = "sequence/GRCh37_chr20.fa.gz"
CHRX = "sequence/GRCh37_chrX_1-69999930.fa.gz"
CHR17_REGION = "sequence/GRCh38_chr17_9958130-12017414.fa.gz"
CHR2_HG38 = "sequence/hg38_chr2_1-2333275.fa.gz"
HG19_WINDOWS = "sequence/annotation/hg19_promoters_cage_corrected_withChr.bed.gz"
HG38_TSS = "coords/tss_hg38.tsv.gz"
EPDNEW = "coords/epdnew_hs_core_promoters_m49_p10.fa.gz"


@pytest.fixture(scope="session")
def chr20():
    genome = GenomeWindows(knowledge_path(CHR20))
    yield genome
    genome.close()


@pytest.fixture(scope="session")
def chrx():
    genome = GenomeWindows(knowledge_path(CHRX))
    yield genome
    genome.close()


@pytest.fixture(scope="session")
def hg19_tss():
    return read_tss_bed(knowledge_path(HG19_WINDOWS))


@pytest.fixture(scope="session")
def hg38_tss():
    return read_tss_tsv(knowledge_path(HG38_TSS))


@pytest.fixture(scope="session")
def epdnew():
    return read_promoter_fasta(knowledge_path(EPDNEW))


@pytest.fixture(scope="session")
def grch37():
    """The bundled GRCh37 chr20 + chrX (1-70 Mb) sequence as one :class:`Genome`."""
    with Genome.grch37() as genome:
        yield genome


@pytest.fixture(scope="session")
def expression():
    return read_expression_table()
