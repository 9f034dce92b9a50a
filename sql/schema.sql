-- tableinator schema (docs/design.md#schema). Idempotent: tblload applies it at every start.
--
-- Each record table keeps the typed columns people query, the record's hash
-- (SHA-256 of its canonical form, the skip test for unchanged records) and the
-- whole record as JSONB, so nothing in a message is lost. Link tables make
-- labels and artists of a release joinable.
--
-- Text columns get hash indexes for equality lookups: a btree entry must fit in
-- a third of a page, and Discogs has titles and names long enough to break that
-- rule, which would turn a good record into a rejected one.

CREATE TABLE IF NOT EXISTS artists (
    id          integer PRIMARY KEY,
    name        text,
    real_name   text,
    profile     text,
    urls        text[],
    aliases     text[],
    hash        text NOT NULL UNIQUE,
    data        jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS labels (
    id              integer PRIMARY KEY,
    name            text,
    profile         text,
    urls            text[],
    parent_label_id integer,
    hash            text NOT NULL UNIQUE,
    data            jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS masters (
    id           integer PRIMARY KEY,
    title        text,
    year         integer,
    genres       text[],
    styles       text[],
    main_release integer,
    hash         text NOT NULL UNIQUE,
    data         jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS releases (
    id          integer PRIMARY KEY,
    title       text,
    year        integer,
    country     text,
    genres      text[],
    styles      text[],
    formats     jsonb NOT NULL DEFAULT '[]',
    tracklist   jsonb NOT NULL DEFAULT '[]',
    label_id    integer,
    master_id   integer,
    hash        text NOT NULL UNIQUE,
    data        jsonb NOT NULL
);

-- One row per <label> of a release, in the order of the record.
CREATE TABLE IF NOT EXISTS release_labels (
    release_id  integer NOT NULL,
    label_id    integer,
    catno       text
);

-- One row per credited artist of a release: the main artists (extra = false)
-- and the extra artists with their roles (extra = true), in record order.
CREATE TABLE IF NOT EXISTS release_artists (
    release_id  integer NOT NULL,
    artist_id   integer,
    name        text,
    anv         text,
    "join"      text,
    role        text,
    extra       boolean NOT NULL DEFAULT false
);

CREATE INDEX IF NOT EXISTS artists_name_idx ON artists USING hash (name);
CREATE INDEX IF NOT EXISTS labels_name_idx ON labels USING hash (name);
CREATE INDEX IF NOT EXISTS labels_parent_label_id_idx ON labels (parent_label_id);
CREATE INDEX IF NOT EXISTS masters_title_idx ON masters USING hash (title);
CREATE INDEX IF NOT EXISTS masters_year_idx ON masters (year);
CREATE INDEX IF NOT EXISTS masters_genres_idx ON masters USING gin (genres);
CREATE INDEX IF NOT EXISTS masters_styles_idx ON masters USING gin (styles);
CREATE INDEX IF NOT EXISTS releases_title_idx ON releases USING hash (title);
CREATE INDEX IF NOT EXISTS releases_year_idx ON releases (year);
CREATE INDEX IF NOT EXISTS releases_country_idx ON releases (country);
CREATE INDEX IF NOT EXISTS releases_genres_idx ON releases USING gin (genres);
CREATE INDEX IF NOT EXISTS releases_styles_idx ON releases USING gin (styles);
CREATE INDEX IF NOT EXISTS releases_label_id_idx ON releases (label_id);
CREATE INDEX IF NOT EXISTS releases_master_id_idx ON releases (master_id);
CREATE INDEX IF NOT EXISTS release_labels_release_id_idx ON release_labels (release_id);
CREATE INDEX IF NOT EXISTS release_labels_label_id_idx ON release_labels (label_id);
CREATE INDEX IF NOT EXISTS release_artists_release_id_idx ON release_artists (release_id);
CREATE INDEX IF NOT EXISTS release_artists_artist_id_idx ON release_artists (artist_id);
