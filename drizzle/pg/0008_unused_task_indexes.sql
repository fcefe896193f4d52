-- Every index is written by each task's insert or state change: these two served no query. Leases are
-- renewed by task id, and tasks_counts_by_date_created begins with tasks_by_date_created's columns.
DROP INDEX "tasks_leased";--> statement-breakpoint
DROP INDEX "tasks_by_date_created";