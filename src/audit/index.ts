/**
 * @packageDocumentation
 *
 * The node's audit log: an append-only, hash-chained record of security
 * events (`trust.approved`, `token.issued`, `message.rejected`, …) in the home
 * folder, `audit.log` (mode 0600), with its head file `audit.head` (0600).
 *
 * ## Format
 *
 * One record per line, UTF-8, each line ending in `\n`:
 *
 * ```
 * {"seq":0,"time":"2025-01-01T00:00:00.000Z","type":"trust.approved","data":{"peer":"12D3KooW…"},"prev":"000…000","hash":"9f2c…"}
 * ```
 *
 * - `seq`: 0 for the first record, then +1 per record
 * - `time`: `Date.prototype.toISOString()` when appended (UTC, milliseconds)
 * - `type`: dot-separated words of `[A-Za-z0-9_-]`, at most 64 characters
 * - `data`: a JSON object, at most `maxDataBytes` (default 8 KiB) serialised,
 *   nested at most 32 deep
 * - `prev`: the previous record's `hash`; 64 zeros (`"0"` × 64) for seq 0
 * - `hash`: lowercase hex SHA-256 of the record's canonical bytes
 *
 * The canonical bytes of a record are the UTF-8 encoding of
 *
 * ```
 * {"seq":<seq>,"time":<time>,"type":<type>,"data":<data>,"prev":"<prev>"}
 * ```
 *
 * with the fields in exactly this order, no whitespace, `seq` as a decimal
 * integer, strings as `JSON.stringify` writes them, and `data` in canonical
 * JSON: object keys sorted by UTF-16 code units at every level, no
 * whitespace, numbers and strings as `JSON.stringify` writes them (the JSON
 * Canonicalization Scheme, RFC 8785). The line is the canonical bytes with
 * `,"hash":"<hash>"` inserted before the final `}`, then `\n`. So in
 * JavaScript:
 *
 * ```js
 * const canonical = `{"seq":${seq},"time":${JSON.stringify(time)},"type":${JSON.stringify(type)},"data":${jcs(data)},"prev":"${prev}"}`
 * const hash = sha256hex(utf8(canonical))
 * const line = canonical.slice(0, -1) + `,"hash":"${hash}"}\n`
 * ```
 *
 * A verifier re-derives the whole line from its parsed values and requires it
 * to be byte-identical, so any change to a line (even one that keeps the
 * parsed values, like `\u001f` → `\u001F`) is detected.
 *
 * The head file holds `{"seq":<seq>,"hash":"<hash>"}\n` of the last record
 * appended (`{"seq":-1,"hash":"000…000"}` for an empty log). It is replaced
 * atomically (temporary file, fsync, rename, directory fsync) after each
 * append, and a new line is written only once the head names the record
 * before it, so the head lags the log by at most the one record in flight.
 * It is created before the log, so a log without a head is always damage.
 *
 * ## Durability
 *
 * `append` builds the full line and writes it with a single `write()` on a
 * descriptor opened with `O_APPEND`, then `fdatasync`s the log (enough for an
 * append: the new size is metadata the data needs), then replaces the head
 * file. The promise resolves only after all three: an acknowledged record
 * survives a process crash or power loss. Appends are serialised in call
 * order (one line in flight at a time), so a crash can tear at most the last
 * line. The cost is a few fsyncs per record, fine for security events; a
 * caller with a flood of events (e.g. rejected messages) should aggregate
 * them.
 *
 * ## Crash repair and damage
 *
 * `openAuditLog` reads only the end of the log (backwards, in chunks):
 *
 * - bytes after the last `\n` are a torn write, never acknowledged: cut off;
 * - a last line that is not valid UTF-8 JSON is cut off too when it cannot
 *   have been acknowledged (the head does not go past the record before it);
 * - any other damage is never repaired and never fatal: open succeeds,
 *   lists it in `recovery.warnings`, and appends continue the chain, so
 *   `verifyAuditLog` goes on reporting the damage for good. When the head is
 *   ahead of the log (records removed from the end) or disagrees with the last
 *   record, the chain continues from the head, leaving the gap or mismatch in
 *   the log. A missing or unreadable head is left as it is (and no longer
 *   updated), so verify keeps reporting it.
 *
 * `verifyAuditLog` reads the log once, front to back, with bounded memory,
 * never writes, and works while a node appends. It detects a change to any
 * byte, a deleted record anywhere (at the end through the head), reordered
 * or repeated records, and names the first bad line. It reports a torn last
 * line separately (`torn`): it is the mark of a crash, not damage.
 *
 * What this protects against: accidental damage and edits by anyone who does
 * not rewrite the log and its head consistently. Someone who can write the
 * home folder can rewrite both; anchoring the head hash elsewhere (a peer, a
 * print-out of `verify`'s `last.hash`) extends the protection to that case.
 *
 * One writer per log: the node's home lock ensures it.
 *
 * @example
 *
 * ```ts
 * import { join } from 'node:path'
 * import { openAuditLog, verifyAuditLog, tailAuditLog } from './index.ts'
 *
 * const log = await openAuditLog({ path: join(home, 'audit.log') })
 * for (const warning of log.recovery.warnings) logger.warn(warning)
 * await log.append('trust.approved', { peer: peerId.toString(), reason: 'invite' })
 * await log.close()
 *
 * const report = await verifyAuditLog(join(home, 'audit.log'))
 * if (!report.ok) console.error(`line ${report.firstBad?.line}: ${report.firstBad?.reason}`)
 * console.log(await tailAuditLog(join(home, 'audit.log'), 20))
 * ```
 */

export { openAuditLog, DEFAULT_MAX_DATA_BYTES } from './log.ts'
export type { AuditLog, AuditLogInit, AuditRecovery } from './log.ts'
export { verifyAuditLog, tailAuditLog, MAX_TAIL_RECORDS } from './verify.ts'
export type { AuditVerifyOptions, AuditVerifyResult, AuditDamage } from './verify.ts'
export { headPathFor } from './head.ts'
export { canonicalJson, ZERO_HASH, MAX_RECORD_BYTES, MAX_DATA_BYTES_LIMIT, MAX_DATA_DEPTH, MAX_TYPE_LENGTH } from './record.ts'
export type { AuditRecord, AuditData, JsonValue } from './record.ts'
export {
  AuditError,
  AuditInvalidArgumentError,
  AuditDataTooLargeError,
  AuditLogClosedError,
  AuditLogNotFoundError,
  AuditIOError
} from './errors.ts'

/** File name of the audit log inside the home folder */
export const AUDIT_LOG_FILE = 'audit.log'
/** File name of the audit log's head inside the home folder */
export const AUDIT_HEAD_FILE = 'audit.head'
export { AuditSink } from './sink.ts'
