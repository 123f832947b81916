/** What registry_heartbeats() answers for one heartbeat: both null for an unknown id or another owner's VM. */
export interface BeatAnswer {
  seen: string | null;
  rev: number | null;
}

/** Sends a batch in one statement: one answer per heartbeat, in the order given, or throws. */
export type SendBeats = (ids: string[], owners: (string | null)[]) => Promise<BeatAnswer[]>;

/** The most heartbeats one statement carries: a swarm's backlog goes in a few statements, none of them long. */
const MAX_BATCH = 256;

interface Waiting {
  id: string;
  owner: string | null;
  resolve(answer: BeatAnswer): void;
  reject(error: unknown): void;
}

/**
 * Heartbeats on their way to PostgreSQL, sent as a group commit does: while one batch is in
 * flight the heartbeats that arrive wait, and go together in the next one when it returns.
 * No timer: a lone heartbeat leaves at once and costs one round trip as before, and under load
 * a batch grows with the round trip it waited for. Each heartbeat's caller gets its own answer,
 * or the batch's error: the statement is one transaction, so a batch is applied whole or not.
 */
export class HeartbeatBatch {
  private waiting: Waiting[] = [];
  private sending = false;

  constructor(private readonly send: SendBeats) {}

  /** Queued synchronously: heartbeats asked for in one tick while a batch is in flight share the next. */
  beat(id: string, owner: string | null): Promise<BeatAnswer> {
    const answer = new Promise<BeatAnswer>((resolve, reject) => this.waiting.push({ id, owner, resolve, reject }));
    this.next();
    return answer;
  }

  private next(): void {
    if (this.sending || this.waiting.length === 0) return;
    this.sending = true;
    void this.flush(this.waiting.splice(0, MAX_BATCH)).finally(() => {
      this.sending = false;
      this.next();
    });
  }

  private async flush(batch: Waiting[]): Promise<void> {
    try {
      const answers = await this.send(
        batch.map((beat) => beat.id),
        batch.map((beat) => beat.owner),
      );
      if (answers.length !== batch.length) throw new Error(`registry_heartbeats answered ${answers.length} rows for ${batch.length} heartbeats`);
      batch.forEach((beat, i) => beat.resolve(answers[i]));
    } catch (error) {
      for (const beat of batch) beat.reject(error);
    }
  }
}
