"""``index``: the low-water mark that lets a scheduler cycle read only what can change."""

from ..campaign import list_campaigns
from ..errors import NotFound
from ..names import did_you_mean
from .common import influx, subcommand, warn


def register(sub) -> None:
    p = subcommand(sub, "index", index,
                   "show each campaign's low-water mark (the run from which the scheduler "
                   "reads); --rebuild computes it again from every run")
    p.add_argument("--rebuild", action="store_true",
                   help="read every run of the campaign(s) and store the mark: migrates a "
                        "campaign created before marks existed, repairs a lost one")


def index(args) -> None:
    from ..scheduler.state import definitions, read_mark, rebuild_mark
    from ..workflows import load_catalogue
    client = influx(args)
    campaigns = list_campaigns(client)
    if args.campaign is not None:
        chosen = [c for c in campaigns if c.name == args.campaign]
        if not chosen:
            raise NotFound(f"campaign {args.campaign!r} does not exist in database "
                           f"{client.db!r}" + did_you_mean(args.campaign,
                                                          [c.name for c in campaigns]))
        campaigns = chosen
    for camp in campaigns:
        if args.rebuild:
            warnings: list[str] = []
            run = rebuild_mark(client, camp, definitions(camp, load_catalogue, warnings))
            for message in warnings:
                warn(message)
            print(f"campaign {camp.name!r}: low-water mark set at run {run}")
            continue
        mark = read_mark(client, camp.name)
        if mark is None:
            print(f"campaign {camp.name!r}: no low-water mark, every scheduler cycle reads "
                  f"every run ('ecalrunctrl.py --db {client.db} -c {camp.name} index "
                  "--rebuild' creates it)")
        else:
            print(f"campaign {camp.name!r}: low-water mark at run {mark.run} (the scheduler "
                  "reads from there, and from any older run written since)")
