"""eiq-lab: a Jupyter-native toolkit for embedded machine learning (projects, training, conversion).

Importing the package does no I/O and loads no TensorFlow; stages load on first use.
"""

__version__ = "0.1.0"

from .errors import EiqError

__all__ = ["EiqError", "__version__"]
