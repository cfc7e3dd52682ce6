-- Failed console logins per email address and client (src/db/logins.rs). A client is the
-- address a request came from (a trusted proxy's X-Forwarded-For hop, or the socket's peer;
-- an IPv6 client by its /64). After five failures in a row a client waits before its next
-- attempt with that address, while other clients do not; `login_failures` (0010) keeps
-- counting each address's failures from all clients, against a much higher limit, so that
-- many clients guessing together are still bounded. A successful login clears its client's
-- row; a failure more than an hour after the last one starts a count again.
create table login_client_failures (
    email           text not null,
    client          text not null,
    failures        integer not null,
    last_failure_at timestamptz not null,
    primary key (email, client)
);
-- Old rows are removed as new failures are recorded.
create index login_client_failures_age on login_client_failures (last_failure_at);
