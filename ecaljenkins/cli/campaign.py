"""``create`` and ``list``: campaigns of a database."""

from ..campaign import KINDS, list_campaigns, run_counts
from ..registry import parse_run
from .common import influx, print_json, print_table, runctrl, subcommand


def register(sub) -> None:
    p = subcommand(sub, "create", create, "create a new campaign (run type 'all', no task)")
    p.add_argument("--kind", choices=KINDS, default="rereco",
                   help="rereco: runs are injected; prompt: runs are fetched from the "
                        "registry as they arrive (default: rereco)")
    p.add_argument("--description", default="", help="one line saying what it is for")
    p.add_argument("--start-run", metavar="RUN",
                   help="prompt: fetch the runs from this one on (default: after the first "
                        "run you inject)")
    p = subcommand(sub, "list", list_, "list the campaigns of the database")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def create(args) -> None:
    start = parse_run(args.start_run) if args.start_run is not None else None
    camp = runctrl(args).create(args.kind, args.description, start)
    print(f"created {camp.kind} campaign {camp.name!r} in database {args.db or 'default'!r} "
          f"with run type 'all' (global runs, no task yet)")
    if camp.kind != "prompt":
        return
    if start is None:
        print("each schedule cycle fetches its closed runs from the run registry "
              "(ECAL_RUN_REGISTRY) after the first run injected: inject it (inject --runs R), "
              "or create the campaign with --start-run R")
    else:
        print(f"each schedule cycle fetches its runs from {start} on from the run registry "
              "(ECAL_RUN_REGISTRY), as they close")


def list_(args) -> None:
    client = influx(args)
    campaigns, counts = list_campaigns(client), run_counts(client)
    rows = [{"campaign": c.name, "kind": c.kind, "active": c.active,
             "tasks": sorted(c.active_tasks), "runs": counts.get(c.name, 0),
             "description": c.description} for c in campaigns]
    if args.json:
        print_json(rows)
        return
    print_table(["campaign", "kind", "state", "runs", "active tasks", "description"],
                [[r["campaign"], r["kind"], "active" if r["active"] else "inactive",
                  r["runs"], ",".join(r["tasks"]) or "-", r["description"]] for r in rows])
