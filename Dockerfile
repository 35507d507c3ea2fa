# One raftq node (or worker) per container; docker-compose.yml runs three nodes
# and a worker. The process runs as an unprivileged user; /data (a volume) is
# the only place it writes.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY raftq ./raftq
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home raftq \
    && mkdir -p /data && chown raftq:raftq /data
USER raftq:raftq
# 7100 Raft (never publish it), 8100 HTTP.
EXPOSE 7100 8100
# Ready: this node knows a leader and has applied its commit index, else why
# not; over HTTPS when the config has a certificate.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["raftq", "ready", "--config", "/etc/raftq/node.yaml"]
ENTRYPOINT ["raftq"]
CMD ["node", "--config", "/etc/raftq/node.yaml"]
