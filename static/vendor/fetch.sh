#!/usr/bin/env bash
# Re-vendor htmx and its websocket/SSE extensions from the npm registry at pinned versions.
# The files are committed; run this only to change a version (then update templates/base.html).
set -euo pipefail
cd "$(dirname "$0")"
HTMX=2.0.11
WS=2.0.4
SSE=2.2.4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$HTMX" "htmx-ext-ws@$WS" "htmx-ext-sse@$SSE" >/dev/null)
tar -xzf "$tmp/htmx.org-$HTMX.tgz" -C "$tmp" package/dist/htmx.min.js && mv "$tmp/package/dist/htmx.min.js" "htmx-$HTMX.min.js"
tar -xzf "$tmp/htmx-ext-ws-$WS.tgz" -C "$tmp" package/ws.js && mv "$tmp/package/ws.js" "htmx-ext-ws-$WS.js"
tar -xzf "$tmp/htmx-ext-sse-$SSE.tgz" -C "$tmp" package/sse.js && mv "$tmp/package/sse.js" "htmx-ext-sse-$SSE.js"
sha256sum htmx-*.js > SHA256SUMS
