"""genesplice.models"""
from genesplice.models.masked_lm import (MaskedLMLoss, MaskedNucleotideHead, MaskedTokens,
                                         mask_tokens, masked_lm_loss, unigram_entropy)
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig

__all__ = ["MaskedLMLoss", "MaskedNucleotideHead", "MaskedTokens", "SequenceEncoder",
           "SequenceEncoderConfig", "mask_tokens", "masked_lm_loss", "unigram_entropy"]
