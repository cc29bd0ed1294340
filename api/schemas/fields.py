"""Field types the schemas share: ids, names, times."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, StringConstraints

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers: larger ids match no route (404)
Name = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")]
# ISO 8601 with an explicit +00:00 offset, as the API has always written times.
Time = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str, when_used="json")]
