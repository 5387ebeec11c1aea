"""Owners' grants, stored by the service in a database through SQLAlchemy.

The store keeps every grant in memory as well, so a decision never waits for
the database. The database is read once at start and written on each change.
The calls are synchronous, so a slow remote database blocks the event loop
for the length of one write.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


#: The wait before removing an ended grant again after the database failed to.
REMOVAL_RETRY = timedelta(seconds=60)


def utc_now() -> datetime:
    """Return the current time in UTC, timezone-aware."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime; SQLite returns naive ones."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class GrantStoreError(Exception):
    """The grants database rejected a write; the store and the database are unchanged.

    The message is for the person who asked, and names no database detail.
    """


def database_reason(error: SQLAlchemyError) -> str:
    """Return the database driver's own message, such as ``database or disk is full``."""
    return str(getattr(error, "orig", None) or error).splitlines()[0][:200]


class Base(DeclarativeBase):
    pass


class GrantRow(Base):
    """One owner's grant to one viewer selector (a user name or ``group:NAME``)."""

    __tablename__ = "cylc_access_grants"
    __table_args__ = (UniqueConstraint("owner", "viewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    viewer: Mapped[str] = mapped_column(String(255))
    permissions: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class GrantRecord:
    """A stored grant; ``expires_at`` is None for a grant without an end."""

    id: int
    owner: str
    viewer: str
    permissions: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None

    def active(self, now: datetime) -> bool:
        """Return whether the grant is in force at ``now``."""
        return self.expires_at is None or now < self.expires_at

    def to_json(self) -> dict:
        """Return the grant as a JSON-ready dict with ISO 8601 times."""
        return {
            "id": self.id,
            "owner": self.owner,
            "viewer": self.viewer,
            "permissions": list(self.permissions),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


def record_from_row(row: GrantRow) -> GrantRecord:
    return GrantRecord(
        id=row.id,
        owner=row.owner,
        viewer=row.viewer,
        permissions=tuple(json.loads(row.permissions)),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
    )


class GrantStore:
    """Store, look up and remove owners' grants.

    ``url`` is any SQLAlchemy database URL, such as
    ``sqlite:////var/lib/cylc-hub/cylc-access.sqlite``. The table is created
    when missing. ``clock`` returns the current aware UTC datetime.
    """

    def __init__(self, url: str, *, clock=utc_now, log=None):
        self.url = url
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        self.engine = create_engine(url)
        Base.metadata.create_all(self.engine)
        self._by_owner: dict[str, dict[str, GrantRecord]] = {}
        self._retry_removal_at: dict[int, datetime] = {}
        self._load()

    def _load(self) -> None:
        with Session(self.engine) as session:
            for row in session.scalars(select(GrantRow)):
                record = record_from_row(row)
                self._by_owner.setdefault(record.owner, {})[record.viewer] = record
        self.log.info(
            "Grant store %s: %d grants loaded", self.engine.url.render_as_string(), self.count()
        )

    def count(self) -> int:
        """Return the number of stored grants, expired ones included."""
        return sum(len(grants) for grants in self._by_owner.values())

    def grants(self, owner: str) -> list[GrantRecord]:
        """Return ``owner``'s grants in force, sorted by viewer selector."""
        now = self.clock()
        return sorted(
            (record for record in self._by_owner.get(owner, {}).values() if record.active(now)),
            key=lambda record: record.viewer,
        )

    def grants_of(self, owner: str) -> list[tuple[str, tuple[str, ...]]]:
        """Return ``owner``'s grants in force as ``(viewer_selector, permissions)`` pairs."""
        return [(record.viewer, record.permissions) for record in self.grants(owner)]

    def owners_with_grants(self) -> list[str]:
        """Return the owners that have at least one stored grant."""
        return sorted(owner for owner, grants in self._by_owner.items() if grants)

    def put(
        self,
        owner: str,
        viewer: str,
        permissions: tuple[str, ...],
        *,
        created_by: str,
        expires_at: datetime | None,
    ) -> GrantRecord:
        """Store a grant, replacing ``owner``'s earlier grant to the same ``viewer``."""
        now = self.clock()
        try:
            with Session(self.engine) as session, session.begin():
                row = session.scalars(
                    select(GrantRow).where(GrantRow.owner == owner, GrantRow.viewer == viewer)
                ).one_or_none()
                if row is None:
                    row = GrantRow(owner=owner, viewer=viewer)
                    session.add(row)
                row.permissions = json.dumps(list(permissions))
                row.created_by = created_by
                row.created_at = now
                row.expires_at = expires_at
                session.flush()
                record = record_from_row(row)
        except SQLAlchemyError as error:
            # The transaction was rolled back, and memory changes only after a commit.
            self.log.error(
                "Grant not stored: owner=%s viewer=%s: the grants database failed: %s",
                owner,
                viewer,
                database_reason(error),
            )
            raise GrantStoreError(
                f"The grant to {viewer[:60]!r} was not stored, because the grants database "
                "cannot be written. Nothing changed; try again later, and tell the site "
                "administrator if it goes on."
            ) from None

        self._by_owner.setdefault(owner, {})[viewer] = record
        return record

    def remove(self, owner: str, viewer: str) -> GrantRecord | None:
        """Remove ``owner``'s grant to ``viewer``; return it, or None when there was none."""
        record = self._by_owner.get(owner, {}).get(viewer)
        if record is None:
            return None
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(delete(GrantRow).where(GrantRow.id == record.id))
        except SQLAlchemyError as error:
            self.log.error(
                "Grant not revoked: id=%s owner=%s viewer=%s: the grants database failed: %s",
                record.id,
                owner,
                viewer,
                database_reason(error),
            )
            raise GrantStoreError(
                f"The grant to {viewer[:60]!r} was not revoked, because the grants database "
                "cannot be written. It is still in force; try again later, and tell the site "
                "administrator if it goes on."
            ) from None
        del self._by_owner[owner][viewer]
        return record

    def remove_expired(self) -> list[GrantRecord]:
        """Remove every grant whose end has passed and return the removed ones.

        A grant that the database fails to remove stays stored, but it is not
        in force because it has ended. A call at least ``REMOVAL_RETRY`` later
        tries again.
        """
        now = self.clock()
        expired = [
            record
            for grants in self._by_owner.values()
            for record in grants.values()
            if not record.active(now)
        ]
        removed = []
        for record in expired:
            if now < self._retry_removal_at.get(record.id, now):
                continue
            try:
                self.remove(record.owner, record.viewer)
            except GrantStoreError:
                # Retry a minute later, so a full disk logs once a minute, not every check.
                self._retry_removal_at[record.id] = now + REMOVAL_RETRY
                continue
            self._retry_removal_at.pop(record.id, None)
            removed.append(record)
        return removed
