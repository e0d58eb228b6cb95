/**
 * A byte pipe to a xenstore daemon. The client owns framing; a transport only moves bytes and
 * reports loss. Callbacks are plain functions (no EventEmitter) to keep the per-request path short.
 */
export interface TransportSink {
  /** Bytes from the daemon; the buffer may be reused after the call returns. */
  onData(chunk: Buffer): void;
  /** The connection is gone (peer closed, I/O error). Called at most once. */
  onClose(err?: Error): void;
}

export interface Transport {
  /** Queues one complete frame; the transport must not split frames across other writes. */
  write(frame: Buffer): void;
  /** Closes the connection; idempotent. onClose is not called for a close() we asked for. */
  close(): void;
  /** Human-readable endpoint, for logs. */
  readonly describe: string;
}

/** Opens a new connection; called again on every reconnect. */
export type TransportFactory = (sink: TransportSink) => Promise<Transport>;
