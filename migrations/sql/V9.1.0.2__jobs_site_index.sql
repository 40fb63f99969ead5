-- 9.1: the work queue is read by site and status when a broker picks up jobs.
CREATE INDEX work_queue_site_status_idx ON work_queue (site_id, status);
