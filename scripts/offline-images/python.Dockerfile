# Stand-in for python:3.x-slim, built from Debian packages (no registry needed): bookworm gives
# Python 3.11, trixie 3.13.
# The build context's certs/ holds this machine's TLS-interception CA, copied in by the script at
# build time so pip/uv work inside builds; it only ever lives in this local image.
ARG SUITE=bookworm
FROM local/debian:${SUITE}
COPY certs/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DEFAULT_TIMEOUT=180 \
    LANG=C.UTF-8
CMD ["python3"]
