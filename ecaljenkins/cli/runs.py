"""``inject`` and ``runs``: the runs of a campaign."""

import sys

from ..registry import open_registry, parse_range, parse_run, parse_runs
from ..schema import STATUSES
from ..campaign import CONFIRM_ABOVE
from .common import print_json, print_table, runctrl, subcommand


def register(sub) -> None:
    p = subcommand(sub, "inject", inject, "add runs to a campaign (status new for each task)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--runs", metavar="RUNS",
                      help="comma separated list of run(s) to inject in the campaign")
    what.add_argument("--range", dest="rrange", metavar="RRANGE",
                      help="define a range of runs to be injected (min,max)")
    what.add_argument("--era", metavar="ERA",
                      help="inject all runs belonging to a given CMS data acquisition era")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would be injected; write nothing")
    p.add_argument("--yes", action="store_true",
                   help=f"confirm an injection of more than {CONFIRM_ABOVE} runs")
    p = subcommand(sub, "runs", runs, "list the runs of a campaign and their task statuses")
    p.add_argument("--task", help="only runs having this task")
    p.add_argument("--status", choices=[str(s) for s in STATUSES],
                   help="only runs where the task (or any task) has this status")
    p.add_argument("--json", action="store_true",
                   help="machine-readable output, with each task's attempt, reason, build "
                        "URL or log and output")
    p = subcommand(sub, "history", history,
                   "what happened to a run: its tasks now, every report of their builds, "
                   "and who changed the configuration of its tasks when")
    p.add_argument("--run", required=True, help="the run")
    p.add_argument("--task", "-t", help="only this task")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rwriting [{'#' * filled}{'.' * (width - filled)}] {done}/{total} points")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def inject(args) -> None:
    ctrl = runctrl(args)
    registry = open_registry(settings=args.settings)
    if args.runs is not None:
        found = registry.runs(parse_runs(args.runs))
    elif args.rrange is not None:
        found = registry.run_range(*parse_range(args.rrange))
    else:
        found = registry.era(args.era)
    summary = ctrl.inject(found, progress=_progress if sys.stderr.isatty() else None,
                          dry_run=args.dry_run, max_runs=None if args.yes else CONFIRM_ABOVE)
    verb = "would be injected" if args.dry_run else "injected"
    print(f"campaign {ctrl.campaign!r}: {len(summary.injected)} run(s) {verb}"
          + (f" ({summary.points} points)" if args.dry_run else "")
          + f", {len(summary.unmatched)} matched no run type, "
          f"{len(summary.present)} already present")
    if args.dry_run and summary.injected:
        first, last = summary.injected[0], summary.injected[-1]
        print(f"dry run: nothing written; runs {first} to {last}")


def runs(args) -> None:
    rows = runctrl(args).runs(args.task, args.status, details=args.json)
    if args.json:
        print_json([{"run": r.run, "fill": r.fill, "era": r.era, "tasks": r.tasks,
                     "details": r.details} for r in rows])
        return
    tasks = sorted({t for r in rows for t in r.tasks}) if not args.task else [args.task]
    print_table(["run", "fill", "era", *tasks],
                [[r.run, r.fill, r.era, *(r.tasks.get(t, "-") for t in tasks)] for r in rows])


def history(args) -> None:
    from ..history import run_history
    from ..scheduler.clock import utc
    from .status import one_line
    doc = run_history(runctrl(args), parse_run(args.run), args.task)
    if args.json:
        print_json(doc)
        return
    print(f"run {doc['run']} of campaign {doc['campaign']!r}: fill {doc['fill']}, era "
          f"{doc['era']}, run types {','.join(doc['rtypes']) or '-'}")
    print_table(["task", "status", "attempt", "reason", "build or log", "output"],
                [[task, d["status"], d["attempt"], one_line(d["reason"] or "-"),
                  one_line(d["url"] or d["log"] or "-", 200), one_line(d["output"] or "-", 200)]
                 for task, d in doc["tasks"].items()])
    print()
    print_table(["time", "what", "detail"],
                [[utc(entry["time"] / 1e9), entry["what"], one_line(_event(entry), 200)]
                 for entry in doc["history"]])


def _event(entry: dict) -> str:
    """One line for a history entry: a build's report or a configuration change."""
    if entry["what"] == "build":
        parts = [entry["task"], entry["status"]]
        if entry.get("build"):
            parts.append(f"#{entry['build']}")
        parts += [entry[key] for key in ("reason", "url", "log", "output") if entry.get(key)]
        return " ".join(map(str, parts))
    if entry["what"] == "workflow":
        return f"{entry['task']}: workflow definition recorded by {entry['user']}"
    change = "; ".join(f"{verb} {','.join(entry[key])}" for verb, key in
                       (("added", "added"), ("removed", "removed")) if entry[key])
    return f"run type {entry['rtype']} ({entry['event']}): {change} by {entry['user']}"
