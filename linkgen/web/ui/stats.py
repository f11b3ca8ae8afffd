"""Per-link totals from `stat_counters`, and the geometry of the daily chart the pages draw.

The chart is server-rendered SVG (no CDN, no JavaScript): `daily_chart` turns the days of
`services.stats.daily_totals` into coordinates and tick labels; the template only places them,
so every text stays escaped, and draws the same days as a table for those who cannot see it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linkgen.services.stats import COUNTS, DayTotals
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


@dataclass(frozen=True)
class Series:
    """One line of the chart: its name, CSS class and points."""

    name: str
    css: str
    points: str
    total: int


@dataclass
class Chart:
    """Coordinates for the daily chart (viewBox units) and the rows of its table alternative."""

    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    series: list[Series] = field(default_factory=list)
    # x, then per series y, and the hover label of the day
    dots: list[tuple[float, list[float], str]] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)  # x, label, anchor
    rows: list[DayTotals] = field(default_factory=list)
    first: str = ""
    last: str = ""
    summary: str = ""


# (field of DayTotals, what the legend calls it, CSS class); bots dashed so colour is not the
# only difference.
CHART_SERIES: Final = (
    ("human_clicks", "People's clicks", "human"),
    ("bot_clicks", "Bot clicks", "bot"),
    ("installs", "Installs", "installs"),
    ("reengagements", "Re-engagements", "reengagements"),
)
MAX_DOTS = 120  # beyond this many days a dot per day is noise: the line alone is drawn


def _nice_max(value: int) -> int:
    if value <= 4:
        return 4
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4
    magnitude: int = 10 ** (len(str(value)) - 1)
    return int(((value // magnitude) + 1) * magnitude)


def daily_chart(
    days: Sequence[DayTotals], width: int = 720, height: int = 240, ticks: int = 6
) -> Chart:
    """Lay out one line per series (people's and bots' clicks, installs, re-engagements)."""
    left, right, top, bottom = 52, 16, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    names = [name for name, _, _ in CHART_SERIES]
    peak = _nice_max(max((getattr(d, n) for d in days for n in names), default=0))
    n = max(1, len(days) - 1)

    def x(index: int) -> float:
        return round(left + plot_w * index / n, 1)

    def y(value: int) -> float:
        return round(top + plot_h - plot_h * value / peak, 1)

    series = [
        Series(
            name=label,
            css=css,
            points=" ".join(f"{x(k)},{y(getattr(d, name))}" for k, d in enumerate(days)),
            total=sum(getattr(d, name) for d in days),
        )
        for name, label, css in CHART_SERIES
    ]
    dots: list[tuple[float, list[float], str]] = []
    if len(days) <= MAX_DOTS:
        for k, d in enumerate(days):
            label = (
                f"{d.day.isoformat()}: {d.human_clicks} people's clicks, {d.bot_clicks} bot "
                f"clicks, {d.installs} installs, {d.reengagements} re-engagements"
            )
            dots.append((x(k), [y(getattr(d, name)) for name in names], label))
    y_ticks = [(y(peak * q // 4), peak * q // 4) for q in range(5)]
    step = max(1, -(-len(days) // ticks))
    last = len(days) - 1
    x_ticks = [
        (x(k), d.day.strftime("%b %d"), "start" if k == 0 else "end" if k == last else "middle")
        for k, d in enumerate(days)
        if k % step == 0 or k == last
    ]
    if len(x_ticks) > 2 and x_ticks[-1][0] - x_ticks[-2][0] < plot_w / (ticks * 1.5):
        del x_ticks[-2]  # too close to the last label
    first_day = days[0].day.isoformat() if days else ""
    last_day = days[-1].day.isoformat() if days else ""
    summary = f"From {first_day} to {last_day}: " + ", ".join(
        f"{s.total} {s.name.lower()}" for s in series
    )
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_w=plot_w,
        plot_h=plot_h,
        series=series,
        dots=dots,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        rows=list(days),
        first=first_day,
        last=last_day,
        summary=summary + ".",
    )


def sum_totals(items: Iterable[Totals]) -> Totals:
    """The sum of several totals."""
    out = Totals()
    for t in items:
        for name in (*COUNTS, "revenue_micros"):
            setattr(out, name, getattr(out, name) + getattr(t, name))
    return out
