-- Default settings and the first site every broker belongs to.
INSERT INTO sites (site_id, name) VALUES (1, 'default');
INSERT INTO settings (name, value) VALUES
    ('upgrades_enabled', 'true'),
    ('rest_api_enabled', 'false'),
    ('session_timeout_minutes', '30');
