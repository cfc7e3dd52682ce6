-- The web console: operator users, their sessions, and connections that are added before they
-- are configured.

-- A connection added in the console starts as a draft: it has credentials but answers 403 to
-- webhooks until an operator saves ("Lagre") its configuration, which makes it active. This way
-- no event is posted with settings nobody chose. Connections added by the CLI or the admin API
-- carry their settings from the start and are active at once.
alter table connections drop constraint connections_status_check;
alter table connections add constraint connections_status_check
    check (status in ('draft', 'active', 'disabled'));

create table users (
    id            uuid primary key,
    -- Stored as typed; unique without regard to case, and compared in lower case at login.
    email         text not null check (email ~ '^[^@\s]+@[^@\s]+$'),
    -- An argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
    password_hash text not null,
    created_at    timestamptz not null default now(),
    -- Set once; a disabled user cannot log in and loses its sessions.
    disabled_at   timestamptz
);
create unique index users_email on users (lower(email));

create table console_sessions (
    -- SHA-256 of the cookie's 32 random bytes: a leaked table opens no session.
    token_sha256  bytea primary key,
    user_id       uuid not null references users (id) on delete cascade,
    -- The synchronizer token every form of this session carries (random, per session).
    csrf_token    text not null,
    created_at    timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    -- Absolute end (SHOPBRIDGE_SESSION_TTL after login).
    expires_at    timestamptz not null
);
create index console_sessions_user on console_sessions (user_id);
create index console_sessions_expiry on console_sessions (expires_at);

-- The console lists each connection with the time of its last event.
create index events_connection_received on events (connection_id, received_at desc);
