"""`eiq wizard` (which model for a task, priority and target) and `eiq models` (list, show registered models).

Each prints a short human report, or JSON with --json.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import add_flag, print_json


def _kib(value: int | None) -> str:
    return "?" if value is None else f"{value / 1024:,.0f} KiB"


def _shape(shape: Any) -> str:
    return "x".join(str(v) for v in shape)


def format_recommendation(rec: dict[str, Any]) -> str:
    """The human form of `Recommendation.to_dict()`."""
    q = rec["quantization"]
    if q["type"] == "int8":
        granularity = "per-channel" if q["per_channel"] else "per-tensor"
        quantization = f"int8 {granularity}, input {q['input_type']}, output {q['output_type']}"
        if q.get("qat"):
            quantization += "; quantization-aware training advised"
    elif q["type"] == "float16":
        quantization = f"float16 weights, input {q['input_type']}, output {q['output_type']}"
    else:
        quantization = "none (float32)"
    lines = [
        f"{rec['task']}, {rec['priority']}, {rec['target']}: {rec['model']}, input {_shape(rec['input_size'])} "
        f"(H x W x C), alpha {float(rec['alpha'])}",
        f"quantization: {quantization}",
        f"why: {rec['reason']}",
    ]
    if rec.get("flash_bytes") is not None:
        lines.append(f"memory (int8 estimate): flash {_kib(rec['flash_bytes'])}, RAM {_kib(rec['ram_bytes'])}")
    if not rec.get("available", True):
        lines.append(f"not available: {rec['note']}")
    elif rec.get("note"):
        lines.append(f"note: {rec['note']}")
    return "\n".join(lines)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The wizard's table, one line per row."""
    header = f"{'task':<15}{'priority':<12}{'target':<7}{'model':<20}{'input':<12}{'alpha':<6}quantization"
    lines = [header]
    for rec in rows:
        q = rec["quantization"]
        quant = q["type"] + ({True: " per-channel", False: " per-tensor"}.get(q["per_channel"], ""))
        if not rec["available"]:
            quant += "  (model not registered)"
        lines.append(
            f"{rec['task']:<15}{rec['priority']:<12}{rec['target']:<7}{rec['model']:<20}"
            f"{_shape(rec['input_size']):<12}{float(rec['alpha']):<6}{quant}"
        )
    return "\n".join(lines)


def _wizard(args: argparse.Namespace) -> int:
    from ..models import recommend, table

    if args.table:
        rows = [rec.to_dict() for rec in table()]
        print_json(rows) if args.json else print(format_table(rows))
        return 0
    rec = recommend(args.task, args.priority, args.target, num_classes=args.classes, estimate=not args.no_estimate)
    print_json(rec.to_dict()) if args.json else print(format_recommendation(rec.to_dict()))
    return 0


def _parameters(entry: Any) -> tuple[list[dict[str, Any]], str | None]:
    try:
        return list(entry.create().get_exposed_parameters()), None
    except Exception as exc:  # a user plugin's own code
        return [], f"{type(exc).__name__}: {exc}"


def models_report(task: str | None = None) -> dict[str, Any]:
    """Registered models, broken plugins and plugin folders, as `eiq models --json` prints them."""
    from ..models import registry

    reg = registry()
    models = []
    for entry in reg.plugins(task):
        parameters, problem = _parameters(entry)
        item = {
            "name": entry.name,
            "task": entry.task,
            "kind": "base" if entry.base else "user",
            "origin": entry.origin,
            "source": entry.source,
            "parameters": parameters,
        }
        if problem:
            item["problem"] = problem
        models.append(item)
    return {
        "models": models,
        "problems": [{"source": p.source, "message": p.message} for p in reg.problems],
        "folders": [{"origin": o, "folder": str(f), "variable": v} for o, f, v in reg.folders or []],
    }


def format_models(report: dict[str, Any]) -> str:
    """The human form of `models_report()`."""
    models = report["models"]
    width = max([4, *(len(m["name"]) for m in models)])
    lines = [f"{'name':<{width}}  {'task':<14}  {'kind':<4}  {'origin':<11}  {'parameters':<24}  source"]
    for m in models:
        params = ", ".join(p["name"] for p in m["parameters"]) or ("?" if m.get("problem") else "-")
        lines.append(
            f"{m['name']:<{width}}  {m['task']:<14}  {m['kind']:<4}  {m['origin']:<11}  {params:<24}  {m['source']}"
        )
        if m.get("problem"):
            lines.append(f"  ! its parameters could not be read: {m['problem']}")
    if not models:
        lines.append("(no models)")
    folders = report["folders"]
    if folders:
        lines.append("plugin folders: " + "; ".join(f"{f['origin']} {f['folder']} ({f['variable']})" for f in folders))
    else:
        lines.append("plugin folders: none (set EIQ_PLUGINS_USER to a folder with classification/image/<Family>/*.py)")
    if report["problems"]:
        lines.append(f"{len(report['problems'])} plugin(s) could not be loaded:")
        lines += [f"  {p['source']}: {p['message']}" for p in report["problems"]]
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    report = models_report(args.task)
    print_json(report) if args.json else print(format_models(report))
    return 0


def model_details(name: str, task: str | None = None) -> dict[str, Any]:
    """What `eiq models show NAME` prints: parameters, shapes, training and quantization options."""
    from ..models import registry

    entry = registry().entry(name, task)
    plugin = entry.create()
    doc = (entry.plugin_class.__doc__ or "").strip().splitlines()
    return {
        "name": entry.name,
        "task": entry.task,
        "kind": "base" if entry.base else "user",
        "origin": entry.origin,
        "source": entry.source,
        "description": doc[0] if doc else "",
        "parameters": plugin.get_exposed_parameters(),
        "allowed_dimensions": [list(s) for s in plugin.get_allowed_dimensions()],
        "pretrained_dimensions": plugin.get_pretrained_dimensions(),
        "optimizers": plugin.get_optimizers(),
        "losses": plugin.get_losses(),
        "metrics": plugin.get_metrics(),
        "ptq_support": plugin.get_ptq_support(),
        "qat_support": plugin.get_qat_support(),
        "metadata": plugin.get_metadata(),
    }


def format_details(d: dict[str, Any]) -> str:
    """The human form of `model_details()`."""
    lines = [f"{d['name']} ({d['task']}, {d['kind']} model from {d['source']})"]
    if d["description"]:
        lines.append(d["description"])
    lines.append("parameters:" if d["parameters"] else "parameters: none")
    for p in d["parameters"]:
        extra = []
        if p.get("choices"):
            extra.append("one of " + ", ".join(map(str, p["choices"])))
        if p.get("min") is not None or p.get("max") is not None:
            extra.append(f"{p.get('min', '')}..{p.get('max', '')}")
        extra_text = f"; {'; '.join(extra)}" if extra else ""
        lines.append(
            f"  {p['name']} ({p.get('type', 'str')}, default {p.get('default')!r}{extra_text}): {p.get('help', '')}"
        )
    lines.append("input sizes (H x W x C): " + ", ".join(_shape(s) for s in d["allowed_dimensions"]))
    for item in d["pretrained_dimensions"]:
        alphas = f" (alpha {', '.join(str(float(a)) for a in item['alphas'])})" if item.get("alphas") else ""
        lines.append(f"pretrained: {_shape(item['shape'])} {item.get('weights', '')}{alphas}")
    if not d["pretrained_dimensions"]:
        lines.append("pretrained: none (random initialization or your own weights file)")
    lines.append(f"optimizers: {', '.join(d['optimizers'])} (first is the default)")
    lines.append(f"losses: {', '.join(d['losses']) or '-'}; metrics: {', '.join(d['metrics']) or '-'}")
    for label, support in (
        ("post-training quantization", d["ptq_support"]),
        ("quantization-aware training", d["qat_support"]),
    ):
        if not support:
            lines.append(f"{label}: not supported")
        for s in support:
            kinds = [k for k in ("per_channel", "per_tensor") if s.get(k)]
            lines.append(
                f"{label}: {s.get('framework')} {' and '.join(k.replace('_', '-') for k in kinds)}, "
                f"input {'/'.join(s.get('input_types', []))}, output {'/'.join(s.get('output_types', []))}"
            )
    lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in d["metadata"].items()))
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    details = model_details(args.name, args.task)
    print_json(details) if args.json else print(format_details(details))
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq wizard` and `eiq models ...` to the top-level parser."""
    from ..models.interfaces import TASKS
    from ..models.wizard import PRIORITIES, TARGETS

    wizard = subparsers.add_parser(
        "wizard",
        help="recommend a model, input size, alpha and quantization for a task, priority and target",
        description="Recommend a model for a task, priority and target (the guide's Model Selection wizard); "
        "for MCUs, with int8 flash and RAM estimates.",
    )
    add_flag(wizard, "task", type=str.lower, choices=TASKS, default="classification", help="default classification")
    add_flag(wizard, "priority", type=str.lower, choices=PRIORITIES, default="balanced", help="default balanced")
    add_flag(wizard, "target", type=str.lower, choices=TARGETS, default="npu", help="default npu")
    add_flag(wizard, "classes", type=int, default=10, metavar="N", help="classes the MCU estimate assumes (default 10)")
    add_flag(wizard, "no-estimate", action="store_true", help="skip the MCU memory estimate (builds no model)")
    add_flag(wizard, "table", action="store_true", help="print every row of the wizard's table")
    add_flag(wizard, "json", action="store_true", help="print JSON")
    wizard.set_defaults(handler=_wizard)

    models = subparsers.add_parser(
        "models",
        help="list the registered models (base, user plugins, entry points) and broken plugins; show one",
        description="List the registered models and any plugin that failed to load, or show one model.",
    )
    add_flag(models, "task", type=str.lower, choices=TASKS, help="only models for this task")
    add_flag(models, "json", action="store_true", help="print JSON")
    models.set_defaults(handler=_list)
    commands = models.add_subparsers(dest="models_command", metavar="COMMAND")
    listing = commands.add_parser("list", help="list the registered models (the default)")
    add_flag(listing, "task", type=str.lower, choices=TASKS, help="only models for this task")
    add_flag(listing, "json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="parameters, input sizes and options of one model")
    show.add_argument("name", help="model name (any case; -, _ and space alike)")
    add_flag(show, "task", type=str.lower, choices=TASKS, help="look only among this task's models")
    add_flag(show, "json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)
