CREATE TABLE `accounts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`service` text NOT NULL,
	`username` text NOT NULL,
	`date_created` integer NOT NULL,
	`date_deregistered` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `accounts_active_unique` ON `accounts` (`organisation_id`,`service`,`username`) WHERE date_deregistered IS NULL;--> statement-breakpoint
CREATE INDEX `accounts_organisation` ON `accounts` (`organisation_id`,`service`,`id`);--> statement-breakpoint
CREATE TABLE `api_keys` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`token_hash` text NOT NULL,
	`permissions` text,
	`revoked` integer DEFAULT false NOT NULL,
	`date_created` integer NOT NULL,
	`date_revoked` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_token_hash_unique` ON `api_keys` (`token_hash`);--> statement-breakpoint
CREATE INDEX `api_keys_organisation` ON `api_keys` (`organisation_id`,`id`);--> statement-breakpoint
CREATE TABLE `organisations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`retrieval_protocol` text DEFAULT 'STORE' NOT NULL,
	`date_created` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `organisations_name_unique` ON `organisations` (`name`);--> statement-breakpoint
CREATE TABLE `task_dependencies` (
	`task_id` integer NOT NULL,
	`depends_on_id` integer NOT NULL,
	PRIMARY KEY(`task_id`, `depends_on_id`),
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`depends_on_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `task_dependencies_reverse` ON `task_dependencies` (`depends_on_id`);--> statement-breakpoint
CREATE TABLE `task_logs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`task_id` integer NOT NULL,
	`level` integer NOT NULL,
	`message` text NOT NULL,
	`source` text NOT NULL,
	`timestamp` integer NOT NULL,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `task_logs_by_task` ON `task_logs` (`task_id`,`level`,`id`);--> statement-breakpoint
CREATE TABLE `task_results` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`task_id` integer NOT NULL,
	`name` text NOT NULL,
	`content_type` text NOT NULL,
	`size` integer NOT NULL,
	`data` text,
	`retrieved` integer DEFAULT false NOT NULL,
	`date_created` integer NOT NULL,
	`date_retrieved` integer,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `task_results_by_task` ON `task_results` (`task_id`,`id`);--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`user` text,
	`source_id` integer,
	`source_type` text,
	`session` text,
	`poll` text,
	`service` text NOT NULL,
	`type` text NOT NULL,
	`target` text,
	`params` text NOT NULL,
	`state` text NOT NULL,
	`priority` integer DEFAULT 0 NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer NOT NULL,
	`timeout_ms` integer NOT NULL,
	`progress` real,
	`error_code` text,
	`error_message` text,
	`retrieval_protocol` text NOT NULL,
	`result_retrieved` integer DEFAULT false NOT NULL,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`idempotency_key` text,
	`run_at` integer,
	`available_at` integer NOT NULL,
	`date_created` integer NOT NULL,
	`date_started` integer,
	`date_completed` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`key_id`) REFERENCES `api_keys`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`source_id`) REFERENCES `accounts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `tasks_claim` ON `tasks` ("priority" DESC,`id`) WHERE state = 'PENDING';--> statement-breakpoint
CREATE INDEX `tasks_queue_position` ON `tasks` (`service`,`type`,"priority" DESC,`id`) WHERE state = 'PENDING';--> statement-breakpoint
CREATE INDEX `tasks_due` ON `tasks` (`available_at`) WHERE state = 'PENDING';--> statement-breakpoint
CREATE INDEX `tasks_processing` ON `tasks` (`id`) WHERE state = 'PROCESSING';--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_idempotency` ON `tasks` (`organisation_id`,`idempotency_key`) WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_organisation` ON `tasks` (`organisation_id`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_by_key` ON `tasks` (`organisation_id`,`key_id`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_by_user` ON `tasks` (`organisation_id`,`user`,`id`) WHERE user IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_source` ON `tasks` (`organisation_id`,`source_id`,`id`) WHERE source_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_source_type` ON `tasks` (`organisation_id`,`source_type`,`id`) WHERE source_type IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_session` ON `tasks` (`organisation_id`,`session`,`id`) WHERE session IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_poll` ON `tasks` (`organisation_id`,`poll`,`id`) WHERE poll IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_service_type` ON `tasks` (`organisation_id`,`service`,`type`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_by_type` ON `tasks` (`organisation_id`,`type`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_by_state` ON `tasks` (`organisation_id`,`state`,`id`);--> statement-breakpoint
CREATE INDEX `tasks_by_date_created` ON `tasks` (`organisation_id`,`date_created`);--> statement-breakpoint
CREATE INDEX `tasks_by_date_started` ON `tasks` (`organisation_id`,`date_started`) WHERE date_started IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_by_date_completed` ON `tasks` (`organisation_id`,`date_completed`) WHERE date_completed IS NOT NULL;