# The app's image: the same commands `make serve` runs and tests, one process a container
# (compose.yaml: web, worker, reaper). Not built in this project's CI (no registry there).
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY imageedits/__init__.py imageedits/__init__.py
RUN pip install -e '.[postgres,rq,redis,server,s3]'
COPY . .

# Static files are collected (hashed, compressed) into the image; WhiteNoise serves them.
ENV DEBUG=0 VAR_DIR=/tmp/imageedits STATIC_ROOT=/app/staticfiles
RUN SECRET_KEY=only-for-collectstatic python manage.py collectstatic --noinput

USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
