CREATE TABLE `task_retries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`task_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`state` text NOT NULL,
	`error_code` text,
	`error_message` text,
	`attempts` integer NOT NULL,
	`date_started` integer,
	`date_completed` integer NOT NULL,
	`date_retried` integer NOT NULL,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`key_id`) REFERENCES `api_keys`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `task_retries_by_task` ON `task_retries` (`task_id`,`id`);--> statement-breakpoint
ALTER TABLE `tasks` ADD `retries` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `tasks` ADD `attempt_budget` integer;--> statement-breakpoint
CREATE INDEX `tasks_retention` ON `tasks` (`date_completed`,`id`) WHERE date_completed IS NOT NULL;