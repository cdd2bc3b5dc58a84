-- API tokens: only the SHA-256 of each secret is kept; the secret is shown once, when the
-- token is made (`tonle token create`). A factory token reads and acts on one site only.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'staff', 'factory')),
    site          text,                       -- the one site of a factory token
    secret_sha256 text NOT NULL UNIQUE CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((role = 'factory') = (site IS NOT NULL))
);
