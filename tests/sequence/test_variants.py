"""genesplice.sequence.variants.substitute on SYNTHETIC windows: where an allele lands in a
strand-oriented window (plus: genomic order; minus: reverse complement)."""
import pandas as pd
import torch

from genesplice.sequence.encode import decode_tokens, encode_sequence
from genesplice.sequence.variants import substitute

WINDOWS = pd.DataFrame({"gene_id": ["P", "M"], "chrom": ["1", "1"], "start0": [100, 100],
                        "end0": [110, 110], "strand": ["+", "-"], "tss0": [105, 104]})
GENOMIC = "ACGTACGTAC"            # genomic [100, 110)


def _windows():
    plus = encode_sequence(GENOMIC)
    minus = encode_sequence(GENOMIC[::-1].translate(str.maketrans("ACGT", "TGCA")))
    return torch.stack([plus, minus])


def test_snv_lands_at_its_base_on_either_strand():
    pairs = pd.DataFrame({"gene_id": ["P", "M"], "alt": ["T", "T"], "start0": [102, 102],
                          "end0": [103, 103]})                       # genomic G at 102
    alt = substitute(pairs, WINDOWS, _windows())
    assert decode_tokens(alt[0]) == "ACTTACGTAC"
    # minus window index = end0 - 1 - p = 7; the allele is complemented (T -> A)
    ref_minus = decode_tokens(_windows()[1])
    assert decode_tokens(alt[1]) == ref_minus[:7] + "A" + ref_minus[8:]


def test_mnp_clipped_at_the_window_and_misses_keep_the_reference():
    pairs = pd.DataFrame({"gene_id": ["P", "M", "P"], "alt": ["GG", "GA", "C"],
                          "start0": [109, 99, 50], "end0": [111, 101, 51]})
    alt = substitute(pairs, WINDOWS, torch.cat([_windows(), _windows()[:1]]))
    assert decode_tokens(alt[0]) == GENOMIC[:9] + "G"               # only base 109 inside
    ref_minus = decode_tokens(_windows()[1])
    # genomic 100 (allele base 'A' → complement 'T') sits at minus index 9
    assert decode_tokens(alt[1]) == ref_minus[:9] + "T"
    assert decode_tokens(alt[2]) == GENOMIC                          # outside: unchanged
