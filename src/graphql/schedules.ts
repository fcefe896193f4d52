// Schedules: the ADMIN API over recurring tasks, and the fields tasks gain from them.
export {};
