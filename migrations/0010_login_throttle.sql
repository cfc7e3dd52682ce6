-- Failed console logins per email address (in lower case, whether or not a user has it, so the
-- throttle says nothing about which addresses exist). After five failures in a row an address
-- waits before its next attempt (src/console/users.rs, `login_wait`); a successful login clears
-- its row, and a failure more than an hour after the last one starts the count again.
create table login_failures (
    email           text primary key,
    failures        integer not null,
    last_failure_at timestamptz not null
);
-- Old rows are removed as new failures are recorded.
create index login_failures_age on login_failures (last_failure_at);
