-- Broker schema baseline (9.0): sites and cluster members, the work queue,
-- settings, and the support licence. PostgreSQL 9.1+ compatible SQL only.

CREATE TABLE sites (
    site_id     integer PRIMARY KEY,
    name        varchar(128) NOT NULL UNIQUE,
    created_at  timestamp with time zone NOT NULL DEFAULT now()
);

CREATE TABLE cluster_members (
    hostname        varchar(255) PRIMARY KEY,
    site_id         integer NOT NULL REFERENCES sites(site_id),
    broker_version  varchar(64) NOT NULL,
    last_seen       timestamp with time zone NOT NULL DEFAULT now()
);

CREATE TABLE work_queue (
    job_id      bigserial PRIMARY KEY,
    site_id     integer NOT NULL REFERENCES sites(site_id),
    job_type    varchar(64) NOT NULL,
    status      varchar(16) NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
    payload     text,
    created_at  timestamp with time zone NOT NULL DEFAULT now()
);

CREATE TABLE settings (
    name   varchar(128) PRIMARY KEY,
    value  text NOT NULL
);

CREATE TABLE support_licence (
    licence_id   serial PRIMARY KEY,
    licence_key  varchar(256) NOT NULL,
    customer     varchar(256) NOT NULL,
    expires_on   date NOT NULL
);
