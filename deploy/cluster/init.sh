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
  # Run on the member itself: a stream command makes the node it runs on a member of the
  # stream coordinator too. Without that, the coordinator keeps only the nodes that ran when
  # the stream was first declared, and losing one of two of them stops every publish to the
  # stream ("Stream coordinator unavailable"). An existing replica is refused: that is fine.
  rabbitmq-streams -n "$member" -q add_replica logs.history "$member" 2>/dev/null || true
done
voters() {
  rabbitmq-diagnostics -n "$node" -q coordinator_status --formatter json 2>/dev/null \
    | grep -o '"voter"' | wc -l
}
tries=0
while [ "$(voters)" -lt 3 ] && [ "$tries" -lt 60 ]; do  # a new member takes a moment to join
  tries=$((tries + 1))
  sleep 1
done
count=$(members)
voters=$(voters)
echo "logs.history has $count members; the stream coordinator has $voters"
[ "$count" -eq 3 ] && [ "$voters" -eq 3 ]
