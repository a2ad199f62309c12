-- +goose Up
-- How far each programme's feed has been purged: a cursor below it has
-- missed events and answers CURSOR_EXPIRED; an idle cursor at the head never
-- expires.
CREATE TABLE feed_horizons (
    programme_id text PRIMARY KEY,
    purged_upto  bigint NOT NULL
);

-- +goose Down
DROP TABLE feed_horizons;
