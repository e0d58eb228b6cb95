/** What the viewer knows about its connection, as the renderer shows it. */
export type ConnStatus =
  | { state: 'connecting'; where: string }
  | { state: 'live'; where: string }
  /** Lost (or never reached); retryAtMs is when the next attempt happens, null if it will not. */
  | { state: 'down'; where: string; reason: string; retryAtMs: number | null };
