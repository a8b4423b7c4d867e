"""genesplice.models"""
