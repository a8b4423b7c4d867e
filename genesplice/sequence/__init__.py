"""genesplice.sequence"""
