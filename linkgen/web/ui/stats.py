"""Per-link totals and daily series from `stat_counters`, and the chart geometry the pages draw.

The chart is server-rendered SVG (no CDN, no JavaScript): `daily_chart` turns a series into
coordinates and tick labels; the template only places them, so every text stays escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linkgen.services.stats import COUNTS
from linkgen.storage.models import StatCounter


@dataclass
class Totals:
    """Summed counters of one link (or a whole list)."""

    clicks: int = 0
    human_clicks: int = 0
    bot_clicks: int = 0
    installs: int = 0
    reengagements: int = 0
    events: int = 0
    revenue_micros: int = 0

    @property
    def revenue(self) -> str:
        """Revenue for display: two decimals (currencies as the events reported them)."""
        return f"{self.revenue_micros / 1_000_000:,.2f}"


def totals_by_link(db: Session, link_ids: Sequence[str]) -> dict[str, Totals]:
    """Totals for each of the given links (links without counters are absent)."""
    if not link_ids:
        return {}
    sums = [func.sum(getattr(StatCounter, c)) for c in (*COUNTS, "revenue_micros")]
    query = (
        select(StatCounter.link_id, *sums)
        .where(StatCounter.link_id.in_(list(link_ids)))
        .group_by(StatCounter.link_id)
    )
    out: dict[str, Totals] = {}
    for row in db.execute(query):
        values = [int(v or 0) for v in row[1:]]
        out[row[0]] = Totals(*values)
    return out


def daily_series(db: Session, link_id: str, first: date, last: date) -> list[tuple[date, int, int]]:
    """(day, clicks, installs) for every day from first to last, zeros included."""
    query = (
        select(StatCounter.day, func.sum(StatCounter.clicks), func.sum(StatCounter.installs))
        .where(StatCounter.link_id == link_id, StatCounter.day >= first, StatCounter.day <= last)
        .group_by(StatCounter.day)
    )
    found = {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in db.execute(query)}
    days = (last - first).days + 1
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        clicks, installs = found.get(day, (0, 0))
        series.append((day, clicks, installs))
    return series


@dataclass
class Chart:
    """Coordinates for the clicks-vs-installs chart (viewBox units)."""

    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    clicks_points: str
    installs_points: str
    dots: list[tuple[float, float, float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)  # x, label, anchor
    total_clicks: int = 0
    total_installs: int = 0
    first: str = ""
    last: str = ""


def _nice_max(value: int) -> int:
    if value <= 4:
        return 4
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4
    magnitude: int = 10 ** (len(str(value)) - 1)
    return int(((value // magnitude) + 1) * magnitude)


def daily_chart(
    series: Sequence[tuple[date, int, int]], width: int = 720, height: int = 240, ticks: int = 6
) -> Chart:
    """Lay out two lines (clicks, installs) over the days of the series."""
    left, right, top, bottom = 44, 16, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((max(c, i) for _, c, i in series), default=0))
    n = max(1, len(series) - 1)

    def x(index: int) -> float:
        return round(left + plot_w * index / n, 1)

    def y(value: int) -> float:
        return round(top + plot_h - plot_h * value / peak, 1)

    clicks = " ".join(f"{x(k)},{y(c)}" for k, (_, c, _i) in enumerate(series))
    installs = " ".join(f"{x(k)},{y(i)}" for k, (_, _c, i) in enumerate(series))
    dots: list[tuple[float, float, float, str]] = []
    for k, (day, c, i) in enumerate(series):
        label = f"{day.isoformat()}: {c} clicks, {i} installs"
        dots.append((x(k), y(c), y(i), label))
    y_ticks = [(y(peak * q // 4), peak * q // 4) for q in range(5)]
    step = max(1, -(-len(series) // ticks))
    last = len(series) - 1
    x_ticks = [
        (x(k), d.strftime("%b %d"), "start" if k == 0 else "end" if k == last else "middle")
        for k, (d, _, _) in enumerate(series)
        if k % step == 0 or k == last
    ]
    if len(x_ticks) > 2 and x_ticks[-1][0] - x_ticks[-2][0] < plot_w / (ticks * 1.5):
        del x_ticks[-2]  # too close to the last label
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_w=plot_w,
        plot_h=plot_h,
        clicks_points=clicks,
        installs_points=installs,
        dots=dots,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        total_clicks=sum(c for _, c, _ in series),
        total_installs=sum(i for _, _, i in series),
        first=series[0][0].isoformat() if series else "",
        last=series[-1][0].isoformat() if series else "",
    )


def sum_totals(items: Iterable[Totals]) -> Totals:
    """The sum of several totals."""
    out = Totals()
    for t in items:
        for name in (*COUNTS, "revenue_micros"):
            setattr(out, name, getattr(out, name) + getattr(t, name))
    return out
