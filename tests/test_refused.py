"""Input a campaign must refuse (issue 11): one line, exit 2, the database unchanged.

Tasks no workflow defines, tasks whose dependency is active nowhere (removing a
dependency its dependent still needs is only warned about), filters an
operator mistyped or that name what the run registry does not have, and campaign
names differing only by case. ``--allow-undefined`` keeps a task whose workflow
is defined later.
"""

import pytest

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.cli import runctrl
from ecaljenkins.errors import InputError
from ecaljenkins.filters import Filter
from ecaljenkins.registry import open_registry

from fixtures.influx import dump

CATALOGUE = """
ee-reco:
  command: echo reco
ee-calib:
  command: echo calib
  depends_on: [ee-reco]
"""


@pytest.fixture
def campaign(client, env, tmp_path, monkeypatch):
    """Campaign ``rr2022d`` (no task yet) and a catalogue with a dependent pair."""
    path = tmp_path / "workflows.yaml"
    path.write_text(CATALOGUE)
    monkeypatch.setenv("ECAL_WORKFLOWS", str(path))
    monkeypatch.chdir(tmp_path)
    RunCtrl(client, "rr2022d").create()
    return RunCtrl(client, "rr2022d")


def main(capsys, *args):
    status = runctrl.main(["-c", "rr2022d", *args])
    out, err = capsys.readouterr()
    return status, out, err


CASES = [
    (["rtype-update", "--add", "ee-rec"],
     "task 'ee-rec' has no workflow definition in the catalogue nor in the campaign "
     "(did you mean 'ee-reco'?)"),
    (["rtype-update", "--add", "ee-calib"],
     "task 'ee-calib' depends on 'ee-reco', active in no run type of campaign 'rr2022d'"),
    (["rtype-create", "--type", "x", "--filter", "fill >= 8000", "--add", "ee-calib"],
     "task 'ee-calib' depends on 'ee-reco'"),
    (["rtype-create", "--type", "x", "--filter", "fill >== 8000"],
     "invalid filter 'fill >== 8000': '>==' is not an operator after 'fill' "
     "(did you mean '>='?)"),
    (["rtype-create", "--type", "x", "--filter", "fill >>> 8000"],
     "'>>>' is not an operator"),
    (["rtype-create", "--type", "x", "--filter", "fill =< 8000"], "(did you mean '<='?)"),
    (["rtype-create", "--type", "x", "--filter", "fill => 8000"], "(did you mean '>='?)"),
    (["rtype-create", "--type", "x", "--filter", "fill = 8000"], "(did you mean '=='?)"),
    (["rtype-create", "--type", "x", "--filter", "fill >= 8000 9000"],
     "unexpected '9000' after the value"),
    (["rtype-create", "--type", "x", "--filter", "lumi >= 5"],
     "invalid filter 'lumi >= 5': unknown attribute 'lumi'"),
    (["rtype-create", "--type", "x", "--filter", "lumisections >= abc"],
     "'lumisections' is number, not text ('abc')"),
    (["rtype-create", "--type", "x", "--filter", "stable_beams > true"],
     "'stable_beams' is true or false, use == or !="),
    (["rtype-create", "--type", "x", "--filter", "era == 2022"],
     "'era' is text, not number (2022) (quote it to compare text)"),
    (["rtype-update", "--filter", "sequence == GLOBAL-RUN", "--filter", "b_field > high"],
     "'b_field' is number, not text ('high')"),
    (["create", "-c", "RR2022D"],
     "campaign 'rr2022d' already exists in database"),
]


@pytest.mark.parametrize("args, words", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_refused_in_one_line_writing_nothing(campaign, influxd, db, capsys, args, words):
    before = dump(influxd, db)
    status, out, err = main(capsys, *args)
    assert status == 2, (out, err)
    assert words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert dump(influxd, db) == before


def test_allow_undefined_keeps_a_task_defined_later(campaign, capsys):
    status, _, err = main(capsys, "rtype-update", "--add", "ee-rec", "--allow-undefined")
    assert status == 0 and "task 'ee-rec' has no workflow definition" in err, err
    status, _, err = main(capsys, "rtype-update", "--add", "ee-calib", "--allow-undefined")
    assert status == 0, err
    assert campaign.info().active_tasks == {"ee-rec", "ee-calib"}


def test_a_dependency_added_with_its_dependent_is_accepted(campaign, capsys):
    status, _, err = main(capsys, "rtype-update", "--add", "ee-calib", "ee-reco")
    assert status == 0, err
    assert campaign.info().rtypes["all"].tasks == ("ee-calib", "ee-reco")
    status, _, err = main(capsys, "rtype-create", "--type", "late", "--filter",
                          "fill >= 8000", "--add", "ee-calib")
    assert status == 0, err


def test_good_filters_parse_and_match_as_typed(campaign, capsys):
    registry = open_registry()
    status, _, err = main(capsys, "rtype-create", "--type", "sb", "--filter",
                          "stable_beams == true", "--filter", "era in 'Run2022C', Run2022D",
                          "--filter", "l1_menu ~ 'v1_[0-9]'", "--filter", "fill>=8000")
    assert status == 0, err
    rtype = campaign.info().rtypes["sb"]
    assert [f.text for f in rtype.filters] == [
        "stable_beams == true", "era in 'Run2022C',Run2022D", "l1_menu ~ 'v1_[0-9]'",
        "fill >= 8000"]
    runs = registry.run_range(355000, 362000)
    chosen = [r for r in runs if rtype.matches(r)]
    assert chosen and all(r.era in ("Run2022C", "Run2022D") and r.attrs["stable_beams"]
                          and r.fill >= 8000 for r in chosen)
    assert len(chosen) < len(runs)


def test_an_oms_registry_knows_the_oms_attributes():
    from ecaljenkins.registry import OMS_ATTRIBUTES
    Filter.parse("stable_beam == true").check_against(OMS_ATTRIBUTES)
    with pytest.raises(InputError, match="unknown attribute 'lumi'"):
        Filter.parse("lumi > 1").check_against(OMS_ATTRIBUTES)


def test_removing_a_dependency_its_dependent_still_needs_warns(campaign, capsys):
    """Not refused: the seed's page winds a campaign down run type by run type."""
    status, _, err = main(capsys, "rtype-update", "--add", "ee-calib", "ee-reco")
    assert status == 0, err
    status, _, err = main(capsys, "rtype-create", "--type", "late", "--filter",
                          "fill >= 8000", "--add", "ee-reco")
    assert status == 0, err
    # still active in run type late: the dependent is served, nothing to say
    status, _, err = main(capsys, "rtype-update", "--remove", "ee-reco")
    assert (status, err) == (0, ""), err
    status, out, err = main(capsys, "rtype-update", "--type", "late", "--remove", "ee-reco")
    assert status == 0 and "removed ee-reco" in out, err
    assert err.strip() == (
        "warning: task 'ee-calib' depends on 'ee-reco', now active in no "
        "run type of campaign 'rr2022d': its runs wait until 'ee-reco' is added again "
        "(remove 'ee-calib' too to stop them)")
    status, _, err = main(capsys, "rtype-update", "--remove", "ee-calib")
    assert (status, err) == (0, "") and campaign.info().active_tasks == set(), err
