# One image for the API, the workers and the migration job.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# torch first: the largest layer, rebuilt only when its version changes (PyPI's build carries CUDA).
RUN pip install torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
COPY alembic.ini gunicorn.conf.py ./
RUN pip install -e .
ARG CNNLAB_COMMIT=unknown
ENV CNNLAB_COMMIT=$CNNLAB_COMMIT
EXPOSE 5000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:5000", "api:create_app()"]
