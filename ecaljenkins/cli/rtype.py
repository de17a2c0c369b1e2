"""``rtype-create``, ``rtype-update``, ``rtype-list``: run types and their active tasks."""

from .common import print_json, print_table, runctrl, split_list, subcommand, warn


def register(sub) -> None:
    p = subcommand(sub, "rtype-create", create, "add a run type to a campaign")
    p.add_argument("--type", "-t", dest="rtype", required=True, help="run type name")
    p.add_argument("--filter", action="append", required=True, metavar="EXPR",
                   help="'ATTR OP VALUE', OP one of == != < <= > >= ~ in; repeat to AND")
    p.add_argument("--add", nargs="+", default=[], metavar="TASK", help="active tasks")
    add_job_options(p)
    p = subcommand(sub, "rtype-update", update,
                   "add/remove active tasks of a run type, or replace its filters")
    p.add_argument("--type", "-t", dest="rtype", default="all",
                   help="run type name (default: all)")
    p.add_argument("--add", nargs="+", default=[], metavar="TASK",
                   help="tasks to activate (space or comma separated)")
    p.add_argument("--remove", nargs="+", default=[], metavar="TASK",
                   help="tasks to deactivate (space or comma separated)")
    p.add_argument("--filter", action="append", metavar="EXPR",
                   help="replace the filters (repeat to AND)")
    p.add_argument("--backfill", action="store_true",
                   help="also give added tasks to the matching runs already in the campaign")
    p.add_argument("--refresh", action="store_true",
                   help="record the catalogue's current definition of the run type's tasks "
                        "(a campaign otherwise keeps the definition it started with)")
    add_job_options(p)
    p = subcommand(sub, "rtype-list", list_, "list the run types, filters and active tasks")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_job_options(parser) -> None:
    parser.add_argument("--allow-undefined", action="store_true",
                        help="accept a task that no workflow defines yet, or that depends on "
                             "a task active nowhere (warned, and reported by schedule)")
    parser.add_argument("--workflows", metavar="PATH",
                        help="workflow catalogue (default: $ECAL_WORKFLOWS or jobs/workflows.yaml)")
    parser.add_argument("--output", metavar="DIR",
                        help="where the Jenkins jobs are rendered (default: $ECAL_JOBS_DIR or jobs/)")


def create(args) -> None:
    from ..jobsync import create_rtype
    ctrl = runctrl(args)
    result = create_rtype(ctrl, args.rtype, args.filter, split_list(args.add), args.workflows,
                          args.output, args.settings, args.allow_undefined)
    for message in result.warnings:
        warn(message)
    print(f"created run type {args.rtype!r} in campaign {ctrl.campaign!r}")
    report_jobs(result.jobs)


def update(args) -> None:
    from ..jobsync import update_rtype
    ctrl = runctrl(args)
    result = update_rtype(ctrl, args.rtype, split_list(args.add), split_list(args.remove),
                          args.filter, args.backfill, args.refresh, args.workflows,
                          args.output, args.settings, args.allow_undefined)
    for message in result.warnings:
        warn(message)
    change = result.change
    parts = [f"added {','.join(change.added)}" if change.added else "",
             f"removed {','.join(change.removed)}" if change.removed else "",
             "filters replaced" if args.filter else "",
             f"backfilled {change.backfilled} run tasks" if args.backfill else "",
             f"recorded the catalogue's definition of {','.join(change.refreshed)}"
             if change.refreshed else ""]
    summary = "; ".join(p for p in parts if p) or "nothing changed"
    print(f"run type {args.rtype!r} of campaign {ctrl.campaign!r}: {summary}")
    report_jobs(result.jobs)


def report_jobs(result) -> None:
    """Say what happened to the Jenkins jobs, and how to push them when it did not."""
    if result is None:
        return
    if result.path is None:
        print("no Jenkins job: none of the campaign's tasks has a workflow definition")
        return
    print(f"jobs written to {result.path} ({len(result.jobs)} job(s), validated)")
    if not result.jenkins:
        print("Jenkins not configured (JENKINS_URL unset): files only; push them with "
              "'ecalrunctrl.py jobs --update'")
    for name in result.pushed:
        print(f"pushed {name}")
    for name in result.disabled:
        print(f"disabled {name}")


def list_(args) -> None:
    camp = runctrl(args).info()
    rtypes = [{"rtype": rt.name, "filters": [f.text for f in rt.filters],
               "tasks": list(rt.tasks)} for rt in camp.rtypes.values()]
    if args.json:
        print_json({"campaign": camp.name, "active": camp.active, "rtypes": rtypes})
        return
    print_table(["run type", "filters", "active tasks"],
                [[r["rtype"], " AND ".join(r["filters"]) or "(all runs)",
                  ",".join(r["tasks"]) or "-"] for r in rtypes])
    if not camp.active:
        print(f"campaign {camp.name!r} has no active task: it is not processed")
