"""`eiq augment operators|list|show|create|add|set|remove|move|rename|delete|preview`: augmentation pipelines.

Steps are numbered from 1 here, as `show` prints them; parameters are written ``key=value`` (ranges ``key=lo,hi``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from .output import add_flag, print_json


def _format_value(parameter: Any, value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if parameter.choices:
        return f"{value} ({dict(parameter.choices).get(value, '?')})"
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_step(number: int, step: Any) -> str:
    """One line of `show`: number, operator, probability, every parameter as ``key=value``."""
    op = step.operator
    params = " ".join(f"{p.name}={_format_value(p, step.params[p.name])}" for p in op.parameters)
    return f"{number:>3}. {step.op:<22} p={step.probability:<5g} {params}".rstrip()


def format_pipeline(pipeline: Any, where: str) -> str:
    """The human form of one pipeline."""
    kind = "preset (read-only)" if pipeline.preset else f"stored in {where}"
    lines = [f"pipeline {pipeline.name!r}, {kind}: {len(pipeline.steps)} step(s)"]
    lines += [format_step(i, step) for i, step in enumerate(pipeline.steps, 1)]
    if not pipeline.steps:
        lines.append("  (no steps: images pass unchanged)")
    return "\n".join(lines)


def format_operators(ops: list[Any]) -> str:
    """The human form of the operator registry: each operator with its parameters."""
    lines = []
    for op in ops:
        moves = "; moves boxes with the pixels" if op.geometric else ""
        lines.append(f"{op.id} ({op.title}){moves}")
        lines.append(f"    {op.description}")
        lines.append("    probability  float  default 0.5  range 0..1  chance that an image gets it")
        for p in op.parameters:
            bounds = f"{p.minimum:g}..{p.maximum:g}"
            lines.append(f"    {p.name}  {p.kind}  default {_format_value(p, p.default)}  range {bounds}  {p.help}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _parse_params(op_id: str, texts: list[str]) -> dict[str, Any]:
    from ..augment import operator

    op = operator(op_id)
    params: dict[str, Any] = {}
    for text in texts or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param takes key=value (ranges key=lo,hi); received {text!r}")
        parameter = op.parameter(key.strip())
        params[parameter.name] = parameter.parse(value, op.id)
    return params


def _step_index(project: Any, name: str, number: int, what: str = "INDEX", end: bool = False) -> int:
    """The 0-based index of step `number` (from 1, as `show` prints), checked against the pipeline."""
    from ..augment import get_pipeline, is_preset

    if is_preset(name):  # the engine refuses the edit itself, whatever the number
        return max(number - 1, 0)
    count = len(get_pipeline(project, name).steps) + (1 if end else 0)
    if count == 0:
        raise InputError(f"pipeline {name!r} has no steps yet; add one with `eiq augment add`")
    if not 1 <= number <= count:
        raise InputError(
            f"{what} counts steps from 1 to {count} of {name!r}, as `eiq augment show` numbers them; received {number}"
        )
    return number - 1


def _operators(args: argparse.Namespace) -> int:
    from ..augment import operators

    ops = operators()
    print_json([op.to_dict() for op in ops]) if args.json else print(format_operators(ops))
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..augment import get_pipeline, pipeline_names
    from ..project import open_project

    with open_project(args.path) as project:
        stored = project.pipelines()
        entries = []
        for name in pipeline_names(project):
            try:
                pipeline = get_pipeline(project, name)
                entries.append({"name": name, "preset": pipeline.preset, "steps": len(pipeline.steps)})
            except InputError as exc:  # a stored pipeline that no longer checks: list it, say why
                entries.append({"name": name, "preset": False, "steps": len(stored[name]), "problem": str(exc)})
    if args.json:
        print_json(entries)
        return 0
    for entry in entries:
        kind = "preset, read-only" if entry["preset"] else "stored"
        problem = f"  PROBLEM: {entry['problem']}" if "problem" in entry else ""
        print(f"{entry['name']}  ({kind}, {entry['steps']} step(s)){problem}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..augment import get_pipeline
    from ..project import open_project

    with open_project(args.path) as project:
        pipeline = get_pipeline(project, args.name)
    if args.json:
        print_json({"name": pipeline.name, "preset": pipeline.preset, "steps": pipeline.to_json()})
    else:
        print(format_pipeline(pipeline, Path(args.path).name))
    return 0


def _report(args: argparse.Namespace, pipeline: Any, message: str) -> int:
    if args.json:
        print_json({"name": pipeline.name, "preset": pipeline.preset, "steps": pipeline.to_json()})
    else:
        print(message)
        print(format_pipeline(pipeline, Path(args.path).name))
    return 0


def _create(args: argparse.Namespace) -> int:
    from ..augment import create_pipeline
    from ..project import open_project

    with open_project(args.path) as project:
        pipeline = create_pipeline(project, args.name, copy_from=args.copy_from)
    source = f" as a copy of {args.copy_from!r}" if args.copy_from else ""
    return _report(args, pipeline, f"created pipeline {pipeline.name!r}{source}")


def _add(args: argparse.Namespace) -> int:
    from ..augment import add_step
    from ..project import open_project

    params = _parse_params(args.op, args.param)
    with open_project(args.path) as project:
        index = None if args.at is None else _step_index(project, args.name, args.at, "--at", end=True)
        pipeline = add_step(project, args.name, args.op, args.probability, index=index, **params)
    return _report(args, pipeline, f"added {args.op} to {pipeline.name!r}")


def _set(args: argparse.Namespace) -> int:
    from ..augment import get_pipeline, update_step
    from ..project import open_project

    with open_project(args.path) as project, project.transaction():
        index = _step_index(project, args.name, args.index)
        current = get_pipeline(project, args.name)
        params = _parse_params(current.steps[index].op, args.param) if not current.preset else {}
        pipeline = update_step(project, args.name, index, probability=args.probability, **params)
    return _report(args, pipeline, f"changed step {args.index} of {pipeline.name!r}")


def _remove(args: argparse.Namespace) -> int:
    from ..augment import remove_step
    from ..project import open_project

    with open_project(args.path) as project:
        pipeline = remove_step(project, args.name, _step_index(project, args.name, args.index))
    return _report(args, pipeline, f"removed step {args.index} from {pipeline.name!r}")


def _move(args: argparse.Namespace) -> int:
    from ..augment import move_step
    from ..project import open_project

    with open_project(args.path) as project:
        index = _step_index(project, args.name, args.index)
        pipeline = move_step(project, args.name, index, _step_index(project, args.name, args.to, "TO"))
    return _report(args, pipeline, f"moved step {args.index} of {pipeline.name!r} to {args.to}")


def _rename(args: argparse.Namespace) -> int:
    from ..augment import rename_pipeline
    from ..project import open_project

    with open_project(args.path) as project:
        pipeline = rename_pipeline(project, args.name, args.new_name)
    return _report(args, pipeline, f"renamed {args.name!r} to {pipeline.name!r}")


def _delete(args: argparse.Namespace) -> int:
    from ..augment import delete_pipeline
    from ..project import open_project

    with open_project(args.path) as project:
        delete_pipeline(project, args.name)
    print_json({"deleted": args.name}) if args.json else print(f"deleted pipeline {args.name!r}")
    return 0


def _preview_image(project: Any, choice: str | None) -> tuple[Any, str]:
    """The image to preview (bytes or a path) and how to name it in messages."""
    if choice is None:
        first = project.images(group="train", limit=1)
        if not first:
            raise InputError(f"{project.path.name} has no train images; choose one with --image ID or FILE")
        return project.image_data(first[0]), f"train image {first[0].id}"
    if Path(choice).is_file():
        return Path(choice), choice
    if choice.isdigit():
        return project.image_data(int(choice)), f"image {choice}"
    raise InputError(f"--image must be an image id of the project or an existing file; received {choice!r}")


def _preview(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..augment import get_pipeline, preview
    from ..project import open_project

    with open_project(args.path) as project:
        pipeline = get_pipeline(project, args.name)
        image, described = _preview_image(project, args.image)
    versions = preview(pipeline, image, n=args.n, seed=args.seed)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", pipeline.name) or "pipeline"
    files = []
    for i, pixels in enumerate(versions):
        path = out / f"{stem}-{args.seed}-{i:02d}.png"
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
        files.append(str(path))
    if args.json:
        print_json({"pipeline": pipeline.name, "image": described, "seed": args.seed, "files": files})
    else:
        print(f"wrote {len(files)} preview(s) of {pipeline.name!r} on {described} (seed {args.seed}) to {out}")
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq augment ...` to the top-level parser."""
    parser = subparsers.add_parser("augment", help="augmentation pipelines: operators, presets, edit, preview")
    commands = parser.add_subparsers(dest="augment_command", metavar="COMMAND", required=True)

    def command(name: str, handler: Any, help: str, project: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        if project:
            sub.add_argument("path", help="the project file (.eiqp or .deepview)")
        add_flag(sub, "json", action="store_true", help="print JSON")
        sub.set_defaults(handler=handler)
        return sub

    def named(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        sub = command(name, handler, help)
        sub.add_argument("name", metavar="NAME", help="the pipeline's name")
        return sub

    def step_settings(sub: argparse.ArgumentParser, probability: float | None) -> None:
        default = "" if probability is None else f" (default {probability:g})"
        add_flag(sub, "probability", "-p", type=float, default=probability, help=f"chance per image, 0..1{default}")
        add_flag(
            sub,
            "param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an operator parameter (repeatable); ranges as key=lo,hi, colours as key=r,g,b",
        )

    command("operators", _operators, "every operator with its parameters, defaults and ranges", project=False)
    command("list", _list, "the presets (read-only) and the project's pipelines")
    named("show", _show, "a pipeline's steps with all their parameters")
    create = named("create", _create, "a new, empty pipeline (or a copy of another with --from)")
    add_flag(create, "from", dest="copy_from", metavar="PIPELINE", help="copy the steps of this pipeline or preset")
    add = named("add", _add, "add a step (at the end, or at --at)")
    add.add_argument("op", metavar="OP", help="the operator (see `eiq augment operators`)")
    step_settings(add, 0.5)
    add_flag(add, "at", type=int, metavar="INDEX", help="insert as step INDEX (from 1) instead of at the end")
    change = named("set", _set, "change a step's probability or parameters")
    change.add_argument("index", metavar="INDEX", type=int, help="the step's number, from 1, as `show` prints it")
    step_settings(change, None)
    remove = named("remove", _remove, "remove a step")
    remove.add_argument("index", metavar="INDEX", type=int, help="the step's number, from 1, as `show` prints it")
    move = named("move", _move, "move a step to another position")
    move.add_argument("index", metavar="INDEX", type=int, help="the step's number, from 1")
    move.add_argument("to", metavar="TO", type=int, help="its new number, from 1")
    rename = named("rename", _rename, "rename a stored pipeline")
    rename.add_argument("new_name", metavar="NEW_NAME")
    named("delete", _delete, "delete a stored pipeline")
    prev = named("preview", _preview, "write N augmented versions of an image as PNG files")
    add_flag(
        prev,
        "image",
        metavar="ID|FILE",
        help="an image id of the project or an image file (default: first train image)",
    )
    add_flag(prev, "n", "-n", type=int, default=8, help="how many versions (default 8)")
    add_flag(prev, "seed", type=int, default=0, help="version i uses seed [SEED, i] (default 0)")
    add_flag(
        prev, "output", "-o", required=True, metavar="DIR", help="the folder for the PNG files (created if missing)"
    )
