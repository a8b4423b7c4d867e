"""genesplice.io: the bottom layer — errors, atomic writes, opening text/gzip files, bundled
paths and constants, chromosome names. Imports nothing else of genesplice."""
