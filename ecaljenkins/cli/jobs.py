"""``jobs``: render the Jenkins jobs of the campaigns, validate them, push them."""

from .common import influx, split_list, subcommand


def register(sub) -> None:
    p = subcommand(sub, "jobs", jobs_, "render and validate the Jenkins jobs of every campaign "
                   "of the database (or of --campaign), and push them with --update")
    p.add_argument("--output", metavar="DIR",
                   help="where to write them (default: $ECAL_JOBS_DIR or jobs/)")
    p.add_argument("--update", action="store_true",
                   help="create/reconfigure on Jenkins the jobs that differ from what is "
                        "rendered (JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN, or --jenkins-ini)")
    p.add_argument("--force", action="store_true",
                   help="with --update: push every job, even those Jenkins has as rendered")
    p.add_argument("--check", action="store_true",
                   help="first ask Jenkins whether the plugins the jobs use are installed, "
                        "and fail naming the missing ones")
    p.add_argument("--scheduler", nargs="?", const="", metavar="DB1,DB2",
                   help="also render the scheduler job (cron, every 10 minutes) for these "
                        "databases (default: --db); the Jenkinsfile does the same as a pipeline")
    p.add_argument("--notify", default="", metavar="EMAIL,EMAIL",
                   help="with --scheduler: mail these recipients when a cycle fails or "
                        "needs attention (the Jenkinsfile's NOTIFY)")
    p.add_argument("--jenkins-ini", metavar="PATH",
                   help="a jenkins_jobs.ini with the Jenkins server (see jenkins_jobs.ini.example)")


def jobs_(args) -> None:
    from ..jobsync import render_all  # Jenkins Job Builder is slow to import: only here
    if args.check:
        check_plugins(args.settings)
    client = influx(args)
    scheduler = None if args.scheduler is None else split_list([args.scheduler or client.db])
    results = render_all(client, args.campaign, args.output, args.update, args.jenkins_ini,
                         scheduler, args.settings, args.force, args.notify)
    for result in results:
        if result.path is None:
            print(f"{result.campaign}: no job (no task with a workflow definition)")
            continue
        pushed = f", {len(result.pushed)} pushed to Jenkins" if args.update else ""
        print(f"{result.campaign}: {result.path} ({len(result.jobs)} job(s) validated{pushed})")
        for task in result.undefined:
            print(f"{result.campaign}: active task {task!r} has no workflow definition: no job")


def check_plugins(settings) -> None:
    """Say which plugins the jobs need Jenkins lacks; a JenkinsError when any is missing."""
    from ..errors import JenkinsError
    from ..jenkins_server import REQUIRED_PLUGINS, missing_plugins
    missing = missing_plugins(settings)
    for name, why in missing.items():
        print(f"missing Jenkins plugin {name}: needed for {why}")
    if missing:
        raise JenkinsError(f"Jenkins lacks the plugins {', '.join(missing)}: install them "
                           "(Manage Jenkins > Plugins) and enable them")
    print(f"Jenkins has the {len(REQUIRED_PLUGINS)} plugins the jobs use: "
          f"{', '.join(REQUIRED_PLUGINS)}")
