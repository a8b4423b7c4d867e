"""genesplice.sequence: TSS tables, genome windows, tokens and datasets."""
from genesplice.sequence.cohort import CohortReport, LongSequenceCohort, build_cohort
from genesplice.sequence.dataset import (PromoterDataset, SequenceBatch, SequenceItem,
                                         TssWindowDataset, collate_sequences)
from genesplice.sequence.encode import (MASK_INDEX, PAD_INDEX, VOCAB_SIZE, decode_tokens,
                                        encode_sequence, pad_tokens, reverse_complement,
                                        reverse_complement_tokens)
from genesplice.sequence.fasta import (ContigSpan, CoverageReport, GenomeWindows, Window)
from genesplice.sequence.genome import Genome
from genesplice.sequence.promoters import first_promoter_per_gene, read_promoter_fasta
from genesplice.sequence.tss import read_tss, read_tss_bed, read_tss_gtf, read_tss_tsv
from genesplice.sequence.windows import WindowSet, extract_windows, promoter_windows

__all__ = [
    "CohortReport", "ContigSpan", "CoverageReport", "Genome", "GenomeWindows",
    "LongSequenceCohort", "MASK_INDEX", "PAD_INDEX", "PromoterDataset", "SequenceBatch",
    "SequenceItem", "TssWindowDataset", "VOCAB_SIZE", "Window", "WindowSet", "build_cohort",
    "collate_sequences", "decode_tokens", "encode_sequence", "extract_windows",
    "first_promoter_per_gene", "pad_tokens", "promoter_windows", "read_promoter_fasta",
    "read_tss", "read_tss_bed", "read_tss_gtf", "read_tss_tsv", "reverse_complement",
    "reverse_complement_tokens",
]
