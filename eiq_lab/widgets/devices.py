"""The Remote devices panel (the guide's REMOTE DEVICES window): the saved ModelRunner targets, adding one
(name, URI, profile flag), removing one, and testing the connection (the runner's answer, or why it failed).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import InputError
from ..runner.targets import add_target, list_targets, probe_target, remove_target, targets_path
from .base import Panel


def targets_table(targets: list[Any]) -> str:
    """The targets as an HTML table (name, URI, profiling)."""
    if not targets:
        return "<i class='eiq-devices-empty'>No remote devices yet: add one below (a board running eiq-runner).</i>"
    rows = "".join(
        f"<tr class='eiq-devices-row'><td>{html.escape(t.name)}</td><td><code>{html.escape(t.uri)}</code></td>"
        f"<td style='text-align:center'>{'yes' if t.profile else ''}</td></tr>"
        for t in targets
    )
    return (
        "<table class='eiq-devices-table' style='border-collapse:collapse'>"
        "<tr><th style='text-align:left;padding-right:16px'>name</th><th style='text-align:left;padding-right:16px'>"
        f"URI</th><th>profiling</th></tr>{rows}</table>"
    )


def probe_html(result: dict[str, Any]) -> str:
    """What a connection test found: the runner's engine, version and model, or the reason it failed."""
    name = html.escape(result["name"])
    if not result["reachable"]:
        reason = html.escape(str(result["reason"]))
        return f"<div class='eiq-devices-unreachable'><b>{name}</b> is not reachable: {reason}</div>"
    model = html.escape(str(result.get("model") or "no model loaded"))
    labels = result.get("labels") or []
    shown = ", ".join(html.escape(str(x)) for x in labels[:10]) + (" ..." if len(labels) > 10 else "")
    return (
        f"<div class='eiq-devices-reachable'><b>{name}</b> answers: engine <b>{html.escape(str(result['engine']))}</b>"
        f" {html.escape(str(result.get('version') or ''))}, model <b>{model}</b>"
        + (f", labels: {shown}" if labels else "")
        + "</div>"
    )


class RemoteDevices(Panel):
    """The remote devices list: add (name, URI, profile flag), remove, test the connection.

    The list is the one `eiq targets` edits (``$EIQ_HOME/targets.json``); the Validation panel and
    `eiq evaluate --target` use its names.

    Callbacks:
        on_changed(): a device was added or removed (the Portal refreshes Validation's target list).

    Example:
        >>> RemoteDevices()          # doctest: +SKIP
    """

    title = "Remote devices"

    def __init__(self, *, timeout: float = 5.0):
        self.timeout = timeout
        self.on_changed: Callable[[], Any] | None = None
        self.table = w.HTML("")
        self.table.add_class("eiq-devices-list")
        self.choice = w.Dropdown(options=[], description="Device")
        self.choice.add_class("eiq-devices-choice")
        self.test_button = self._button("Test connection", "eiq-devices-test", self._test, "plug")
        self.remove_button = self._button("Remove", "eiq-devices-remove", self._remove, "trash")
        self.name = w.Text(description="Name", placeholder="imx93", layout=w.Layout(width="240px"))
        self.name.add_class("eiq-devices-name")
        self.uri = w.Text(description="URI", placeholder="192.168.1.20:10818", layout=w.Layout(width="360px"))
        self.uri.add_class("eiq-devices-uri")
        self.profile = w.Checkbox(description="use for profiling", indent=False, layout=w.Layout(width="auto"))
        self.profile.add_class("eiq-devices-profile")
        self.replace = w.Checkbox(description="replace a device of that name", indent=False)
        self.replace.layout.width = "auto"
        self.add_button = self._button("Add device", "eiq-devices-add", self._add, "plus", "primary")
        self.result = w.HTML("")
        self.result.add_class("eiq-devices-result")
        super().__init__(
            [
                w.HTML(
                    "Boards (or hosts) running <code>eiq-runner</code>, used to validate and profile models. "
                    f"Kept in <code>{html.escape(str(targets_path()))}</code>."
                ),
                self.table,
                w.HBox([self.choice, self.test_button, self.remove_button]),
                self.result,
                w.HTML("<b>Add a device</b>"),
                w.HBox([self.name, self.uri, self.profile, self.replace, self.add_button]),
            ]
        )
        self.add_class("eiq-devices")
        self.guarded(self.refresh)()

    def _button(self, text: str, css: str, action: Any, icon: str, style: str = "") -> w.Button:
        button = w.Button(description=text, icon=icon, button_style=style, layout=w.Layout(width="auto"))
        button.add_class(css)
        button.on_click(self.guarded(lambda _: action()))
        return button

    def refresh(self) -> None:
        """Show the saved targets again (after an edit here or by `eiq targets`)."""
        targets = list_targets()
        self.table.value = targets_table(targets)
        current = self.choice.value
        self.choice.options = [t.name for t in targets]
        if current in self.choice.options:
            self.choice.value = current

    def _add(self) -> None:
        name, uri = self.name.value.strip(), self.uri.value.strip()
        if not uri:
            raise InputError("give the runner's URI, e.g. 192.168.1.20:10818 or http://board:10818/v1")
        target = add_target(name, uri, profile=self.profile.value, replace=self.replace.value)
        self.name.value = self.uri.value = ""
        self.refresh()
        self.choice.value = target.name
        self.say(f"added {target.name} ({target.uri})", "ok")
        self._changed()

    def _chosen(self) -> str:
        if not self.choice.value:
            raise InputError("no device chosen: add one first")
        return self.choice.value

    def _remove(self) -> None:
        target = remove_target(self._chosen())
        self.result.value = ""
        self.refresh()
        self.say(f"removed {target.name}", "ok")
        self._changed()

    def _changed(self) -> None:
        if self.on_changed is not None:
            self.on_changed()

    def _test(self) -> None:
        name = self._chosen()
        self.result.value = ""

        def shown(result: dict[str, Any]) -> None:
            self.result.value = probe_html(result)
            self.say(
                f"{name}: reachable" if result["reachable"] else f"{name}: not reachable",
                "ok" if result["reachable"] else "error",
            )

        self.run(lambda progress: probe_target(name, timeout=self.timeout), on_done=shown, busy=[self.test_button])
