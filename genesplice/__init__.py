"""GeneSplice: gene expression from DNA sequence and biological knowledge graphs."""
from importlib.metadata import PackageNotFoundError, version

from genesplice.io.errors import GeneSpliceInputError

try:
    __version__ = version("genesplice")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["GeneSpliceInputError", "__version__"]
