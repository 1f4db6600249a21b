#!/usr/bin/env bash
# Every speed target in one sequence, for a quiet machine: in-process
# go test benchmarks, then kumo bench scenarios through HTTP. Results go
# to $OUT (default: a new temporary directory): gotest.txt, kumobench.txt
# and one JSON file per kumo bench scenario. Takes about 7 minutes on 2 cores.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-$(mktemp -d)}
export KUMO_TEST_POSTGRES_DSN=${KUMO_TEST_POSTGRES_DSN:-}  # set it for the PostgreSQL scheduler figures
echo "results in $out"
go build -o $out/kumo ./cmd/kumo
log() { echo "== $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $*"; }
{
log network lists
go test -run X -bench 'ListPorts1000Of10000|ListSecurityGroups1000|ListPorts1000$' -benchtime 40x ./internal/network/
log compute in-process
go test -run X -bench 'ServersDetail1000' -benchtime 100x ./internal/compute/
go test -run X -bench 'BootDelete' -benchtime 1000x ./internal/compute/
log scheduler
go test -run X -bench 'Schedule' -benchtime 3s ./internal/compute/scheduler/
log placement
go test -run X -bench 'AllocationCandidates' -benchtime 30x ./internal/placement/
log image
go test -run X -bench 'Upload|Download|List1000' ./internal/image/
} > $out/gotest.txt 2>&1
cd $out
{
log kumo bench boot-delete
./kumo bench boot-delete --json boot.json
log kumo bench server-list
./kumo bench server-list --population 1000,10000,100000 --json list.json
log kumo bench scale
./kumo bench scale --hosts 1000 --count 200 --json scale.json
log kumo bench idle
./kumo bench idle --json idle.json
log kumo bench image
./kumo bench image --json image.json
log kumo bench sg/port
./kumo bench port-create --json port.json
./kumo bench sg-rule-create --json sg.json
} > $out/kumobench.txt 2>&1
log done >> $out/kumobench.txt
