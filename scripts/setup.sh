#!/usr/bin/env bash
# Set up a fresh Debian machine for vqblur: system packages, a venv in .venv, the package.
# Usage: scripts/setup.sh [EXTRAS]   (EXTRAS e.g. "train,dev"; default: none = the engine only)
# Idempotent: installs only what is missing. Never lets pip pick a torch version: it is pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

# -- Debian packages: JACK + PortAudio (live path), FluidSynth + GM soundfonts, packaged recordings (data),
#    tmux (the live view's test runs it in a pseudo-terminal); with the dev extra also chromium
#    (the listening page's test renders report/listen.html in headless Chromium) --
pkgs=(jackd2 libportaudio2 libsndfile1 fluidsynth fluid-soundfont-gm timgm6mb-soundfont
      musescore-general-soundfont sonic-pi-samples hydrogen-drumkits tmux)
if [[ ",$extras," == *",dev,"* ]]; then pkgs+=(chromium); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # apt and debconf talk on stdout and stderr ("debconf: delaying package configuration, since
  # apt-utils is not installed", dpkg progress): quiet on success, the whole log on failure.
  apt_log="$(mktemp "${TMPDIR:-/tmp}/vqblur-apt.XXXXXX")"
  apt_quiet() {
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get "$@" \
        >>"$apt_log" 2>&1 </dev/null; then
      cat "$apt_log" >&2
      echo "setup: apt-get $1 failed (log above, also in $apt_log)" >&2
      exit 1
    fi
  }
  apt_quiet update -qq
  apt_quiet install -y -qq --no-install-recommends "${missing[@]}"
  rm -f "$apt_log"
fi

# -- Python venv ---------------------------------------------------------------------------------
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=".venv/.vqblur-installed-${extras:-engine}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log=.venv/pip-install.log
  pip_install() {  # quiet on success; the whole log on failure
    if ! "$VPY" -m pip install "$@" >"$log" 2>&1; then
      cat "$log" >&2
      echo "setup: pip install $* failed (log above, also in $log)" >&2
      exit 1
    fi
  }
  pip_install -q --upgrade pip
  if [[ ",$extras," == *",train,"* ]]; then
    # The CPU build of torch from this machine's disk; pinned so pip never resolves a CUDA build.
    pip_install -q "torch==2.13.0"
  fi
  spec="."
  [ -n "$extras" ] && spec=".[${extras}]"
  echo "setup: pip install -e '$spec'"
  pip_install -q -e "$spec"
  touch "$stamp"
  echo "setup: done. vqblur is in the venv: 'source .venv/bin/activate' puts it on the PATH (or type .venv/bin/vqblur)"
fi
