"""Constants and small helpers of the api tests."""
from __future__ import annotations

from genesplice.io.knowledge import knowledge_path
from genesplice.sequence.fasta import GenomeWindows

#: the bundled hg38 regions the variant tests place promoters on
HG38 = {"chr2": "sequence/hg38_chr2_1-2333275.fa.gz",
        "chr17": "sequence/GRCh38_chr17_9958130-12017414.fa.gz"}
TISSUES = ["liver", "skeletal muscle"]


def fasta(chrom: str) -> GenomeWindows:
    """The bundled FASTA holding ``chrom``'s region."""
    return GenomeWindows(knowledge_path(HG38[chrom]))
