"""Generate the bundled run catalogue ``ecaljenkins/data/runs.csv``.

The catalogue stands in for CMS OMS when no OMS access exists (tests, demo,
laptops). It is generated once, deterministically, so that it looks like 2022
data taking: real era boundaries, fills holding several runs, some local/MiniDAQ
runs, and the two most recent runs still open. Run it again only to change the
catalogue on purpose: ``python bench/make_runs_catalogue.py``.
"""

import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "ecaljenkins" / "data" / "runs.csv"
COLUMNS = ("run_number", "fill_number", "era", "sequence", "start_time", "end_time",
           "stable_beams", "lumisections", "b_field", "l1_menu", "hlt_key",
           "cms_recorded_lumi")
LUMISECTION_S = 23.31

# era, first run, last run, first fill, last fill, runs to draw, earliest start, menu version
ERAS = (
    ("Run2022B", 355100, 355769, 7920, 7963, 45, "2022-07-05T08:00:00", "v1_2_0"),
    ("Run2022C", 355862, 357482, 7966, 8116, 80, "2022-07-17T06:00:00", "v1_2_0"),
    ("Run2022D", 357538, 357900, 8118, 8151, 40, "2022-08-02T12:00:00", "v1_3_0"),
    ("Run2022E", 359022, 360331, 8210, 8311, 60, "2022-08-30T09:00:00", "v1_3_0"),
    ("Run2022F", 360390, 362167, 8313, 8489, 55, "2022-09-27T07:00:00", "v1_4_0"),
    # kept small on purpose: a demo injects the whole era in a second
    ("Run2022G", 362433, 362760, 8490, 8496, 24, "2022-11-16T10:00:00", "v1_4_0"),
)


def fill_sizes(rng: random.Random, total: int) -> list[int]:
    """Split ``total`` runs into fills of 2 to 8 runs."""
    sizes = []
    while total > 0:
        size = min(total, rng.randint(2, 8))
        if total - size == 1:
            size += 1
        sizes.append(size)
        total -= size
    return sizes


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(rng: random.Random) -> list[dict]:
    rows = []
    total = sum(era[5] for era in ERAS)
    clock = datetime(2022, 7, 1, tzinfo=timezone.utc)
    for era, first, last, first_fill, last_fill, count, earliest, menu in ERAS:
        clock = max(clock, datetime.fromisoformat(earliest).replace(tzinfo=timezone.utc))
        numbers = sorted({first, last} | set(rng.sample(range(first + 1, last), count - 2)))
        sizes = fill_sizes(rng, count)
        fills = sorted({first_fill} | set(rng.sample(range(first_fill + 1, last_fill + 1),
                                                     len(sizes) - 1)))
        runs = iter(numbers)
        for fill, size in zip(fills, sizes):
            clock += timedelta(hours=rng.uniform(2, 10))
            for _ in range(size):
                # the still open runs are physics runs, what a prompt campaign waits for
                local = rng.random() < 0.15 and len(rows) < total - 2
                rows.append(make_run(rng, next(runs), fill, era, menu, clock, local))
                clock = datetime.fromisoformat(rows[-1]["end_time"].replace("Z", "+00:00"))
                clock += timedelta(minutes=rng.uniform(2, 20))
    for row in rows[-2:]:
        row["end_time"] = ""
    return rows


def make_run(rng, number, fill, era, menu, start, local) -> dict:
    sequence = rng.choice(("LOCAL-RUN", "LOCAL-RUN", "MINIDAQ")) if local else "GLOBAL-RUN"
    seconds = rng.uniform(600, 3600) if local else rng.uniform(1200, 8 * 3600)
    stable = not local and rng.random() < 0.8
    lumi = "" if local else (round(seconds * rng.uniform(0.008, 0.02), 3) if stable else 0.0)
    if local:
        hlt_key = f"/cdaq/special/2022/ECAL/{'MiniDAQ' if sequence == 'MINIDAQ' else 'Laser'}/V3"
        l1_menu = "L1Menu_Cosmics2022_v1_0_0"
    else:
        hlt_key = f"/cdaq/physics/Run2022/2e34/{menu.replace('_', '.')}/HLT/V{rng.randint(1, 9)}"
        l1_menu = f"L1Menu_Collisions2022_{menu}"
    return {
        "run_number": number, "fill_number": fill, "era": era, "sequence": sequence,
        "start_time": stamp(start), "end_time": stamp(start + timedelta(seconds=seconds)),
        "stable_beams": "true" if stable else "false",
        "lumisections": int(seconds / LUMISECTION_S),
        "b_field": round(rng.gauss(3.8, 0.0008), 4),
        "l1_menu": l1_menu, "hlt_key": hlt_key, "cms_recorded_lumi": lumi,
    }


def main() -> None:
    rows = generate(random.Random(2022))
    with OUTPUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
