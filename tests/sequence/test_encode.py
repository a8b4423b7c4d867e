import pytest
import torch

from genesplice.sequence.encode import (MASK_INDEX, PAD_INDEX, decode_tokens, encode_sequence,
                                        pad_tokens, reverse_complement, reverse_complement_tokens)


def test_encode_maps_case_and_non_acgt_to_n():
    assert encode_sequence("ACGTNacgtnRY-").tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4, 4]
    assert encode_sequence("").shape == (0,)


def test_reverse_complement_on_tokens_and_strings():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("gattaca") == "TGTAATC"
    tok = torch.tensor([0, 1, 2, 3, 4, PAD_INDEX, MASK_INDEX])
    rc = reverse_complement_tokens(tok)
    assert rc.tolist() == [MASK_INDEX, PAD_INDEX, 4, 0, 1, 2, 3]
    assert torch.equal(reverse_complement_tokens(rc), tok)
    batch = torch.stack([tok, tok.flip(0)])
    assert torch.equal(reverse_complement_tokens(batch)[1], reverse_complement_tokens(tok.flip(0)))


def test_pad_tokens_right_pads_with_pad_index():
    a, b = encode_sequence("ACGTA"), encode_sequence("GG")
    tokens, mask = pad_tokens([a, b])
    assert tokens.shape == (2, 5)
    assert decode_tokens(tokens[1]) == "GG---"
    assert mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    edge = torch.tensor([False, True])
    _, mask = pad_tokens([b], [edge], length=4)
    assert mask.tolist() == [[False, True, False, False]]
    with pytest.raises(ValueError):
        pad_tokens([a], length=3)
