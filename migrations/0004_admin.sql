-- The admin API's bearer tokens. Only a SHA-256 digest of each token is stored: the token is
-- 32 random bytes, so a fast hash is enough (nobody can search a 2^256 space, and a slow
-- password hash only helps low-entropy secrets), and a leaked table grants nothing.

create table api_tokens (
    id           uuid primary key,
    name         text not null check (length(trim(name)) > 0),
    token_sha256 bytea not null,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    -- Set once; a revoked token answers 401 for ever.
    revoked_at   timestamptz,
    constraint api_tokens_hash unique (token_sha256)
);
