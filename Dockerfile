# One image for web, workers and beat; the command picks the role.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=portal.settings.production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt constraints.txt ./
# GPU=1 (the compose "gpu" profile) adds TensorFlow's CUDA libraries for INFERENCE_RUNTIME=keras.
ARG GPU=0
RUN pip install -r requirements.txt \
    && if [ "$GPU" = "1" ]; then pip install "tensorflow[and-cuda]==2.21.0"; fi
COPY . .
RUN DJANGO_SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    DJANGO_ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.db REDIS_URL=redis://build \
    python manage.py collectstatic --noinput
RUN useradd --create-home --uid 10001 portal && chown -R portal /app
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
