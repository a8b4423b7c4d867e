"""``python -m genesplice …`` — the same as the ``genesplice`` command; also what
``torchrun --standalone --nproc_per_node N -m genesplice train …`` starts on every rank."""
import sys

from genesplice.cli import main

if __name__ == "__main__":
    sys.exit(main())
