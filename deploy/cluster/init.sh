#!/bin/sh
# One-shot (the cluster-init service): a replica of the history stream on every node (it was
# declared by whichever node imported the definitions first, before the others joined).
set -eu
node=rabbit@rabbitmq
rabbitmqctl -n "$node" -q await_online_nodes 3 --timeout 120
for member in rabbit@rabbitmq rabbit@rabbitmq-2 rabbit@rabbitmq-3; do
  # An existing member is refused: that is fine, the end state is what counts.
  rabbitmq-streams -n "$node" -q add_replica logs.history "$member" 2>/dev/null || true
done
members=$(rabbitmq-streams -n "$node" -q stream_status logs.history --formatter json \
  | grep -o '"node":' | wc -l)
echo "logs.history has $members members"
[ "$members" -eq 3 ]
