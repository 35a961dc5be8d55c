#!/bin/sh
# Puts the cluster's Erlang cookie (the compose secret erlang_cookie) where the server and the
# CLI tools read it, owner-only as Erlang demands, then runs the image's own entrypoint. Works
# for the official image (entrypoint as root) and for the offline stand-ins (as rabbitmq).
set -eu
home="${HOME:-/var/lib/rabbitmq}"
[ "$(id -u)" = 0 ] && home=/var/lib/rabbitmq
tr -d '\r\n' </run/secrets/erlang_cookie >"$home/.erlang.cookie.new"
mv -f "$home/.erlang.cookie.new" "$home/.erlang.cookie"
if [ "$(id -u)" = 0 ]; then
  chown rabbitmq:rabbitmq "$home/.erlang.cookie"
fi
chmod 400 "$home/.erlang.cookie"
exec docker-entrypoint.sh "$@"
