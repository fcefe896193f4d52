-- Every index is written by each task's insert or state change: these three served no query. Leases are
-- renewed by task id, and tasks_counts_by_date_created and tasks_completed_by_queue begin with the
-- columns of tasks_by_date_created and tasks_by_date_completed (the latter under the same condition).
DROP INDEX `tasks_leased`;--> statement-breakpoint
DROP INDEX `tasks_by_date_created`;--> statement-breakpoint
DROP INDEX `tasks_by_date_completed`;
