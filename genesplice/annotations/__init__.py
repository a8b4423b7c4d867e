"""genesplice.annotations"""
