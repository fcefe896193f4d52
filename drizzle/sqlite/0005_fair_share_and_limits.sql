CREATE TABLE `queue_shares` (
	`service` text NOT NULL,
	`type` text NOT NULL,
	`organisation_id` integer NOT NULL,
	`served` real DEFAULT 0 NOT NULL,
	PRIMARY KEY(`service`, `type`, `organisation_id`),
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
ALTER TABLE `api_keys` ADD `rate_limits` text;--> statement-breakpoint
ALTER TABLE `organisations` ADD `weight` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `organisations` ADD `max_concurrency` integer;--> statement-breakpoint
CREATE INDEX `tasks_queue_by_organisation` ON `tasks` (`service`,`type`,`organisation_id`,"priority" DESC,`id`,`available_at`) WHERE state = 'PENDING';