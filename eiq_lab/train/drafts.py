"""The project's draft training settings: what the model-selection, augmentation and training panels agree on
before a run starts (stored in the project, so a reopened Portal shows the same choices).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ProjectError
from .settings import TrainingSettings

DRAFT_KEY = "training.draft"


def load_draft(project: Any) -> TrainingSettings:
    """The project's draft settings (the guide's defaults when none were saved).

    Raises:
        ProjectError: the stored draft is not valid settings JSON (the message says how to reset it).
    """
    text = project.get_meta(DRAFT_KEY)
    if text is None:
        return TrainingSettings()
    try:
        return TrainingSettings.from_json(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ProjectError(
            f"{project.path}: the saved training settings cannot be read ({exc}); save new ones to replace them"
        ) from None


def save_draft(project: Any, settings: TrainingSettings | None = None, **changes: Any) -> TrainingSettings:
    """Store `settings` (default: the current draft) with `changes` applied, after checking them.

    Example:
        >>> save_draft(project, model="mobilenet_v2", alpha=0.35)   # doctest: +SKIP

    Returns:
        The settings stored.

    Raises:
        InputError: a setting is invalid (nothing is stored).
    """
    settings = (settings or load_draft(project)).replace(**changes) if changes else (settings or load_draft(project))
    settings.check()
    project.set_meta(DRAFT_KEY, json.dumps(settings.to_json()))
    return settings
