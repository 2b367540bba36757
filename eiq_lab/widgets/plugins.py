"""The PLUG-INS screen: the converter plugins with their icon, info page, formats and readiness; install a plugin
wheel (into this Python or its own environment), uninstall one, set up the plugins that need a managed environment.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from ..errors import InputError
from .base import Panel

_STATUS_COLORS = {"ready": "#1b7f3b", "needs setup": "#9a6700", "broken": "#b3261e"}


def _info_page(path: Any) -> str:
    if not path:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError as exc:
        return f"<i>info page unreadable: {html.escape(str(exc))}</i>"
    return text if path.suffix.lower() in (".html", ".htm") else f"<pre>{html.escape(text)}</pre>"


class Plugins(Panel):
    """The converter plugins and their management."""

    title = "Plug-ins"

    def __init__(self) -> None:
        self.cards = w.VBox()
        self.cards.add_class("eiq-plugin-list")
        self.wheel = w.Text(description="Wheel", placeholder="path to a plugin .whl", layout=w.Layout(width="520px"))
        self.isolated = w.Checkbox(description="in its own environment", value=False)
        self.install_button = w.Button(description="Install", icon="download")
        self.install_button.add_class("eiq-plugin-install")
        self.install_button.on_click(self.guarded(lambda _: self.install()))
        self.accept = w.Checkbox(description="I accept the vendor's licence (setup)", value=False)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(self.guarded(lambda _: self.refresh()))
        super().__init__([self.cards, w.HBox([self.wheel, self.isolated, self.install_button]),
                          w.HBox([self.accept, self.refresh_button])])  # fmt: skip
        self.add_class("eiq-plugins")
        self.refresh()

    def refresh(self) -> None:
        """Read the plugins again (after an install outside this screen)."""
        from ..convert import registry

        self.plugins = registry.plugins()
        self.cards.children = [self._card(p) for p in self.plugins]

    def _card(self, plugin: Any) -> w.Widget:
        icon: w.Widget = w.HTML("")
        if plugin.icon and plugin.icon.is_file():
            icon = w.Image(value=plugin.icon.read_bytes(), format=plugin.icon.suffix.lstrip(".") or "png",
                           layout=w.Layout(width="40px", height="40px"))  # fmt: skip
        color = _STATUS_COLORS.get(plugin.status, "#444")
        sources = ", ".join(str(i.get("ext", "?")) for i in plugin.inputs)
        formats = f"{sources} -> {', '.join(str(o.get('ext', '?')) for o in plugin.outputs)}"
        problem = f"<br><span style='color:{color}'>{html.escape(plugin.problem)}</span>" if plugin.problem else ""
        text = w.HTML(
            f"<b>{html.escape(plugin.name)}</b> {html.escape(plugin.version)} "
            f"<span class='eiq-plugin-status' style='color:{color}'>[{plugin.status}]</span><br>"
            f"{html.escape(formats)}<br><small>{html.escape(plugin.origin)}</small>{problem}"
        )
        buttons = []
        info = _info_page(plugin.info_page)
        page = w.HTML(info)
        page.layout.display = "none"
        if info:
            more = w.ToggleButton(description="Info", icon="info")
            more.observe(lambda change, page=page: setattr(page.layout, "display", "block" if change.new else "none"),
                         "value")  # fmt: skip
            buttons.append(more)
        if callable(getattr(plugin.module, "plugin_setup", None)):
            setup = w.Button(description="Set up" if plugin.status != "ready" else "Remove environment")
            setup.on_click(self.guarded(lambda _, p=plugin: self.setup(p.name, remove=p.status == "ready")))
            buttons.append(setup)
        if not plugin.builtin:
            remove = w.Button(description="Uninstall", icon="trash", button_style="danger")
            remove.on_click(self.guarded(lambda _, p=plugin: self.uninstall(p.name)))
            buttons.append(remove)
        frame = w.Layout(border="1px solid #ddd", padding="4px", margin="2px")
        card = w.VBox([w.HBox([icon, text]), w.HBox(buttons), page], layout=frame)
        card.add_class("eiq-plugin-card")
        return card

    def install(self) -> Any:
        from ..convert import registry

        wheel = self.wheel.value.strip()
        if not wheel:
            raise InputError("give the path of a plugin wheel (.whl) to install")
        isolated = self.isolated.value
        return self.run(lambda progress: registry.install(wheel, isolated=isolated), on_done=lambda info: (
            self.refresh(), self.say(f"installed {info.name}", "ok")), busy=[self.install_button])  # fmt: skip

    def uninstall(self, name: str) -> Any:
        from ..convert import registry

        return self.run(lambda progress: registry.uninstall(name),
                        on_done=lambda _: (self.refresh(), self.say(f"uninstalled {name}", "ok")))  # fmt: skip

    def setup(self, name: str, *, remove: bool = False) -> Any:
        from ..convert import registry

        accept = self.accept.value

        def work(progress: Any) -> str:
            progress.start("setup", total=None, message=name)
            return registry.setup(name, accept_license=accept, remove=remove, log=lambda line: progress.message(line))

        return self.run(work, on_done=lambda message: (self.refresh(), self.say(message, "ok")))
