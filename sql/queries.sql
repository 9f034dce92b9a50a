-- Example queries for the tableinator schema (sql/schema.sql).
-- Run them with: psql -f sql/queries.sql

-- Most prolific labels: releases per label. A release counts once for every
-- label it names (release_labels), not only for its first label, and labels
-- are told apart by id, not by name.
SELECT l.id, l.name, count(DISTINCT rl.release_id) AS release_count
FROM labels l
JOIN release_labels rl ON rl.label_id = l.id
GROUP BY l.id, l.name
ORDER BY release_count DESC, l.name
LIMIT 10;

-- Releases by genre and year. "genres @> ARRAY[...]" can use the GIN index;
-- "'Jazz' = ANY(genres)" means the same but scans the table.
SELECT title, year, genres
FROM releases
WHERE genres @> ARRAY['Jazz']
  AND year BETWEEN 1950 AND 1960
ORDER BY year, title;

-- Artists with the most aliases (artists without aliases have NULL).
SELECT name, cardinality(aliases) AS alias_count
FROM artists
WHERE aliases IS NOT NULL
ORDER BY alias_count DESC, name
LIMIT 20;

-- Releases per year, with how many carry each of the three commonest genres.
SELECT year, count(*) AS releases,
       count(*) FILTER (WHERE genres @> ARRAY['Electronic']) AS electronic,
       count(*) FILTER (WHERE genres @> ARRAY['Rock']) AS rock,
       count(*) FILTER (WHERE genres @> ARRAY['Jazz']) AS jazz
FROM releases
WHERE year IS NOT NULL
GROUP BY year
ORDER BY year DESC
LIMIT 15;

-- The commonest styles of releases.
SELECT style, count(*) AS releases
FROM releases, unnest(styles) AS style
GROUP BY style
ORDER BY releases DESC, style
LIMIT 10;

-- Artists credited on the most releases (main credits only, not extra artists).
SELECT ra.artist_id, min(ra.name) AS name, count(DISTINCT ra.release_id) AS releases
FROM release_artists ra
WHERE NOT ra.extra AND ra.artist_id IS NOT NULL
GROUP BY ra.artist_id
ORDER BY releases DESC, name
LIMIT 10;

-- Masters with the most releases in the tables.
SELECT m.id, m.title, m.year, count(r.id) AS releases
FROM masters m
JOIN releases r ON r.master_id = m.id
GROUP BY m.id, m.title, m.year
ORDER BY releases DESC, m.title
LIMIT 10;

-- Anything else is in the JSONB data column: tracks longer than ten minutes.
SELECT r.id, r.title, t->>'title' AS track, t->>'duration' AS duration
FROM releases r, jsonb_array_elements(r.tracklist) AS t
WHERE t->>'duration' ~ '^[0-9]{2,}:[0-9]{2}$'
  AND split_part(t->>'duration', ':', 1)::int >= 10
ORDER BY split_part(t->>'duration', ':', 1)::int DESC, r.title, r.id
LIMIT 10;
