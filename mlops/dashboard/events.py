"""The delivery timeline as the dashboard lists it: filtered as `mlops events` filters it (mlops/events_view.py),
with what the page's filters can choose from."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from emulator.timeline import Delivery
from mlops.events_view import Filters, select

DEFAULT_LIMIT = 500


def listing(records: Iterable[Delivery], filters: Filters, limit: int = DEFAULT_LIMIT) -> dict:
    """The newest `limit` records the filters keep (oldest first; 0: none), with what the filters can choose from."""
    records, limit = list(records), max(limit, 0)
    kept, matched, ticks_hidden = select(records, filters, limit)
    return {"events": [asdict(d) for d in kept] if limit > 0 else [],
            "matched": matched, "total": len(records), "ticks_hidden": ticks_hidden,
            "facets": {"type": sorted({d.event_type for d in records}),
                       "function": sorted({d.function for d in records}),
                       "outcome": sorted({d.outcome for d in records})}}
