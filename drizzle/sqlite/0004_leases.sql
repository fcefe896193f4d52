DROP INDEX `tasks_processing`;--> statement-breakpoint
ALTER TABLE `tasks` ADD `lease_owner` text;--> statement-breakpoint
ALTER TABLE `tasks` ADD `lease_expires_at` integer;--> statement-breakpoint
CREATE INDEX `tasks_leased` ON `tasks` (`lease_owner`) WHERE state = 'PROCESSING';--> statement-breakpoint
CREATE INDEX `tasks_lease_expiry` ON `tasks` (`lease_expires_at`) WHERE state = 'PROCESSING';--> statement-breakpoint
-- Tasks left running by a version without leases belong to no one: reclaimed at the first start.
UPDATE `tasks` SET `lease_expires_at` = 0 WHERE `state` = 'PROCESSING';
