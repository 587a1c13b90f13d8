-- +goose Up
-- Release lists (I_TiMessengerContactManagement): who may invite the owner, and when.
-- Times are Unix seconds as in the interface; end_at NULL means open-ended.
CREATE TABLE contacts (
    owner        TEXT   NOT NULL,
    contact      TEXT   NOT NULL,
    display_name TEXT   NOT NULL,
    start_at     BIGINT NOT NULL,
    end_at       BIGINT,
    PRIMARY KEY (owner, contact)
);
CREATE INDEX contacts_end_at ON contacts (end_at);

-- The last good federation list from the VZD, exactly as received (compact JWS), one row.
CREATE TABLE federation_list (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    jws           TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    fetched_at_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE federation_list;
DROP TABLE contacts;
