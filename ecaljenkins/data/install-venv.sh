#!/bin/sh
# Install ecaljenkins VERSION into a virtual environment kept between builds, once
# per version, and print its path. Run by the Jenkinsfile, the scheduler job and
# every generated workflow job, so the scheduler and the agents run one version.
#
#   sh install-venv.sh VERSION
#   ECAL_VENV_ROOT   where the venvs are kept (default $HOME/.cache/ecaljenkins)
#   ECAL_WHEELHOUSE  a folder of wheels pip looks in besides its configured index
#                    (the Jenkinsfile puts the wheel of its checkout there)
#
# A venv is complete once its .installed stamp exists; builds of one agent
# installing at the same time wait for each other (flock), and a half-made venv
# of an interrupted install is made again.
set -eu
version=${1:?usage: install-venv.sh VERSION}
root=${ECAL_VENV_ROOT:-$HOME/.cache/ecaljenkins}
venv=$root/$version
if [ ! -f "$venv/.installed" ]; then
    mkdir -p "$root"
    (
        flock 9
        if [ ! -f "$venv/.installed" ]; then
            rm -rf "$venv"
            python3 -m venv "$venv" >&2
            if [ -n "${ECAL_WHEELHOUSE:-}" ]; then
                "$venv/bin/pip" install --quiet --find-links "$ECAL_WHEELHOUSE" \
                    "ecaljenkins==$version" >&2
            else
                "$venv/bin/pip" install --quiet "ecaljenkins==$version" >&2
            fi
            echo "$version" > "$venv/.installed"
        fi
    ) 9>"$root/.$version.lock"
fi
echo "$venv"
