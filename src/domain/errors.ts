/**
 * Failures a client caused or can act on. Each carries its HTTP status so that the
 * server maps them without a table, and the message is what the client reads.
 */
export class RegistryError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidInputError extends RegistryError {
  constructor(message: string) {
    super(400, message);
  }
}

export class NotFoundError extends RegistryError {
  constructor(id: string) {
    super(404, `VM "${id}" is not registered`);
  }
}

export class ConflictError extends RegistryError {
  constructor(id: string) {
    super(409, `VM "${id}" is already registered; use PUT /registry/vms/${id} to replace it or PATCH to change it`);
  }
}

export class ForbiddenError extends RegistryError {
  constructor(id: string, token: string) {
    super(403, `token "${token}" may only change VMs it registered, and VM "${id}" is not one of them`);
  }
}

export class PreconditionFailedError extends RegistryError {
  constructor(id: string, expected: number, actual: number) {
    super(412, `VM "${id}" is at revision ${actual}, not ${expected} as If-Match required`);
  }
}

/** The store cannot answer right now (database down); the request may be retried. */
export class UnavailableError extends RegistryError {
  constructor(message: string) {
    super(503, message);
  }
}

/** The revision a watcher asked to resume from is no longer (or not yet) in the event log. */
export class GoneError extends RegistryError {
  constructor(message: string) {
    super(410, message);
  }
}
