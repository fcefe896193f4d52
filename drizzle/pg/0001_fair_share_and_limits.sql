CREATE TABLE "queue_shares" (
	"service" text NOT NULL,
	"type" text NOT NULL,
	"organisation_id" integer NOT NULL,
	"served" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "queue_shares_service_type_organisation_id_pk" PRIMARY KEY("service","type","organisation_id")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "rate_limits" text;--> statement-breakpoint
ALTER TABLE "organisations" ADD COLUMN "weight" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "organisations" ADD COLUMN "max_concurrency" integer;--> statement-breakpoint
ALTER TABLE "queue_shares" ADD CONSTRAINT "queue_shares_organisation_id_organisations_id_fk" FOREIGN KEY ("organisation_id") REFERENCES "public"."organisations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "tasks_queue_by_organisation" ON "tasks" USING btree ("service","type","organisation_id","priority" DESC,"id","available_at") WHERE state = 'PENDING';