#!/usr/bin/env bash
# Runs gophercloud's own acceptance suites (an outside yardstick no one here
# wrote) against a fresh all-in-one Kumo and prints pass/fail/skip counts
# per suite. Usage: tools/acceptance/run.sh [suite ...]
# Suites are paths under gophercloud's internal/acceptance/openstack, e.g.
# identity/v3 (default: every suite of a service Kumo serves).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(identity/v3 image/v2)

ver=$(go list -m -f '{{.Version}}' github.com/gophercloud/gophercloud/v2)
src=$(go mod download -json "github.com/gophercloud/gophercloud/v2@$ver" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$src" "$work/gophercloud" && chmod -R u+w "$work/gophercloud"

go build -o "$work/kumo" ./cmd/kumo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KUMO_ADMIN_PASSWORD=acceptance "$work/kumo" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --log-level warn >"$work/kumo.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

export OS_AUTH_URL="http://127.0.0.1:$port/v3" OS_USERNAME=admin OS_PASSWORD=acceptance \
	OS_PROJECT_NAME=admin OS_TENANT_NAME=admin OS_USER_DOMAIN_NAME=Default \
	OS_PROJECT_DOMAIN_NAME=Default OS_DOMAIN_ID=default OS_REGION_NAME=RegionOne
cd "$work/gophercloud"
# These tests fetch images from the internet, which this workplace must not
# reach (and Kumo does not fetch URLs for web-download imports).
skip='TestImageStage|TestCreateImport'
for s in "${suites[@]}"; do
	go test -count=1 -timeout 10m -tags "acceptance fixtures" -skip "$skip" -json "./internal/acceptance/openstack/$s/" >"$work/out.json" 2>&1 || true
	python3 "$root/tools/acceptance/summary.py" "$s" "$work/out.json"
done
