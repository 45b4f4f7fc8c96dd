"""A separate process that stores consultations (or purges) in a loop: for the concurrency tests."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

from mcn_cli.actions.local import open_cache, open_database
from mcn_cli.store.audit import Actor
from mcn_cli.store.cache import purge
from tests.factories import PHARMACIST, PHARMACY, consultation


def main() -> None:
    role, count = sys.argv[1], int(sys.argv[2])
    today = date.today()
    if role == "purge":
        db = open_database()
        for _ in range(count):
            purge(db, today, 24, 60)
        return
    cache = open_cache()
    year = today.year
    for i in range(count):
        item = consultation(
            consulted=today.isoformat(), periods=((f"{year - 1}-01-01", f"{year + 1}-12-31"),)
        )
        cache.store(item, Actor(PHARMACIST, PHARMACY))
        print(i, datetime.now(UTC).isoformat(), flush=True)


if __name__ == "__main__":
    main()
