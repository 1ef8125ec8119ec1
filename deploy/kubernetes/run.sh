#!/bin/sh
# Runs deploy/kubernetes/loadgen-shards.yaml: a start time LEAD_SECONDS ahead (time for the
# pods to be scheduled and pull the image: give more on a cold cluster), the Job, its
# reports, and the merge step.
#
#   deploy/kubernetes/run.sh [YAML]        (LEAD_SECONDS=60 OUT=dir to change the defaults)
set -eu

yaml=${1:-$(dirname "$0")/loadgen-shards.yaml}
lead=${LEAD_SECONDS:-60}
out=${OUT:-k8s-shards-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
start=@$(( $(date +%s) + lead ))

kubectl delete job echobench-loadgen --ignore-not-found
sed "s/__START_AT__/$start/" "$yaml" | kubectl apply -f -
# The window ends at the start plus warm-up and duration; give it the lead on top.
kubectl wait --for=condition=complete job/echobench-loadgen --timeout="$((lead + 600))s" || {
    echo "the Job did not complete; its pods:" >&2
    kubectl get pods -l app=echobench-loadgen >&2
    exit 1
}
shards=$(kubectl get job echobench-loadgen -o jsonpath='{.spec.completions}')
i=0
while [ "$i" -lt "$shards" ]; do
    pod=$(kubectl get pods -l "app=echobench-loadgen,batch.kubernetes.io/job-completion-index=$i" \
        -o jsonpath='{.items[0].metadata.name}')
    kubectl logs "$pod" > "$out/shard-$i.json"
    i=$((i + 1))
done
# Refuses, with one line, a shard missing, doubled or from another run.
loadgen merge "$out"/shard-*.json --json "$out/merged.json"
