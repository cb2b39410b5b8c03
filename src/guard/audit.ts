/**
 * The audit record of a guard decision: what the audit log stores for every
 * block, redaction and warning. It names labels and categories and holds the
 * SHA-256 of the body, never the body or a value.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import type { GuardDecision } from './types.ts'

/** One audit record. */
export interface GuardAuditRecord {
  action: GuardDecision['action']
  peer: string
  service?: string
  labels: string[]
  categories: string[]
  /** Hex SHA-256 of the UTF-8 body as the agent gave it. */
  bodySha256: string
}

/** The audit record of `decision` for a body sent (or not) to `peer`/`service`. */
export function auditRecord (decision: GuardDecision, target: { peer: string, service?: string, body: string }): GuardAuditRecord {
  const blocked = decision.findings.filter(f => f.allowed !== true)
  const rec: GuardAuditRecord = {
    action: decision.action,
    peer: target.peer,
    labels: [...new Set(blocked.flatMap(f => f.label === undefined ? [] : [f.label]))],
    categories: [...new Set(blocked.map(f => f.category))],
    bodySha256: createHash('sha256').update(target.body, 'utf8').digest('hex')
  }
  if (target.service !== undefined) rec.service = target.service
  return rec
}
