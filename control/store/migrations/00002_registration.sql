-- +goose Up
-- Registration service: Org-Admin accounts, their sessions, onboarding state and ordered messenger
-- services. Times are Unix milliseconds. Secrets (session tokens, onboarding tickets, KIM codes) are
-- stored only as SHA-256 hashes; passwords as Argon2id hashes.

-- Exactly one Org-Admin per organisation: telematik_id is unique (gemSpec_TI-Messenger-FD 5.1.1.2.2).
CREATE TABLE org_admins (
    id             TEXT    PRIMARY KEY,
    telematik_id   TEXT    NOT NULL UNIQUE,
    profession_oid TEXT    NOT NULL,
    org_name       TEXT    NOT NULL,
    auth_method    TEXT    NOT NULL,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    totp_secret    TEXT    NOT NULL,
    totp_last_step BIGINT  NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL
);

CREATE TABLE orgadmin_sessions (
    token_hash TEXT   PRIMARY KEY,
    admin_id   TEXT   NOT NULL REFERENCES org_admins (id) ON DELETE CASCADE,
    csrf_token TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX orgadmin_sessions_expires ON orgadmin_sessions (expires_at);

-- Authorisation requests sent to the IDP: state, nonce and PKCE verifier, bound to the browser that
-- started them; a row is consumed (deleted) by the first callback that names its state.
CREATE TABLE oidc_pending (
    state        TEXT   PRIMARY KEY,
    nonce        TEXT   NOT NULL,
    verifier     TEXT   NOT NULL,
    browser_hash TEXT   NOT NULL,
    purpose      TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL
);

-- KIM authentication mails: the link's UUID, the hash of the six-digit code shown on the order screen.
CREATE TABLE kim_challenges (
    id             TEXT    PRIMARY KEY,
    code_hash      TEXT    NOT NULL,
    telematik_id   TEXT    NOT NULL,
    profession_oid TEXT    NOT NULL,
    org_name       TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    used           INTEGER NOT NULL DEFAULT 0,
    expires_at     BIGINT  NOT NULL
);

-- An authenticated organisation on its way to an Org-Admin account (password, then TOTP).
CREATE TABLE onboarding_tickets (
    token_hash     TEXT   PRIMARY KEY,
    telematik_id   TEXT   NOT NULL,
    profession_oid TEXT   NOT NULL,
    org_name       TEXT   NOT NULL,
    auth_method    TEXT   NOT NULL,
    username       TEXT   NOT NULL DEFAULT '',
    password_hash  TEXT   NOT NULL DEFAULT '',
    totp_secret    TEXT   NOT NULL DEFAULT '',
    expires_at     BIGINT NOT NULL
);

-- Messenger services (Matrix domains) ordered by an organisation. status: pending (awaiting the
-- operator's out-of-band confirmation, A_23521), active (entered into the federation), rejected.
CREATE TABLE org_services (
    domain       TEXT    PRIMARY KEY,
    telematik_id TEXT    NOT NULL,
    is_insurance INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    message      TEXT    NOT NULL DEFAULT '',
    ordered_at   BIGINT  NOT NULL,
    decided_at   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX org_services_org ON org_services (telematik_id);

-- Users an Org-Admin has blocked (A_23613).
CREATE TABLE blocked_users (
    mxid         TEXT   PRIMARY KEY,
    telematik_id TEXT   NOT NULL,
    blocked_at   BIGINT NOT NULL
);
CREATE INDEX blocked_users_org ON blocked_users (telematik_id);

-- +goose Down
DROP TABLE blocked_users;
DROP TABLE org_services;
DROP TABLE onboarding_tickets;
DROP TABLE kim_challenges;
DROP TABLE oidc_pending;
DROP TABLE orgadmin_sessions;
DROP TABLE org_admins;
