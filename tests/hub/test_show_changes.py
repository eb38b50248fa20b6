"""showChanges: a notification carries each changed attribute's previous value — only as far as the subscriber
may see it, and never a previous resident's data."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from machimori.hub.entities import Entity

from .test_api import PURPOSE
from .test_notifications_api import (  # noqa: F401
    LOCATION,
    Quiet,
    Receiver,
    queue_change,
    quiet,
    receiver,
    stored_watch,
    watch_subscription,
)

NAME = "https://uri.etsi.org/ngsi-ld/default-context/deviceName"


def _moved(entity: Entity, name: str = "見守りタグ 8", resident: str | None = None) -> Entity:
    attributes = dict(entity.attributes)
    attributes[NAME] = [{**attributes[NAME][0], "value": name}]
    attributes["https://uri.etsi.org/ngsi-ld/location"] = [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [139.7, 35.5]}}
    ]
    if resident is not None:
        ref = "https://minatomachi.example/ngsi-ld/refResident"
        attributes[ref] = [{"type": "Relationship", "object": f"urn:ngsi-ld:Resident:{resident}"}]
    return replace(entity, attributes=attributes)


def _notified(quiet: Quiet, receiver: Receiver, after: Entity, before: Entity, **extra: object) -> dict[str, Any]:  # noqa: F811
    care = quiet.owner("aoba-care", **extra)  # type: ignore[arg-type]
    subscription = watch_subscription(
        receiver,
        notification={"endpoint": {"uri": receiver.url}, "showChanges": True},
        notificationTrigger=["attributeCreated", "attributeUpdated", "attributeDeleted", "entityDeleted"],
    )
    assert subscription.show_changes
    quiet.hub.subscriptions.create("", care, subscription, quiet.now[0])
    quiet.platform.consent.give("hanako", care.client_id, PURPOSE)
    queue_change(quiet.hub, "", before, after)
    assert quiet.hub.notifications.deliver_due() == 1
    sent: dict[str, Any] = receiver.bodies()[0]["data"][0]
    return sent


def test_changed_attributes_carry_their_previous_values(quiet: Quiet, receiver: Receiver) -> None:  # noqa: F811
    before = stored_watch()
    sent = _notified(quiet, receiver, _moved(before), before)
    assert sent["deviceName"] == {"type": "Property", "value": "見守りタグ 8", "previousValue": "見守りタグ 7"}
    assert sent[LOCATION]["previousValue"] == {"type": "Point", "coordinates": [139.6, 35.4]}
    ref = next(v for k, v in sent.items() if k.endswith("refResident"))
    assert "previousObject" not in ref  # unchanged: nothing to show


def test_a_previous_value_the_subscriber_may_not_see_is_never_shown(quiet: Quiet, receiver: Receiver) -> None:  # noqa: F811
    before = stored_watch()
    sent = _notified(quiet, receiver, _moved(before), before, purpose=None)  # no purpose: no personal data
    assert LOCATION not in sent and sent["deviceName"]["previousValue"] == "見守りタグ 7"


def test_no_previous_values_when_the_data_was_another_resident_s(quiet: Quiet, receiver: Receiver) -> None:  # noqa: F811
    before = stored_watch(resident="taro")
    sent = _notified(quiet, receiver, _moved(before, resident="hanako"), before)
    assert "previousValue" not in sent["deviceName"] and "previousValue" not in sent[LOCATION]


def test_deleted_attributes_and_entities_show_what_they_were(quiet: Quiet, receiver: Receiver) -> None:  # noqa: F811
    before = stored_watch()
    after = replace(before, attributes={k: v for k, v in before.attributes.items() if k != NAME})
    sent = _notified(quiet, receiver, after, before)
    assert sent["deviceName"] == {"type": "Property", "value": "urn:ngsi-ld:null", "previousValue": "見守りタグ 7"}
    queue_change(quiet.hub, "", after, None)
    assert quiet.hub.notifications.deliver_due() == 1
    gone = receiver.bodies()[1]["data"][0]
    assert "deletedAt" in gone and gone[LOCATION]["previousValue"] == {"type": "Point", "coordinates": [139.6, 35.4]}
    assert gone[LOCATION]["value"] == "urn:ngsi-ld:null" and "deviceName" not in gone


def test_a_deleted_entity_s_personal_data_needs_consent_too(quiet: Quiet, receiver: Receiver) -> None:  # noqa: F811
    before = stored_watch()
    care = quiet.owner("aoba-care", purpose=None)
    subscription = watch_subscription(
        receiver,
        notification={"endpoint": {"uri": receiver.url}, "showChanges": True},
        notificationTrigger=["entityDeleted"],
    )
    quiet.hub.subscriptions.create("", care, subscription, quiet.now[0])
    queue_change(quiet.hub, "", before, None)
    assert quiet.hub.notifications.deliver_due() == 1
    gone = receiver.bodies()[0]["data"][0]
    assert LOCATION not in gone and gone["deviceName"]["previousValue"] == "見守りタグ 7"


def test_without_show_changes_a_deleted_attribute_is_shown_as_deleted_only(quiet: Quiet, receiver: Receiver) -> None:  # noqa: F811
    before = stored_watch()
    after = replace(before, attributes={k: v for k, v in before.attributes.items() if k != NAME})
    care = quiet.owner("aoba-care")
    subscription = watch_subscription(receiver, notificationTrigger=["attributeDeleted"])
    quiet.hub.subscriptions.create("", care, subscription, quiet.now[0])
    queue_change(quiet.hub, "", before, after)
    assert quiet.hub.notifications.deliver_due() == 1
    assert receiver.bodies()[0]["data"][0]["deviceName"] == {"type": "Property", "value": "urn:ngsi-ld:null"}
