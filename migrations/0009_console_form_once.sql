-- A console form that adds a connection carries a random id, recorded with the connection it
-- made. Reloading the page after adding posts the same form again; the id finds the connection
-- the first post made, so the reload shows it instead of adding a second draft. Connections added
-- by the CLI or the admin API have none (NULLs never conflict).
alter table connections add column created_by_form uuid unique;
