#!/bin/sh
# Install the Debian packages the suite or the benchmarks drive, when they are missing. Each
# argument is either command=package (installed when the command is not on PATH) or a bare
# package name (installed when dpkg does not know it: modules and data with no command of their
# own). Needs root (or sudo) when something is missing.
set -eu
missing=""
for item in "$@"; do
  case "$item" in
    *=*) cmd=${item%%=*}; pkg=${item#*=}
         command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg" ;;
    *)   dpkg-query -W -f '${Status}' "$item" 2>/dev/null | grep -q 'ok installed' \
           || missing="$missing $item" ;;
  esac
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
