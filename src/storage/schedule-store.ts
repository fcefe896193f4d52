/** Schedules and their runs: one run per schedule and fire time, whichever process fires it. */
export interface ScheduleStore {}
