"""The API's request and response models, one module per area; `/openapi.json` is generated from them
(api/openapi.py)."""
