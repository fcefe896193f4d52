CREATE TABLE `schedule_runs` (
	`schedule_id` integer NOT NULL,
	`scheduled_for` integer NOT NULL,
	`outcome` text NOT NULL,
	`task_id` integer,
	`date_created` integer NOT NULL,
	PRIMARY KEY(`schedule_id`, `scheduled_for`),
	FOREIGN KEY (`schedule_id`) REFERENCES `schedules`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `schedules` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`key_id` integer NOT NULL,
	`name` text NOT NULL,
	`cron` text NOT NULL,
	`timezone` text NOT NULL,
	`service` text NOT NULL,
	`action` text NOT NULL,
	`params` text NOT NULL,
	`priority` integer DEFAULT 0 NOT NULL,
	`overlap` text NOT NULL,
	`catch_up` text NOT NULL,
	`paused` integer DEFAULT false NOT NULL,
	`next_run_at` integer,
	`date_created` integer NOT NULL,
	`date_updated` integer NOT NULL,
	`date_deleted` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`key_id`) REFERENCES `api_keys`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `schedules_name` ON `schedules` (`organisation_id`,`name`) WHERE date_deleted IS NULL;--> statement-breakpoint
CREATE INDEX `schedules_by_organisation` ON `schedules` (`organisation_id`,`id`);--> statement-breakpoint
CREATE INDEX `schedules_due` ON `schedules` (`next_run_at`) WHERE next_run_at IS NOT NULL;--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`message_id` integer NOT NULL,
	`organisation_id` integer NOT NULL,
	`task_id` integer NOT NULL,
	`endpoint_id` integer,
	`attempt` integer NOT NULL,
	`outcome` text NOT NULL,
	`http_status` integer,
	`duration_ms` integer NOT NULL,
	`error` text,
	`next_attempt_at` integer,
	`date_created` integer NOT NULL,
	FOREIGN KEY (`message_id`) REFERENCES `webhook_messages`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_by_task` ON `webhook_deliveries` (`task_id`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_by_endpoint` ON `webhook_deliveries` (`endpoint_id`,`id`) WHERE endpoint_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX `webhook_deliveries_by_message` ON `webhook_deliveries` (`message_id`);--> statement-breakpoint
CREATE TABLE `webhook_endpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`url` text NOT NULL,
	`description` text,
	`events` integer NOT NULL,
	`secret` text NOT NULL,
	`previous_secret` text,
	`previous_secret_until` integer,
	`enabled` integer DEFAULT true NOT NULL,
	`disabled_reason` text,
	`failing_since` integer,
	`date_created` integer NOT NULL,
	`date_deleted` integer,
	FOREIGN KEY (`organisation_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `webhook_endpoints_by_organisation` ON `webhook_endpoints` (`organisation_id`,`id`);--> statement-breakpoint
CREATE TABLE `webhook_messages` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`organisation_id` integer NOT NULL,
	`task_id` integer NOT NULL,
	`endpoint_id` integer,
	`url` text NOT NULL,
	`event` text NOT NULL,
	`task` text NOT NULL,
	`body` text,
	`status` text DEFAULT 'PENDING' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_owner` text,
	`lease_expires_at` integer,
	`date_created` integer NOT NULL,
	FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `webhook_messages_due` ON `webhook_messages` (`next_attempt_at`) WHERE status = 'PENDING';--> statement-breakpoint
CREATE INDEX `webhook_messages_in_order` ON `webhook_messages` (`task_id`,`url`,`id`) WHERE status = 'PENDING';--> statement-breakpoint
CREATE INDEX `webhook_messages_by_task` ON `webhook_messages` (`task_id`);--> statement-breakpoint
ALTER TABLE `organisations` ADD `webhook_secret` text;--> statement-breakpoint
ALTER TABLE `organisations` ADD `webhook_previous_secret` text;--> statement-breakpoint
ALTER TABLE `organisations` ADD `webhook_previous_secret_until` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `webhook_url` text;--> statement-breakpoint
ALTER TABLE `tasks` ADD `webhook_events` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `schedule_id` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `scheduled_for` integer;