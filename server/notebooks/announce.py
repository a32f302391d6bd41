"""Tell open sockets that someone's access to a notebook changed (membership or link)."""

from __future__ import annotations

from sqlmodel import Session

from server.auth.models import User
from server.events.bus import EventBus
from server.events.types import MemberChange, MembersChanged
from server.notebooks import service
from server.notebooks.models import MemberPublic, Notebook


def access_changed(
    db: Session, bus: EventBus, notebook: Notebook, people: list[User]
) -> list[MemberPublic]:
    """Publish each person's role as it is now (None: no access, their sockets close)."""
    listing = service.members(db, notebook)
    members = [m.model_dump(mode="json") for m in listing]
    for person in people:
        role = service.role_of(db, notebook, person)
        changed = MemberChange(username=person.username, role=role.value if role else None)
        bus.publish(MembersChanged(notebook_id=notebook.id, members=members, changed=changed))
    return listing
