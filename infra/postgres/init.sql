-- Run once by the postgres image on an empty data directory: the Liên Thông database is
-- POSTGRES_DB; Prefect's gets its own database on the same server.
CREATE DATABASE prefect;
