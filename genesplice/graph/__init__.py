"""genesplice.graph"""
