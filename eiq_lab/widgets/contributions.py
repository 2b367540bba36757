"""Extension contributions in a panel: the buttons third-party extensions add at one of the guide's five
locations, shown while their `when` clause holds; a click runs the command and shows what it returns.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as w

from ..errors import EiqError
from .base import describe_error

log = logging.getLogger("eiq_lab.widgets")


def contributions(project: Any, location: str, extensions: Any = None) -> Contributions:
    """The extension buttons of `location` for a panel on `project`: from the Portal's shared `extensions`, else
    the installed extensions loaded for this panel."""
    if extensions is None:
        from ..extensions import Extensions

        extensions = Extensions.load(project)
    return Contributions(extensions, location)


class Contributions(w.VBox):
    """The extension buttons of one location (e.g. ``"deploy/export-settings"``); `refresh()` re-checks the
    `when` clauses (call it after anything that changes the context keys, such as an export).

    Args:
        extensions: the loaded `Extensions` (their project is the open one).
        location: one of `eiq_lab.extensions.LOCATIONS`.
    """

    def __init__(self, extensions: Any, location: str):
        self.extensions, self.location = extensions, location
        self.buttons = w.HBox()
        self.message = w.HTML()
        self.output = w.VBox()
        super().__init__([self.buttons, self.message, self.output])
        self.add_class("eiq-contributions")
        self.add_class("eiq-contributions-" + location.replace("/", "-"))
        self.refresh()

    def refresh(self) -> None:
        """Show the buttons whose `when` clause holds now."""
        commands = self.extensions.items(self.location)
        buttons = []
        for command in commands:
            button = w.Button(description=command.title, tooltip=f"{command.title} ({command.extension})")
            button.add_class("eiq-contribution")
            button.on_click(lambda _, command_id=command.id: self.execute(command_id))
            buttons.append(button)
        self.buttons.children = buttons
        self.layout.display = "flex" if buttons else "none"

    def execute(self, command_id: str) -> Any:
        """Run a command; a widget it returns shows below the buttons, text shows as a message."""
        try:
            result = self.extensions.execute(command_id)
        except Exception as exc:  # a third party's failure is shown, never raised into the page
            if not isinstance(exc, EiqError):
                log.exception("extension command %s failed", command_id)
            text = html.escape(describe_error(exc))
            self.message.value = f"<span class='eiq-error' style='color:#b3261e'>{text}</span>"
            return None
        if isinstance(result, w.Widget):
            self.output.children = [result]
            self.message.value = ""
        elif result is not None:
            self.message.value = f"<span class='eiq-contribution-message'>{html.escape(str(result))}</span>"
        return result
