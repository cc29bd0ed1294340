"""Which RNG seeds a command, sweep or study trains: one grammar for every `--seeds` and every `seeds` field.

A number N means N seeds, 0..N-1; a list names the seeds. On the command line the list is written
`A-B` (a range), `A,B,C`, or both (`0-3,8`); a lone number is always a count (`--seeds 5` trains 0-4: train
seed 5 alone with `--set seed=5`, or `--seeds 5-5`).
"""

from __future__ import annotations

from shared.lab.specs import SpecError

MAX_SEEDS = 100  # seeds per sweep or pack: more is refused (4xx)
MAX_SEED = 2**63 - 1
HELP = "N (seeds 0..N-1), a range 2-4, a list 0,3,7, or both (0-3,8)"


def _error(message: str, field: str = "seeds") -> SpecError:
    return SpecError([{"field": field, "message": message}])


def seed_list(seeds: int | list[int]) -> list[int]:
    """N -> [0..N-1]; a list is kept in order, repeats refused."""
    if isinstance(seeds, bool):
        raise _error("a number of seeds or a list of seeds")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            raise _error(f"between 1 and {MAX_SEEDS} seeds, got {seeds}")
        return list(range(seeds))
    if not seeds or len(seeds) > MAX_SEEDS:
        raise _error(f"between 1 and {MAX_SEEDS} seeds, got {len(seeds)}")
    if any(isinstance(s, bool) or not 0 <= s <= MAX_SEED for s in seeds):
        raise _error("seeds are whole numbers from 0 to 2**63-1")
    if len(set(seeds)) != len(seeds):
        raise _error("a seed is repeated")
    return list(seeds)


def parse_seeds(text: str) -> list[int]:
    """The command-line form (errors name `--seeds`): '5' -> [0..4]; '2-4' -> [2, 3, 4]; '0,3,7'; '0-3,8'."""
    text = text.strip()
    seeds: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not (low.isdigit() and (not dash or high.isdigit())) or (dash and int(high) < int(low)):
            raise _error(f"expected {HELP}; {part.strip()!r} is none of these", "--seeds")
        seeds += range(int(low), int(high) + 1) if dash else [int(low)]
    try:
        return seed_list(seeds[0] if text.isdigit() else seeds)
    except SpecError as exc:
        raise _error(exc.errors[0]["message"], "--seeds") from None
