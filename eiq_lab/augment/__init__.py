"""Augmentation: the guide's nine operators, pipelines of them (presets and stored), and previews.

Importing this package loads neither TensorFlow nor OpenCV; applying a pipeline loads OpenCV (and only
`Pipeline.apply_tf`, for `tf.data` maps, loads TensorFlow).
"""

from .catalog import (
    PRESETS,
    add_step,
    create_pipeline,
    delete_pipeline,
    get_pipeline,
    is_preset,
    move_step,
    pipeline_names,
    remove_step,
    rename_pipeline,
    update_step,
)
from .operators import Operator, operator, operators, register_operator
from .parameters import Parameter
from .pipeline import DEFAULT_PROBABILITY, MIN_BOX_VISIBILITY, Pipeline, Step
from .preview import PreviewSample, load_image, preview, preview_project

__all__ = [
    "DEFAULT_PROBABILITY",
    "MIN_BOX_VISIBILITY",
    "PRESETS",
    "Operator",
    "Parameter",
    "Pipeline",
    "PreviewSample",
    "Step",
    "add_step",
    "create_pipeline",
    "delete_pipeline",
    "get_pipeline",
    "is_preset",
    "load_image",
    "move_step",
    "operator",
    "operators",
    "pipeline_names",
    "preview",
    "preview_project",
    "register_operator",
    "remove_step",
    "rename_pipeline",
    "update_step",
]
