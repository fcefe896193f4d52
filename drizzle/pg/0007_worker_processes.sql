CREATE TABLE "worker_processes" (
	"owner" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"pid" integer NOT NULL,
	"concurrency" integer NOT NULL,
	"actions" text NOT NULL,
	"running" integer NOT NULL,
	"started_at" bigint NOT NULL,
	"heartbeat_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE INDEX "worker_processes_heartbeat" ON "worker_processes" USING btree ("heartbeat_at");