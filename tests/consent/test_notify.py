"""A withdrawal in one process reaches the decision point of another at once (PostgreSQL LISTEN/NOTIFY)."""

from __future__ import annotations

import time

from sqlalchemy import text

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.consent.purposes import DPV
from machimori.consent.records import ConsentStore
from machimori.events import EventStream
from machimori.policy import Action, Context, DataType, DecisionPoint, Subject, Target
from machimori.storage import open_database
from machimori.storage.notify import LocalNotifier, PostgresNotifier

PURPOSE = DPV + "ServiceProvision"
BUS = Subject("bus-app", "service", org="minato-bus")
HANAKO = Target("urn:ngsi-ld:Person:hanako", DataType.personal, org="minato-city", resident="hanako")


def test_a_withdrawal_in_one_process_denies_in_the_other(postgres_url: str) -> None:
    signer = Signer.generate("test.example/audit")
    sides = []
    for _ in range(2):  # two servers: their own engine, notifier, store and decision point
        database = open_database(postgres_url)
        notifier = PostgresNotifier(database)
        events = EventStream(database, interval=0)
        store = ConsentStore(database, AuditLog(database, signer.name, [signer]), events, signer, notifier=notifier)
        sides.append((database, notifier, store, DecisionPoint(store.current, store.version)))
    (_, _, store_a, _), (_, _, _, pdp_b) = sides
    try:
        store_a.give("hanako", "bus-app", PURPOSE)
        deadline = time.monotonic() + 10
        while not pdp_b.decide(BUS, Action.read, HANAKO, Context(PURPOSE)).permit:
            assert time.monotonic() < deadline, "the grant never reached the other process"
            time.sleep(0.005)
        assert pdp_b.decide(BUS, Action.read, HANAKO, Context(PURPOSE)).permit  # cached there now
        store_a.withdraw("hanako", "bus-app", PURPOSE)
        deadline = time.monotonic() + 10
        while pdp_b.decide(BUS, Action.read, HANAKO, Context(PURPOSE)).permit:
            assert time.monotonic() < deadline, "the withdrawal never reached the other process"
            time.sleep(0.005)
    finally:
        for database, notifier, store, _ in sides:
            notifier.close()
            store.audit.close()
            store.events.close()
            database.dispose()


def test_a_local_notification_is_delivered_only_if_the_transaction_commits(tmp_path: object) -> None:
    database = open_database(f"sqlite:///{tmp_path}/n.db")
    notifier = LocalNotifier()
    heard: list[str] = []
    notifier.subscribe("c", heard.append)
    try:
        with database.engine.begin() as connection:
            notifier.publish(connection, "c", "one")
            connection.execute(text("SELECT 1"))
            assert heard == []
        assert heard == ["one"]
        try:
            with database.engine.begin() as connection:
                notifier.publish(connection, "c", "two")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert heard == ["one"]
    finally:
        database.dispose()
