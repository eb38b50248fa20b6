"""Identity: API tokens now; accounts, MFA and OAuth 2.0 / OIDC come with the service plane."""
