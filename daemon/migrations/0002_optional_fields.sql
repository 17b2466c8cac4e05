-- What memd's records may leave out stays NULL, so it reads back as left out (issue 27):
-- a version file written before memd kept its validation status (read as pending, but
-- written back without one), a parameter change from before memd kept when it took effect.
-- validation_status keeps its default, so a row the seed's tools insert without one is
-- still pending.
ALTER TABLE strategy_versions ALTER COLUMN validation_status DROP NOT NULL;
ALTER TABLE strategy_parameters ALTER COLUMN applied_from DROP NOT NULL;

-- Client uids are u32 (a uid above 2^31 - 1, like 4294967294, must fit).
ALTER TABLE strategy_parameters ALTER COLUMN client_uid TYPE BIGINT;
ALTER TABLE registry_audit ALTER COLUMN uid TYPE BIGINT;
