# Stand-in for rabbitmq:4-management: Debian's rabbitmq-server (3.10) with the management plugin.
# Like the official image it reads /etc/rabbitmq/{rabbitmq.conf,enabled_plugins} and keeps its
# data in /var/lib/rabbitmq.
FROM local/debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* \
 && printf 'loopback_users.guest = false\nlog.console = true\nlog.file = false\n' >/etc/rabbitmq/rabbitmq.conf \
 && echo '[rabbitmq_management].' >/etc/rabbitmq/enabled_plugins
USER rabbitmq
ENV HOME=/var/lib/rabbitmq
WORKDIR /var/lib/rabbitmq
VOLUME /var/lib/rabbitmq
EXPOSE 5672 15672
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
