#!/bin/sh
# One-shot (compose service / swarm job cluster-init): a replica of the history stream on every
# node (it was declared by whichever node imported the definitions first, before the others
# joined). Every wait is bounded; a failure exits non-zero and the orchestrator runs it again.
set -eu
node=rabbit@rabbitmq
rabbitmqctl -n "$node" -q await_online_nodes 3 --timeout 120
members() {
  rabbitmq-streams -n "$node" -q stream_status logs.history --formatter json 2>/dev/null \
    | grep -o '"node":' | wc -l
}
# Right after the nodes come up the stream may still be starting (no members reported yet).
tries=0
while [ "$(members)" -eq 0 ] && [ "$tries" -lt 60 ]; do
  tries=$((tries + 1))
  sleep 1
done
for member in rabbit@rabbitmq rabbit@rabbitmq-2 rabbit@rabbitmq-3; do
  # An existing member is refused: that is fine, the end state is what counts.
  rabbitmq-streams -n "$node" -q add_replica logs.history "$member" 2>/dev/null || true
done
count=$(members)
echo "logs.history has $count members"
[ "$count" -eq 3 ]
