"""`eiq train` and `eiq runs`: train a model on a project (new, continued or restored runs) and list
runs with their settings, best metrics and checkpoints.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InputError
from ..events import Event
from .output import EXIT_INTERRUPTED, ProgressPrinter, add_flag, print_json


def _number(text: str) -> float:
    return float(text)


def _epochs(text: str) -> int | None:
    if text.strip().lower() in ("none", "inf", "infinite", "unlimited"):
        return None
    return int(text)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _params(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--param takes NAME=VALUE; received {pair!r}")
        out[key.strip()] = _literal(value.strip())
    return out


def _literal(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def settings_from_args(args: argparse.Namespace, base: Any = None) -> Any:
    """Training settings from the flags that were given, over `base` (default: the guide's defaults)."""
    from ..train import ClusterSettings, LearningRateDecay, PruneSettings, StopCondition, TrainingSettings

    settings = base if base is not None else TrainingSettings()
    changes: dict[str, Any] = {}
    simple = {
        "task": "task", "model": "model", "alpha": "alpha", "input_size": "input_size", "weights": "weights",
        "optimizer": "optimizer", "lr": "learning_rate", "batch": "batch_size", "augmentation": "augmentation",
        "qat_epochs": "qat_epochs", "seed": "seed",
    }  # fmt: skip
    for flag, field in simple.items():
        value = getattr(args, flag)
        if value is not None:
            changes[field] = value
    if args.epochs is not None:
        changes["epochs"] = _epochs(args.epochs)
    if args.param:
        changes["model_params"] = {**settings.model_params, **_params(args.param)}
    if args.decay_rate is not None or args.decay_epochs is not None or args.decay_steps is not None:
        changes["decay"] = LearningRateDecay(
            rate=args.decay_rate if args.decay_rate is not None else 0.9,
            epochs=None if args.decay_steps is not None else (args.decay_epochs or 1),
            steps=args.decay_steps,
        )
    if args.stop is not None:
        changes["stop"] = StopCondition(
            kind=args.stop, on=args.stop_on, monitor=args.stop_monitor, target=args.stop_target,
            patience=args.stop_patience,
        )  # fmt: skip
    if args.prune is not None:
        defaults = PruneSettings()
        changes["prune"] = PruneSettings(
            mode=args.prune,
            sparsity=args.prune_sparsity if args.prune_sparsity is not None else defaults.sparsity,
            begin_step=args.prune_begin if args.prune_begin is not None else defaults.begin_step,
            end_step=args.prune_end,
            frequency=args.prune_frequency,
            epochs=args.prune_epochs if args.prune_epochs is not None else defaults.epochs,
            layers=_names(args.prune_layers or ""),
        )
    if args.cluster is not None:
        changes["cluster"] = ClusterSettings(
            clusters=args.cluster,
            epochs=args.cluster_epochs if args.cluster_epochs is not None else ClusterSettings().epochs,
            layers=_names(args.cluster_layers or ""),
        )
    return settings.replace(**changes) if changes else settings


class TrainPrinter:
    """Renders training events: a step bar per phase and one line per epoch."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stderr
        self.bar = ProgressPrinter(self.stream, noun="steps")

    def __call__(self, event: Event) -> None:
        if event.kind == "epoch":
            d = event.data
            train = "  ".join(f"{k} {v:.4f}" for k, v in d.items() if k in ("loss", "accuracy"))
            test = "  ".join(f"{k[5:]} {v:.4f}" for k, v in d.items() if k in ("test_loss", "test_accuracy"))
            line = f"epoch {d['epoch']} ({d['phase']}): {train}" + (f" | test {test}" if test else "")
            if self.bar.tty and self.bar._drawn:
                self.stream.write("\n")
                self.bar._drawn = False
            self.stream.write(f"{line}  [{d['seconds']:.1f} s]\n")
            self.stream.flush()
        elif event.kind == "message":
            self.stream.write(f"note: {event.message}\n")
        else:
            self.bar(event)


def _train(args: argparse.Namespace) -> int:
    from ..project import open_project
    from ..train import Trainer, TrainingSettings

    with open_project(args.project) as project:
        if args.continue_run is not None:
            if args.restore is not None:
                raise InputError("--continue and --restore exclude each other")
            trainer = Trainer.resume(project, args.continue_run)
        elif args.restore is not None:
            run, _, _ = args.restore.partition(":")
            base = TrainingSettings.from_json(project.run(run).settings).replace(seed=None)
            trainer = Trainer(project, settings_from_args(args, base), restore=args.restore)
        else:
            trainer = Trainer(project, settings_from_args(args))
        observer = None if args.json or args.quiet else TrainPrinter()
        try:
            result = trainer.fit(callbacks=[observer] if observer else None)
        except KeyboardInterrupt:
            record = project.run(trainer.run_id) if trainer.run_id else None
            if record is not None:
                print(
                    f"\nrun {record.id} stopped after epoch {record.last_epoch}; continue with "
                    f"`eiq train {args.project} --continue`",
                    file=sys.stderr,
                )
            return EXIT_INTERRUPTED
        record = project.run(result.run)
    if args.json:
        print_json({"run": result.run, "state": result.state, "epoch": result.epoch, "metrics": result.metrics,
                    "message": result.message, "summary": result.summary})  # fmt: skip
    else:
        print(f"run {result.run} {result.state} at epoch {result.epoch}: {result.message}")
        print(_best_line(record.summary))
        if result.state == "finished":
            print(f"the final model is stored in {args.project} (run {result.run})")
    return EXIT_INTERRUPTED if result.stopped else 0


def _best_line(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in summary.items():
        if key.startswith("best_"):
            parts.append(f"{key[5:].replace('_', ' ')} {value['value']:.4f} (epoch {value['epoch']})")
    return "best: " + (", ".join(parts) if parts else "no finished epoch")


def _runs(args: argparse.Namespace) -> int:
    from ..project import open_project

    with open_project(args.project) as project:
        if args.run is None:
            records = project.runs()
            if args.json:
                print_json([_run_json(project, r, brief=True) for r in records])
                return 0
            if not records:
                print(f"no runs in {args.project} yet; train one with `eiq train {args.project}`")
            for r in records:
                s = r.settings
                size = "x".join(map(str, s.get("input_size", [])))
                print(
                    f"run {r.id}: {r.state:<8} {r.model} alpha {s.get('alpha')} {size}  epochs {r.last_epoch}"
                    f"{' (from ' + r.parent + ')' if r.parent else ''}  {_best_line(r.summary)}"
                )
            return 0
        record = project.run(args.run)
        data = _run_json(project, record, brief=False)
    if args.json:
        print_json(data)
        return 0
    print(f"run {record.id}: {record.task} {record.model}, {record.state} ({record.message or ''})")
    print(f"classes: {', '.join(record.labels)}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in record.settings.items() if v not in (None, {}, [])))
    print(_best_line(record.summary))
    for c in data["checkpoints"]:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in c["metrics"].items())
        print(f"  {record.id}:{c['epoch']:<4} {c['phase']:<8} step {c['step']:<7} {metrics}")
    return 0


def _run_json(project: Any, record: Any, *, brief: bool) -> dict[str, Any]:
    data = {
        "run": record.id, "task": record.task, "model": record.model, "state": record.state,
        "message": record.message, "parent": record.parent, "epochs": record.last_epoch,
        "labels": record.labels, "settings": record.settings, "summary": record.summary,
    }  # fmt: skip
    if not brief:
        data["checkpoints"] = [
            {"epoch": c.epoch, "phase": c.phase, "step": c.step, "metrics": c.metrics}
            for c in project.checkpoints(record.id)
        ] if record.epochs else []  # fmt: skip
    return data


def register(subparsers: Any) -> None:
    """Add `eiq train` and `eiq runs`."""
    p = subparsers.add_parser(
        "train",
        help="train a model on a project (new run, --continue or --restore RUN:EPOCH)",
        description="Train a model on the project's train group, testing on its test group after every epoch. "
        "A checkpoint is stored in the project every epoch. Defaults are the guide's recommended settings: "
        "ImageNet weights, 128,128,3, learning rate 1e-4, batch 10, alpha 0.5, Adam.",
    )
    p.add_argument("project", help="the .eiqp project")
    add_flag(p, "continue", dest="continue_run", nargs="?", const="last", default=None, metavar="RUN",
             help="continue a stopped run from its last checkpoint (default: the last run)")  # fmt: skip
    add_flag(p, "restore", metavar="RUN:EPOCH", help="start a new run from a stored checkpoint, e.g. 3:12 or last:last")
    g = p.add_argument_group("model")
    add_flag(g, "task", help="classification (default) or detection")
    add_flag(g, "model", help="a registered model (eiq models); default: the wizard's balanced choice")
    add_flag(g, "alpha", type=_number, help="width multiplier (default 0.5)")
    add_flag(g, "param", action="append", metavar="NAME=VALUE", help="another exposed model parameter (repeatable)")
    add_flag(g, "input-size", metavar="H,W,C", help="input size, (height, width, channels) (default 128,128,3)")
    add_flag(g, "weights", help="imagenet (default), random or a weights file")
    g = p.add_argument_group("training")
    add_flag(g, "epochs", help="epochs to train (default 10), or none with a --stop condition")
    add_flag(g, "optimizer", help="sgd, adagrad, adadelta, rmsprop, adam (default), adamax or nadam")
    add_flag(g, "lr", "--learning-rate", type=_number, help="learning rate (default 1e-4)")
    add_flag(g, "decay-rate", type=_number, help="learning-rate decay rate (0, 1]")
    add_flag(g, "decay-epochs", type=int, help="decay over this many epochs")
    add_flag(g, "decay-steps", type=int, help="decay over this many steps")
    add_flag(g, "batch", "--batch-size", type=int, help="batch size (default 10)")
    add_flag(g, "augmentation", help="augmentation pipeline (eiq augment list; default: default)")
    add_flag(g, "seed", type=int, help="seed of shuffling, augmentation and initialisation (default: drawn, recorded)")
    g = p.add_argument_group("stop condition")
    add_flag(g, "stop", help="improvement_ends, stop_at_target or improvement_ends_after_target")
    add_flag(g, "stop-on", default="test", help="train or test (default test)")
    add_flag(g, "stop-monitor", default="metric", help="metric (default) or loss")
    add_flag(g, "stop-target", type=_number, help="target value")
    add_flag(g, "stop-patience", type=int, default=5, help="epochs without improvement (default 5)")
    g = p.add_argument_group("optimization")
    add_flag(g, "qat-epochs", type=int, help="quantization-aware training epochs after training")
    add_flag(g, "prune", help="during or after (fine-tune post training)")
    add_flag(g, "prune-sparsity", type=_number, help="final sparsity (default 0.5)")
    add_flag(g, "prune-begin", type=int, help="begin step (default 0)")
    add_flag(g, "prune-end", type=int, help="end step (default: one epoch's steps)")
    add_flag(g, "prune-frequency", type=int, help="prune every N steps (default: so that the end step is reached)")
    add_flag(g, "prune-epochs", type=int, help="fine-tuning epochs for --prune after (default 2)")
    add_flag(g, "prune-layers", metavar="A,B", help="layers to prune (default: all prunable)")
    add_flag(g, "cluster", type=int, metavar="N", help="cluster weights into N clusters after training")
    add_flag(g, "cluster-epochs", type=int, help="clustering fine-tuning epochs (default 2)")
    add_flag(g, "cluster-layers", metavar="A,B", help="layers to cluster (default: all clusterable)")
    add_flag(p, "json", action="store_true", help="print the result as JSON (no progress)")
    add_flag(p, "quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(handler=_train)

    r = subparsers.add_parser("runs", help="list a project's training runs, or show one")
    r.add_argument("project", help="the .eiqp project")
    r.add_argument("run", nargs="?", help="a run number or 'last' to show its settings and checkpoints")
    add_flag(r, "json", action="store_true", help="print JSON")
    r.set_defaults(handler=_runs)
