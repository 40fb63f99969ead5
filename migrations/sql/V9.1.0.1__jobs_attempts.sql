-- 9.1: jobs carry a retry counter and a priority; failed jobs recorded before 9.1
-- had their attempt count in the payload as "attempts=N" and move to the column.
ALTER TABLE work_queue ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE work_queue ADD COLUMN priority smallint NOT NULL DEFAULT 5;
UPDATE work_queue
   SET attempts = CAST(substring(payload FROM 'attempts=([0-9]+)') AS integer)
 WHERE payload ~ 'attempts=[0-9]+';
