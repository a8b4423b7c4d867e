"""genesplice.models: tensors in, tensors out (no files).

sequence_encoder / masked_lm (promoter encoder and its pretraining head), graph_encoder
(GATv2 per edge type and the edge-set helpers), fusion (gate and heads), model (the fused
model and its inputs), inference (the two-state predictor, graph surgery), attribution
(gradients, ISM, attention), device (``cpu|cuda|mps|auto``).
"""
from genesplice.models.device import DEVICES, resolve_device
from genesplice.models.masked_lm import (MaskedLMLoss, MaskedNucleotideHead, MaskedTokens,
                                         mask_tokens, masked_lm_loss, unigram_entropy)
from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig

__all__ = ["DEVICES", "MaskedLMLoss", "MaskedNucleotideHead", "MaskedTokens", "SequenceEncoder",
           "SequenceEncoderConfig", "mask_tokens", "masked_lm_loss", "resolve_device",
           "unigram_entropy"]
