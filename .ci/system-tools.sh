#!/bin/sh
# Install the Debian packages behind the commands given as command=package pairs, for those
# commands that are not on PATH yet. Needs root (or sudo) when something is missing.
set -eu
missing=""
for pair in "$@"; do
  cmd=${pair%%=*}; pkg=${pair#*=}
  command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
