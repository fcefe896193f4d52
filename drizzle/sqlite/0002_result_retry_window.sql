ALTER TABLE `task_results` ADD `delivery_claim` text;--> statement-breakpoint
ALTER TABLE `tasks` ADD `retrieval_key_hash` text;--> statement-breakpoint
ALTER TABLE `tasks` ADD `results_kept_until` integer;--> statement-breakpoint
CREATE INDEX `tasks_results_kept` ON `tasks` (`results_kept_until`) WHERE results_kept_until IS NOT NULL;