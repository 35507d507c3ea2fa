# One raftq node per container; docker-compose.yml runs three.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY raftq ./raftq
RUN pip install --no-cache-dir .
EXPOSE 7100 8100
ENTRYPOINT ["raftq"]
CMD ["node", "--config", "/etc/raftq/node.yaml"]
