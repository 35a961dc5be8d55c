#!/bin/sh
# Entrypoint of the RabbitMQ stand-ins. The Erlang cookie, which every node of a cluster must
# share, comes from RABBITMQ_ERLANG_COOKIE_FILE, else the secret /run/secrets/erlang_cookie;
# without either, the one in the data volume is kept, or the server makes a random one.
set -eu
source_file="${RABBITMQ_ERLANG_COOKIE_FILE:-/run/secrets/erlang_cookie}"
if [ -f "$source_file" ]; then
  cookie="$HOME/.erlang.cookie"
  (umask 077 && tr -d '\r\n' <"$source_file" >"$cookie.new")
  mv -f "$cookie.new" "$cookie"
  chmod 400 "$cookie"
fi
if [ "${1:-}" = rabbitmq-server ]; then
  shift
  # Not /usr/sbin/rabbitmq-server: Debian's wrapper sends the output to a startup_log file.
  exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
