"""A sample eiq-lab extension: a button on the Export screen shown only for a quantized TFLite export, a Home
tool counting the project's labels, and a panel listing them (the guide's section 6 examples, in Python).
"""

import html

import ipywidgets as w

FLASH_WHEN = "modelExported && exportModelQuantized && exportModelType==tflite"


def flash(context):
    """Pretend to flash the latest export to a board; counts flashes in the global storage."""
    count = context.global_state.get("flashes", 0) + 1
    context.global_state.update("flashes", count)
    latest = context.project.exports()[-1]
    context.project_state.update("last_flashed", latest.path)
    return f"flashed {latest.path} (flash number {count})"


def count_labels(context):
    labels = context.project.labels()
    return f"{len(labels)} labels: {', '.join(label.name for label in labels)}"


def summary_panel(context):
    rows = "".join(
        f"<tr><td>{html.escape(label.name)}</td><td>{len(context.project.annotations(label=label.id))}</td></tr>"
        for label in context.project.labels()
    )
    table = w.HTML(f"<table class='sample-summary'><tr><th>label</th><th>annotations</th></tr>{rows}</table>")
    table.add_class("eiq-sample-summary")
    return table


def activate(context):
    context.register_command("sample.flash", flash, "Flash to board")
    context.add_menu_item("deploy/export-settings", "sample.flash", when=FLASH_WHEN)
    context.register_command("sample.countLabels", count_labels, "Count labels")
    context.add_menu_item("home/tools", "sample.countLabels")
    context.register_panel("sample.summary", summary_panel, "Label summary")
