DROP INDEX `tasks_claim`;--> statement-breakpoint
DROP INDEX `tasks_queue_position`;--> statement-breakpoint
DROP INDEX `tasks_due`;--> statement-breakpoint
CREATE INDEX `tasks_queue` ON `tasks` (`service`,`type`,"priority" DESC,`id`,`available_at`) WHERE state = 'PENDING';--> statement-breakpoint
CREATE INDEX `tasks_due` ON `tasks` (`service`,`type`,`available_at`) WHERE state = 'PENDING';