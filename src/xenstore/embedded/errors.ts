import { XenstoreError } from '../errors.js';

/** The embedded store raises the same typed error as the socket client (`.errno` = 'ENOENT'…). */
export const xsErr = (errno: string, what: string, clientSide = false) => new XenstoreError(errno, 'embedded', what, clientSide);
