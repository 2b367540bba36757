"""`eiq targets add|list|remove|test`: the guide's remote devices list (named ModelRunner URIs, kept in the user's
config), and whether a device's runner answers."""

from __future__ import annotations

import argparse
from typing import Any

from .output import EXIT_ERROR, add_flag, print_json


def _add(args: argparse.Namespace) -> int:
    from ..runner.targets import add_target

    target = add_target(args.name, args.uri, profile=args.profile, replace=args.replace)
    print(f"target {target.name}: {target.uri}{' (profiling)' if target.profile else ''}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..runner.targets import list_targets, targets_path

    targets = list_targets()
    if args.json:
        print_json([{"name": t.name, "uri": t.uri, "profile": t.profile} for t in targets])
    elif not targets:
        print(f"no targets saved (in {targets_path()}); add one: eiq targets add NAME HOST:PORT")
    else:
        width = max(4, *(len(t.name) for t in targets))
        print(f"{'name':<{width}}  {'profile':<7}  uri")
        for t in targets:
            print(f"{t.name:<{width}}  {'yes' if t.profile else 'no':<7}  {t.uri}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from ..runner.targets import remove_target

    target = remove_target(args.name)
    print(f"removed target {target.name} ({target.uri})")
    return 0


def _test(args: argparse.Namespace) -> int:
    from ..runner.targets import probe_target

    result = probe_target(args.name, timeout=args.timeout)
    if args.json:
        print_json(result)
    elif result["reachable"]:
        model = result["model"] or "no model loaded"
        print(f"{result['name']} ({result['uri']}): reachable; engine {result['engine']} {result['version']}, {model}")
    else:
        print(f"{result['name']} ({result['uri']}): unreachable: {result['reason']}")
    return 0 if result["reachable"] else EXIT_ERROR


def register(subparsers: Any) -> None:
    """Add `eiq targets ...`."""
    parser = subparsers.add_parser(
        "targets",
        help="the remote devices list: named ModelRunner URIs for validation and profiling",
        description="Keep named ModelRunner addresses (the guide's remote devices) in $EIQ_HOME/targets.json "
        "(default ~/.local/share/eiq-lab) and check that a device's runner answers.",
    )
    commands = parser.add_subparsers(dest="targets_command", metavar="COMMAND", required=True)

    add = commands.add_parser("add", help="save a target", description="Save a target: a name and its runner URI.")
    add.add_argument("name", help="the target's name (letters, digits, '.', '_', '-')")
    add.add_argument("uri", help="the runner: HOST:PORT or http://HOST:PORT/v1")
    add_flag(add, "profile", action="store_true", help="use this target for profiling")
    add_flag(add, "replace", action="store_true", help="replace a target of the same name")
    add.set_defaults(handler=_add)

    listing = commands.add_parser("list", help="list the saved targets", description="List the saved targets.")
    add_flag(listing, "json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_list)

    remove = commands.add_parser("remove", help="forget a target", description="Forget a saved target.")
    remove.add_argument("name", help="the target's name")
    remove.set_defaults(handler=_remove)

    test = commands.add_parser(
        "test",
        help="check that a target's runner answers",
        description="Ask a target's runner for its engine, version and model (GET /v1); exit 1 when it does not "
        "answer, with the reason.",
    )
    test.add_argument("name", help="the target's name")
    add_flag(test, "timeout", type=float, default=5.0, help="seconds to wait for the runner (default 5)")
    add_flag(test, "json", action="store_true", help="print the result as JSON")
    test.set_defaults(handler=_test)
