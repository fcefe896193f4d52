CREATE TABLE `worker_processes` (
	`owner` text PRIMARY KEY NOT NULL,
	`hostname` text NOT NULL,
	`pid` integer NOT NULL,
	`concurrency` integer NOT NULL,
	`actions` text NOT NULL,
	`running` integer NOT NULL,
	`started_at` integer NOT NULL,
	`heartbeat_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `worker_processes_heartbeat` ON `worker_processes` (`heartbeat_at`);