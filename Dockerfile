# One image for the worker and the collector (`attribution worker` / `attribution collector`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY attribution ./attribution
COPY streams ./streams
COPY sql ./sql
COPY warehouse ./warehouse
COPY traffic ./traffic
COPY cli ./cli
# rocksdict: the production table store (RocksDB) for Faust.
RUN pip install '.[rocksdb]' && useradd --uid 10001 --create-home attribution \
    && mkdir -p /warehouse /state && chown attribution /warehouse /state

USER attribution
WORKDIR /state
ENTRYPOINT ["attribution"]
CMD ["--help"]
