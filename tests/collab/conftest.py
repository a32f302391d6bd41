import pytest

from tests.support_pg import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Sync, roles and durability hold on SQLite and on PostgreSQL alike."""
    return str(request.param)
