"""The tables of machimori (the schema that migrations create)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# SQLite makes an INTEGER PRIMARY KEY the row id itself; BIGINT there would add a second index.
Index64 = BigInteger().with_variant(Integer(), "sqlite")

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("origin", String(255), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("idx", Index64, primary_key=True, autoincrement=False),
    Column("entry", Text, nullable=False, doc="RFC 8785 canonical JSON of the logged object"),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("link_hash", LargeBinary(32), nullable=False, doc="SHA-256(0x02 ‖ previous link ‖ leaf hash)"),
)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

security_events = Table(
    "security_events",
    metadata,
    Column("uid", String(36), primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("class_uid", Integer, nullable=False, index=True),
    Column("severity_id", SmallInteger, nullable=False, index=True),
    Column("tenant", String(255), index=True),
    Column("actor", String(255), index=True),
    Column("device", String(255), index=True),
    Column("message", Text, nullable=False),
    Column("body", Text, nullable=False, doc="the whole event as JSON"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False, doc="staff, resident or service"),
    Column("org", String(255), doc="the stakeholder organisation of the city model (staff, services)"),
    Column("login", String(255), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("password_hash", String(255), doc="argon2id PHC string"),
    Column("totp_secret", LargeBinary, doc="AES-GCM sealed"),
    Column("totp_last_step", BigInteger, nullable=False, server_default="0", doc="last TOTP time step used"),
    Column("failed_count", Integer, nullable=False, server_default="0", doc="consecutive failed sign-ins"),
    Column("next_attempt_at", DateTime(timezone=True), doc="no attempt before this (growing delays)"),
    Column("locked_at", DateTime(timezone=True), doc="set at 100 consecutive failures"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
)

account_roles = Table(
    "account_roles",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("org", String(255), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("granted_by", String(36), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("resident", String(255), nullable=False, index=True),
    Column("service", String(255), nullable=False),
    Column("purpose", String(255), nullable=False, doc="a purpose IRI (DPV or the city's own)"),
    Column("state", String(16), nullable=False, doc="given, refused or withdrawn (expired is computed)"),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    UniqueConstraint("resident", "service", "purpose", name="uq_consents_resident_service_purpose"),
)

identity_proofs = Table(
    "identity_proofs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("ial", SmallInteger, nullable=False, doc="identity assurance level 1–3"),
    Column("method", String(64), nullable=False, doc="how identity was proven (e.g. my-number-card-jpki)"),
    Column("evidence", String(255), nullable=False, doc="what was seen, never the document itself"),
    Column("verified_by", String(36), nullable=False),
    Column("verified_at", DateTime(timezone=True), nullable=False),
)

data_accesses = Table(
    "data_accesses",
    metadata,
    Column("audit_index", BigInteger, primary_key=True, autoincrement=False, doc="the entry in the audit log"),
    Column("resident", String(255), nullable=False, index=True),
    Column("service", String(255), nullable=False),
    Column("purpose", String(255)),
    Column("permitted", Boolean, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", LargeBinary(32), doc="SHA-256 of a 256-bit secret; none for public clients"),
    Column("name", String(255), nullable=False),
    Column("org", String(255), doc="the service provider, a stakeholder of the city model"),
    Column("redirect_uris", Text, nullable=False, doc="JSON list"),
    Column("grant_types", Text, nullable=False, doc="JSON list"),
    Column("scope", Text, nullable=False, doc="space-separated scopes it may ask for"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, doc="when the token would have expired anyway"),
)

passkeys = Table(
    "passkeys",
    metadata,
    Column("credential_id", String(1024), primary_key=True, doc="base64url credential id"),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("public_key", LargeBinary, nullable=False, doc="COSE public key"),
    Column("sign_count", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

webauthn_challenges = Table(
    "webauthn_challenges",
    metadata,
    Column("challenge", String(128), primary_key=True, doc="base64url; deleted when used"),
    Column("account_id", String(36), nullable=False),
    Column("ceremony", String(16), nullable=False, doc="register or sign-in"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("secret_hash", LargeBinary(32), nullable=False, unique=True, doc="SHA-256 of the cookie's secret"),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("aal", SmallInteger, nullable=False, doc="0 while a second factor is still owed"),
    Column("amr", Text, nullable=False, doc="JSON list of RFC 8176 method references"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("id", String(36), primary_key=True, doc="carried in its access tokens as the `grant` claim"),
    Column("client_id", String(64), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("purposes", Text, nullable=False, doc="JSON list of the purposes the resident consented to"),
    Column("aal", SmallInteger, nullable=False, doc="of the session that approved it"),
    Column("amr", Text, nullable=False, doc="JSON list of RFC 8176 method references"),
    Column("auth_time", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", String(64)),
    Index("ix_oauth_grants_account_client", "account_id", "client_id"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", LargeBinary(32), primary_key=True, doc="SHA-256 of the code"),
    Column("grant_id", String(36), ForeignKey("oauth_grants.id"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False, doc="PKCE S256"),
    Column("nonce", String(255)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), doc="set on first use; a second use revokes the grant"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True, doc="SHA-256 of the token"),
    Column("grant_id", String(36), ForeignKey("oauth_grants.id"), nullable=False, index=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), doc="set when rotated; a second use revokes the grant"),
)

consent_subscriptions = Table(
    "consent_subscriptions",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("endpoint", Text, nullable=False, doc="where consent changes are pushed (RFC 8935)"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

consent_deliveries = Table(
    "consent_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("token", Text, nullable=False, doc="the Security Event Token (RFC 8417) to push"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_error", Text),
)

# The document of an NGSI-LD entity: JSON text on SQLite, JSONB (indexable, queryable) on PostgreSQL.
EntityDocument = JSON().with_variant(JSONB(), "postgresql")

hub_entities = Table(
    "hub_entities",
    metadata,
    Column("tenant", String(64), primary_key=True, doc="NGSILD-Tenant; empty for the default tenant"),
    Column("id", String(1024), primary_key=True),
    Column("body", EntityDocument, nullable=False, doc="the entity with expanded names (hub.entities)"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("modified_at", DateTime(timezone=True), nullable=False),
    Column("min_lon", Float, doc="bounding box of its location, for geo-queries"),
    Column("min_lat", Float),
    Column("max_lon", Float),
    Column("max_lat", Float),
    Index("ix_hub_entities_box", "tenant", "min_lon", "min_lat"),
)

hub_entity_types = Table(
    "hub_entity_types",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("type", String(1024), primary_key=True, doc="one of the entity's expanded types"),
    Column("id", String(1024), primary_key=True),
    Index("ix_hub_entity_types_entity", "tenant", "id"),
)

hub_attribute_values = Table(
    "hub_attribute_values",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("id", String(1024), nullable=False),
    Column("attribute", String(1024), nullable=False, doc="expanded name of a top-level attribute"),
    Column("number", Float, doc="its value if a number"),
    Column("text", String(256), doc="its value (or Relationship object) if a string of at most 256 characters"),
    Index("ix_hub_values_number", "tenant", "attribute", "number"),
    Index("ix_hub_values_text", "tenant", "attribute", "text"),
    Index("ix_hub_values_entity", "tenant", "id"),
)

hub_subscriptions = Table(
    "hub_subscriptions",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("owner", String(64), primary_key=True, doc="client id of the service it belongs to"),
    Column("id", String(1024), primary_key=True),
    Column("org", String(255), doc="the owner's organisation when it subscribed (must still match)"),
    Column("purpose", Text, doc="the purpose declared when it subscribed"),
    Column("scopes", Text, nullable=False, doc="space-separated scopes of the token it subscribed with"),
    Column("resident", String(64), doc="the resident whose token it subscribed with, if any"),
    Column("grant_id", String(36), doc="that token's grant: revoking it ends the notifications"),
    Column("body", JSON, nullable=False, doc="the definition with expanded names (hub.subscriptions)"),
    Column("active", Boolean, nullable=False, doc="isActive"),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("modified_at", DateTime(timezone=True), nullable=False),
    Column("times_sent", Integer, nullable=False),
    Column("times_failed", Integer, nullable=False),
    Column("last_notification", DateTime(timezone=True)),
    Column("last_success", DateTime(timezone=True)),
    Column("last_failure", DateTime(timezone=True)),
    Column("busy_until", DateTime(timezone=True), doc="lease of the process delivering its notifications"),
)

hub_notifications = Table(
    "hub_notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("subscription", String(1024), nullable=False),
    Column("entity_id", String(1024), nullable=False),
    Column("before", JSON, doc="the entity before the change (expanded), none if created"),
    Column("after", JSON, doc="the entity after the change (expanded), none if deleted"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Index("ix_hub_notifications_subscription", "tenant", "owner", "subscription"),
)

hub_contexts = Table(
    "hub_contexts",
    metadata,
    Column("id", String(36), primary_key=True, doc="the local id (a UUID): /ngsi-ld/v1/jsonldContexts/{id}"),
    Column("tenant", String(64), nullable=False, doc="the tenant it was added in (listed there only)"),
    Column("owner", String(64), nullable=False, doc="client id of the service that added it"),
    Column("org", String(255), doc="that service's organisation (it alone may delete it)"),
    Column("kind", String(32), nullable=False, doc="Hosted (added through the API)"),
    Column("body", JSON, nullable=False, doc='the document as given: {"@context": ...}'),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_hub_contexts_tenant", "tenant", "kind"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("tenant", String(64), nullable=False, doc="the NGSI-LD tenant its readings go to ('' the default)"),
    Column("model", String(128), nullable=False),
    Column("vendor", String(128), nullable=False, doc="a device-vendor stakeholder of the city model"),
    Column("owner", String(128), nullable=False, doc="the stakeholder that owns the device"),
    Column("component", String(128), doc="the city model's component it belongs to"),
    Column("name", String(255)),
    Column("location", JSON, doc="[longitude, latitude]"),
    Column("address", String(255), doc="network address (host or IP) audits may reach it at"),
    Column("protocol", String(16), nullable=False, doc="http or mqtt"),
    Column("mqtt_client_id", String(128)),
    Column("firmware", String(64)),
    Column("key_kind", String(16), nullable=False, doc="ed25519 or hmac-sha256"),
    Column("public_key", LargeBinary, doc="raw Ed25519 public key"),
    Column("sealed_secret", LargeBinary, doc="HMAC secret sealed by the data directory's SecretBox"),
    Column("key_fingerprint", String(64), nullable=False, index=True, doc="finds keys shared by devices"),
    Column("key_created_at", DateTime(timezone=True), nullable=False),
    Column("key_expires_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False, doc="active, quarantined or retired"),
    Column("status_reason", Text),
    Column("status_changed_at", DateTime(timezone=True), nullable=False),
    Column("counter_top", BigInteger, nullable=False, doc="highest message counter accepted"),
    Column("counter_window", BigInteger, nullable=False, doc="bit i: counter_top - 1 - i was accepted"),
    Column("management", JSON, doc="management login: username, keyed fingerprint, weakness; never a password"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True)),
)

device_readings = Table(
    "device_readings",
    metadata,
    Column("id", Index64, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False),
    Column("counter", BigInteger, nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("transport", String(8), nullable=False),
    Column("envelope", LargeBinary, nullable=False, doc="the signed COSE message, verifiable again at any time"),
    Column("reading", JSON, nullable=False),
    UniqueConstraint("device_id", "counter", name="uq_device_readings_counter"),
)
