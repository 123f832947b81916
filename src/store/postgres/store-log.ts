/** What the store tells the operator about its connections; pino's logger fits. */
export interface StoreLog {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}
