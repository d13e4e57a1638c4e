# One image for the worker and the collector (`attribution worker` / `attribution collector`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer stays cached while only the
# source changes. rocksdict (extra `rocksdb`): the production table store for Faust.
COPY pyproject.toml ./
COPY deploy/requirements.py ./deploy/
RUN python deploy/requirements.py pyproject.toml > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY README.md ./
COPY schemas ./schemas
COPY attribution ./attribution
COPY streams ./streams
COPY sql ./sql
COPY warehouse ./warehouse
COPY traffic ./traffic
COPY cli ./cli
# The project itself only: every dependency is already there (--no-deps keeps it so).
RUN pip install --no-deps '.[rocksdb]' && useradd --uid 10001 --create-home attribution \
    && mkdir -p /warehouse /state && chown attribution /warehouse /state

USER attribution
WORKDIR /state
ENTRYPOINT ["attribution"]
CMD ["--help"]
