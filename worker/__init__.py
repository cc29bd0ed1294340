"""cnnlab's Celery worker: `python -m worker [--gpus 0,1] [--queues gpu,cpu]`."""
