"""The pages' template filters: percentages, numbers, durations, times, sizes, significant digits, devices."""

from __future__ import annotations

from datetime import UTC, datetime


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage (0.9871 -> 98.71%), or a dash where a result lacks it."""
    return f"{value * 100:.{digits}f}%" if isinstance(value, (int, float)) else "–"


def num(value, fmt: str = "{:,}") -> str:
    """A number formatted, or a dash where a result lacks it."""
    return fmt.format(value) if isinstance(value, (int, float)) else "–"


def seconds(value: float | None) -> str:
    """1h 02m, 3m 07s, 4.2s."""
    if not isinstance(value, (int, float)):
        return "–"
    if value < 60:
        return f"{value:.1f}s"
    m, s = divmod(int(value), 60)
    return f"{m}m {s:02d}s" if m < 60 else f"{m // 60}h {m % 60:02d}m"


def when(iso: str | None) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM` (UTC)."""
    return iso[:16].replace("T", " ") if iso else "–"


def exact(iso: str | None) -> str:
    """An ISO timestamp to the second, `YYYY-MM-DD HH:MM:SS UTC` (the hover text of `ago`)."""
    return f"{iso[:19].replace('T', ' ')} UTC" if iso else "–"


def ago(iso: str | None, now: datetime | None = None) -> str:
    """How long ago, compactly: 40s ago, 12 min ago, 3 h ago, 2 d ago; past a week the date (UTC)."""
    if not iso:
        return "–"
    then = datetime.fromisoformat(iso)
    then = then if then.tzinfo else then.replace(tzinfo=UTC)  # SQLite hands back naive UTC times
    s = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for limit, unit, word in ((60, 1, "s"), (3600, 60, " min"), (86400, 3600, " h"), (7 * 86400, 86400, " d")):
        if s < limit:
            return f"{s // unit}{word} ago"
    return iso[:10]


def size(n: int | None) -> str:
    """Bytes in binary units at three significant digits: 106 MiB, 4.52 KiB, 980 B."""
    if not isinstance(n, (int, float)):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} GiB"


def sig(values, digits: int = 4) -> str:
    """Numbers (one or a list) at `digits` significant digits: 0.1307, 0.3081 rather than 16 digits."""
    if isinstance(values, (int, float)):
        return f"{values:.{digits}g}"
    return ", ".join(f"{v:.{digits}g}" for v in values or [])


def device(text: str | None) -> str | None:
    """'cuda: NVIDIA H200' as is; 'cpu: cpu' (no processor name known) as 'cpu'."""
    kind, _, name = (text or "").partition(": ")
    return kind if name in ("", kind) else text


FILTERS = {f.__name__: f for f in (pct, num, seconds, when, exact, ago, size, sig, device)}  # registered under their names
