"""genesplice.io: the bottom layer — errors, atomic writes, opening text/gzip files, validated
tab-separated tables (:mod:`~genesplice.io.tables`), bundled paths and constants, chromosome
names, pausing the garbage collector. Imports nothing else of genesplice."""
