"""Acting on jobs: PATCH /jobs/<id> and POST /runs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.lab.runs import MAX_TAGS, LocalRun, Tags


class JobPatch(BaseModel):
    """PATCH /jobs/<id> body: the fields to change; any others are refused."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$", description="null clears it")
    tags: Tags | None = Field(None, description=f"replaces the tags: at most {MAX_TAGS}, each 1-64 characters, "
                                                "no commas; surrounding blanks and repeats are dropped")
    notes: str | None = Field(None, max_length=20_000, pattern=r"^[^\x00]*$")
    archived: bool | None = Field(None, description="true hides the job from the default list")

    @model_validator(mode="after")
    def _something(self) -> "JobPatch":
        if not self.model_fields_set:
            raise ValueError(f"nothing to change: give one of {', '.join(type(self).model_fields)}")
        for field in ("tags", "notes", "archived"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class RunCreate(LocalRun):
    """POST /runs body: a finished run trained outside the service, recorded as a succeeded job (queue `local`)."""
