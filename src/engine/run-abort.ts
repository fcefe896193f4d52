/**
 * The abort of a handler's run, queued or real-time: its AbortSignal is made only when the handler
 * reads it, since most never do and an AbortController costs more than the rest of a no-op run's
 * bookkeeping. An abort before then is kept, and the signal is born aborted with its reason.
 */
export class RunAbort {
  #controller: AbortController | null = null;
  #aborted = false;
  #reason: unknown;
  #rejectRace: ((reason: unknown) => void) | null = null;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** As AbortController.abort: the first reason stays. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#rejectRace?.(reason);
  }

  /** Rejects with the reason once the run is aborted. */
  race(): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (this.#aborted) reject(this.#reason);
      else this.#rejectRace = reject;
    });
  }
}
