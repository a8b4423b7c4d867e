"""genesplice.studies: analyses built on the training stage (the long-sequence study)."""
