#!/bin/sh
# apt-snapshot SNAPSHOT PACKAGE...: install the packages the image lacks, from snapshot.debian.org
# at SNAPSHOT (e.g. 20261201T000000Z), so that a rebuild gets the same versions whatever the live
# mirror holds by then. Installs nothing (and reaches no network) when every package is there.
set -eu
snapshot=$1; shift
missing=""
for package in "$@"; do
  dpkg-query -W -f '${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' \
    || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
. /etc/os-release
cat > /etc/apt/sources.list.d/snapshot.list <<LIST
deb [check-valid-until=no] http://snapshot.debian.org/archive/debian/$snapshot $VERSION_CODENAME main
deb [check-valid-until=no] http://snapshot.debian.org/archive/debian-security/$snapshot $VERSION_CODENAME-security main
LIST
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
rm -rf /var/lib/apt/lists/*
