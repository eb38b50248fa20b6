"""The OAuth 2.0 / OpenID Connect provider (authlib grants, joserfc JWTs)."""
