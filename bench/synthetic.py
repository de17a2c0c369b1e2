"""A synthetic data-taking year for the benchmark: runs, workflows and a campaign midway.

Everything is drawn from a seeded generator, so two benchmark runs measure the
same campaign. The shapes follow real CMS data taking: eras of uneven length,
fills of one to eight runs, registry attributes as OMS gives them (so the
``meta`` JSON stored at injection has its real size), and twenty tasks in five
chains of four whose last links calibrate per fill or per era.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from ecaljenkins.registry import Run
from ecaljenkins.workflows import Workflow

FIRST_RUN = 380000
FIRST_FILL = 9000
#: eras of a year and their share of its runs
ERAS = (("Run2024A", 0.04), ("Run2024B", 0.08), ("Run2024C", 0.14), ("Run2024D", 0.12),
        ("Run2024E", 0.14), ("Run2024F", 0.20), ("Run2024G", 0.18), ("Run2024H", 0.10))
CHAINS = 5
LINKS = 4
SEED = 2024


def workflows(tasks: int = 20, cap: int | None = None) -> list[Workflow]:
    """``tasks`` workflows in chains of four: reco -> two run-level steps -> calibration.

    The calibration closing a chain groups by fill, except in the last chain
    where it groups by era; ``cap`` is every task's ``max_in_flight``.
    """
    result = []
    for i in range(tasks):
        chain, link = divmod(i, LINKS)
        depends = (f"c{chain}-step{link - 1}",) if link else ()
        group = "run"
        if link == LINKS - 1:
            group = "era" if chain == CHAINS - 1 else "fill"
        result.append(Workflow(f"c{chain}-step{link}", f"echo c{chain}-step{link}",
                               depends_on=depends, group_by=group, max_retries=2,
                               retry_delay=600, max_in_flight=cap))
    return result


def runs(count: int, seed: int = SEED) -> list[Run]:
    """``count`` closed global runs, oldest first, over the eras of a year."""
    rng = random.Random(seed)
    start = datetime(2024, 4, 1, tzinfo=timezone.utc)
    bounds, total = [], 0.0
    for era, share in ERAS:
        total += share
        bounds.append((round(total * count), era))
    result = []
    number, fill, left_in_fill = FIRST_RUN, FIRST_FILL, 0
    era_index = 0
    for i in range(count):
        while i >= bounds[era_index][0]:
            era_index += 1
        if left_in_fill == 0:
            fill += rng.randint(1, 3)
            left_in_fill = rng.randint(1, 8)
        left_in_fill -= 1
        number += rng.randint(1, 4)
        lumisections = rng.randint(20, 1500)
        begin = start + timedelta(minutes=40 * i)
        end = begin + timedelta(seconds=lumisections * 23.31)
        result.append(Run.from_attrs({
            "run_number": number, "fill_number": fill, "era": bounds[era_index][1],
            "sequence": "GLOBAL-RUN", "start_time": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "stable_beams": True,
            "lumisections": lumisections, "b_field": round(rng.uniform(3.79, 3.81), 4),
            "l1_menu": "L1Menu_Collisions2024_v1_3_0",
            "hlt_key": f"/cdaq/physics/Run2024/2e34/v1.3.0/HLT/V{rng.randint(1, 9)}",
            "cms_recorded_lumi": round(lumisections * rng.uniform(0.1, 0.4), 3)}))
    return result


def progress_lines(campaign: str, numbers: list[int], flows: list[Workflow], now: float,
                   seed: int = SEED) -> tuple[list[str], dict]:
    """Line protocol moving the campaign midway through the year, and the status counts.

    Older runs are further along their chains: most of the oldest are done
    everywhere, the newest still ``new``. At the link where a run stands in a
    chain, its status is queued, running, failed (back-off over, in back-off,
    or out of retries) or still new. The points are what the scheduler and the
    build wrapper write (``schema.run_point``), built as text to set up quickly.
    """
    rng = random.Random(seed + 1)
    chains = [flows[i:i + LINKS] for i in range(0, len(flows), LINKS)]
    lines, counts = [], {}
    queue_id = build = 0
    for index, run in enumerate(numbers):
        age = 1.0 - index / max(len(numbers) - 1, 1)   # 1: oldest run, 0: newest
        for chain in chains:
            reached = min(len(chain), int(rng.random() * 0.8 + age * 6.0))
            for link, wf in enumerate(chain):
                if link < reached:
                    status, extra = "done", {"attempt": 1, "build": link + 1}
                elif link == reached and age > 0.05:
                    status, extra = _at_link(rng, now)
                else:
                    counts["new"] = counts.get("new", 0) + 1
                    continue
                if status == "queued":
                    queue_id += 1
                    extra["queue_id"] = queue_id
                elif status == "running":
                    build += 1
                    extra["build"] = build
                if status in ("queued", "running"):
                    extra["trigger"] = f'"{run:x}{link:x}{wf.task}"'
                counts[status] = counts.get(status, 0) + 1
                updated = extra.pop("updated", now)
                fields = ",".join([f'status="{status}"', f"updated={updated}"]
                                  + [f"{k}={v}i" if isinstance(v, int) else f"{k}={v}"
                                     for k, v in extra.items()])
                lines.append(f"run,campaign={campaign},task={wf.task} {fields} {run}")
    return lines, counts


def _at_link(rng: random.Random, now: float) -> tuple[str, dict]:
    """Status and fields of the task a run has reached in a chain: in flight mostly."""
    draw = rng.random()
    if draw < 0.30:
        return "queued", {"attempt": 1}
    if draw < 0.60:
        return "running", {"attempt": 1}
    if draw < 0.70:
        return "failed", {"attempt": 1, "updated": now - 7200.0}    # back-off over
    if draw < 0.78:
        return "failed", {"attempt": 2, "updated": now - 60.0}      # in back-off
    if draw < 0.82:
        return "failed", {"attempt": 3, "updated": now - 86400.0}   # out of retries
    return "new", {}
