"""genesplice.training"""
