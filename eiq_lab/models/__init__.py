"""Model plugins: the interfaces, the base models, the registry (base, user and entry-point plugins), the wizard.

Importing this package loads no TensorFlow; models build on first use (`registry().get(name).get_model(...)`).
"""

from .interfaces import ImageClassificationInterface, ModelInterface, ObjectDetectionInterface
from .registry import ModelRegistry, PluginEntry, PluginProblem, registry
from .wizard import Recommendation, default_model, recommend, table

__all__ = [
    "ImageClassificationInterface",
    "ModelInterface",
    "ModelRegistry",
    "ObjectDetectionInterface",
    "PluginEntry",
    "PluginProblem",
    "Recommendation",
    "default_model",
    "recommend",
    "registry",
    "table",
]
