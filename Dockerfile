# syntax=docker/dockerfile:1
# One image, two commands: `python -m proxy` (default) and `python -m worker`.
# The fake CRM (`python -m worker.fakecrm`) ships too, for demos and staging.
# A second target, `site`, builds the landing page and serves it with nginx.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements-runtime.lock ./
RUN pip install --no-deps -r requirements-runtime.lock \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin leadline
COPY schemas/ schemas/
COPY leadline/ leadline/
COPY proxy/ proxy/
COPY worker/ worker/
USER 10001
EXPOSE 8080 9100
# HEALTHCHECK_URL: the proxy's /healthz by default; the worker sets its metrics port's /healthz.
ENV HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-m", "leadline.healthcheck"]
CMD ["python", "-m", "proxy", "--host", "0.0.0.0", "--port", "8080"]

FROM ${PYTHON_IMAGE} AS site-build
ARG LEADFORM_ENDPOINT=http://127.0.0.1:8080/api/forms
WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps -r requirements.lock
COPY . .
# The form plugin (pelican.plugins.leadform) installs as it does for any site.
RUN pip install --no-cache-dir --no-deps . \
 && LEADFORM_ENDPOINT="${LEADFORM_ENDPOINT}" python -m pelican content -o /src/output -s publishconf.py

FROM nginx:1.27-alpine AS site
COPY --from=site-build /src/output /usr/share/nginx/html
COPY deploy/nginx-site.conf /etc/nginx/conf.d/default.conf
EXPOSE 8000
