CREATE TABLE `allocations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`name` text NOT NULL,
	`service` text NOT NULL,
	`action` text NOT NULL,
	`instances` integer NOT NULL,
	`timeout_ms` integer NOT NULL,
	`executions` integer DEFAULT 0 NOT NULL,
	`date_created` integer NOT NULL,
	`date_deleted` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`key_id`) REFERENCES `api_keys`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `allocations_by_organisation` ON `allocations` (`organisation_id`,`id`);--> statement-breakpoint
CREATE TABLE `execution_tokens` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`allocation_id` integer NOT NULL,
	`token_hash` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked` integer DEFAULT false NOT NULL,
	`date_created` integer NOT NULL,
	FOREIGN KEY (`allocation_id`) REFERENCES `allocations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `execution_tokens_token_hash_unique` ON `execution_tokens` (`token_hash`);--> statement-breakpoint
ALTER TABLE `tasks` ADD `execution` text DEFAULT 'ASYNCHRONOUS' NOT NULL;--> statement-breakpoint
ALTER TABLE `tasks` ADD `allocation_id` integer REFERENCES allocations(id);