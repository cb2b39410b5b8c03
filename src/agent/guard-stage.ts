import { auditRecord } from '../guard/index.ts'
import type { AuditData, AuditSink } from '../audit/index.ts'
import type { Guard, Screening } from '../guard/index.ts'
import type { OutboundStage } from '../outbox/index.ts'

export interface GuardStageOptions {
  /** `guard.enabled`: when false the stage passes everything */
  enabled: boolean
  /** Petnames of a peer, so policies may name peers by petname */
  namesOf: (peerId: string) => Promise<string[]>
  audit: AuditSink
}

/**
 * The outbox's guard stage: one guard decision per piece of agent-authored
 * content, before anything is signed or encrypted. A block throws
 * `LeakBlocked` (nothing is sent); a redaction hands on the redacted text;
 * every block, redaction and warning is audited (labels, categories, SHA-256
 * of the body: never a value) before the content moves on.
 */
export function guardStage (guard: Guard, options: GuardStageOptions): OutboundStage {
  return {
    name: 'guard',
    run: async (content) => {
      if (!options.enabled) {
        return content
      }
      // content for everyone (an agent card) is judged by the `*` policy
      // a group message is judged by the policy for `group:<groupId>`, else `*`
      const peerNames = content.kind === 'group' ? [`group:${content.service ?? ''}`] : content.to == null ? ['*'] : [content.to, ...await options.namesOf(content.to)]
      const target = { peer: content.to ?? '*', service: content.service, body: content.text }
      const { body } = await guard.enforce({ peerNames, service: content.service, body: content.text, binary: content.latin1 === true }, {
        onDecision: async (decision) => {
          if (decision.action === 'pass') return
          // on disk before anything leaves (or is refused)
          await options.audit.recordNow(`guard.${decision.action}`, { kind: content.kind, ...auditRecord(decision, target) } as unknown as AuditData)
        }
      })
      return body === content.text ? content : { ...content, text: body }
    }
  }
}

/** Inbound screening of a body (text and JSON; binary bodies are not screened) */
export async function screenBody (guard: Guard, body: Uint8Array, contentType: string): Promise<Screening | undefined> {
  if (contentType === 'application/octet-stream') return undefined
  return guard.screenInbound(new TextDecoder().decode(body))
}
