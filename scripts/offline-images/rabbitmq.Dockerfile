# Stand-in for rabbitmq:4-management from Debian's rabbitmq-server: trixie gives 4.0.5 (Erlang 27),
# bookworm 3.10. Like the official image it reads /etc/rabbitmq/{rabbitmq.conf,conf.d/,
# enabled_plugins}, keeps its data in /var/lib/rabbitmq, names the node rabbit@<hostname>, and
# runs the server in the foreground with its log on stdout.
ARG SUITE=trixie
FROM local/debian:${SUITE}
# The package's postinst writes an Erlang cookie into the image: every container would share it.
# It is deleted; the entrypoint takes one from a secret, else the server makes a random one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && rm -f /var/lib/rabbitmq/.erlang.cookie \
 && mkdir -p /etc/rabbitmq/conf.d \
 && printf 'loopback_users.guest = false\nlog.console = true\nlog.file = false\n' \
      >/etc/rabbitmq/conf.d/10-defaults.conf \
 && echo '[rabbitmq_management,rabbitmq_prometheus].' >/etc/rabbitmq/enabled_plugins \
 && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# HOME is where the server and the CLI tools (docker exec ... rabbitmqctl) find the cookie.
ENV HOME=/var/lib/rabbitmq \
    PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
USER rabbitmq
WORKDIR /var/lib/rabbitmq
VOLUME /var/lib/rabbitmq
EXPOSE 4369 5671 5672 15672 15692 25672
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
