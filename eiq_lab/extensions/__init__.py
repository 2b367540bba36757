"""Extensions: third-party commands, menu items, buttons and panels at the guide's five locations, shown when
their `when` clause on the context keys holds, with a project API and project/global storage.
"""

from .framework import (
    ENTRY_POINT_GROUP,
    LOCATIONS,
    BrokenExtension,
    Command,
    ExtensionContext,
    Extensions,
    MenuItem,
    PanelContribution,
    context_keys,
)
from .storage import GlobalState, ProjectState, Storage
from .when import CONTEXT_KEYS, parse_when

__all__ = [
    "CONTEXT_KEYS",
    "ENTRY_POINT_GROUP",
    "LOCATIONS",
    "BrokenExtension",
    "Command",
    "ExtensionContext",
    "Extensions",
    "GlobalState",
    "MenuItem",
    "PanelContribution",
    "ProjectState",
    "Storage",
    "context_keys",
    "parse_when",
]
