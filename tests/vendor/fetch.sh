#!/usr/bin/env bash
# Re-vendor axe-core (the accessibility checker tests/e2e/test_accessibility.py injects into
# pages) from the npm registry at a pinned version. Test-only: the site never serves it. The
# file is committed; run this only to change the version (then update AXE in that test).
set -euo pipefail
cd "$(dirname "$0")"
AXE=4.14.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$AXE" >/dev/null)
tar -xzf "$tmp/axe-core-$AXE.tgz" -C "$tmp" package/axe.min.js package/LICENSE
mv "$tmp/package/axe.min.js" "axe-core-$AXE.min.js"
mv "$tmp/package/LICENSE" "axe-core-$AXE.LICENSE"
sha256sum axe-core-*.min.js > SHA256SUMS
