-- +goose Up
-- The organisation check's state per organisation (A_23092–A_23094): when the VZD first reported it
-- inactive, whether its Org-Admin was informed, and its suspension (inactive: domains deleted after
-- the grace period, lifted by re-authentication with the SMC-B; decommissioned: on the operator's
-- order). An organisation without a row is active. Times are Unix milliseconds.
CREATE TABLE org_checks (
    telematik_id   TEXT    PRIMARY KEY,
    inactive_since BIGINT  NOT NULL DEFAULT 0,
    notified       INTEGER NOT NULL DEFAULT 0,
    suspended      TEXT    NOT NULL DEFAULT '',
    suspended_at   BIGINT  NOT NULL DEFAULT 0
);

-- The proxies' blocked set is read whole on every policy rebuild; the organisations' active
-- services on every check.
CREATE INDEX org_services_status ON org_services (status, telematik_id);

-- +goose Down
DROP INDEX org_services_status;
DROP TABLE org_checks;
