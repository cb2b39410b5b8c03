/**
 * Secrets through secretlint's recommended preset (`@secretlint/core`
 * `lintSource` with `@secretlint/secretlint-rule-preset-recommend`), run
 * programmatically on the message text.
 *
 * `lintSource` costs ~0.35 ms per 1 KiB message here, seven times the whole
 * guard budget, so it runs only on messages that could hold something any
 * rule of the preset can match ({@link mightHoldSecret}). Every rule of the
 * preset (13.1) needs one of: a run of ≥ 16 token characters holding a letter
 * (every API-key and token shape has a letter prefix or body: AWS `AKIA…` is
 * 20, the shortest prefixed tokens are longer; a dashed card number is not
 * one), `://` (basic auth, database URLs, webhooks), `PRIVATE KEY`,
 * `_authToken`, an `aws` key name (the AWS account-ID rule), or a short
 * prefixed form (`xox?-`, `ghs_`, `SG.`, `tskey-`). Messages with none of
 * these cannot trigger a rule, so the prefilter loses no detection.
 *
 * @module
 */

import { lintSource } from '@secretlint/core'
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend'
import type { DetectorHit } from './detectors.ts'

const MARKERS = ['://', 'private key', '_authtoken', 'aws', 'xox', 'ghs_', 'sg.', 'tskey-']
const RULE_PREFIX = '@secretlint/secretlint-rule-'
// the AWS rule scans for access key IDs only when asked; an access key ID names a credential and
// is half of it, so it is reported (`secret/aws-access-key`)
const config = {
  rules: [{
    id: `${RULE_PREFIX}preset-recommend`,
    rule: recommended,
    rules: [{ id: `${RULE_PREFIX}aws`, options: { enableIDScanRule: true } }]
  }]
}

/** Whether any rule of the recommended preset could match `text` (see the module doc). */
export function mightHoldSecret (text: string): boolean {
  // a hand loop: a regex like /[…]{16,}/ retries at every character of every shorter word
  let run = 0
  let letters = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90)
    if (letter || (c >= 48 && c <= 57) || c === 95 || c === 43 || c === 47 || c === 61 || c === 46 || c === 45) {
      letters ||= letter
      if (++run >= 16 && letters) return true
    } else {
      run = 0
      letters = false
    }
  }
  const lower = text.toLowerCase()
  for (const m of MARKERS) if (lower.includes(m)) return true
  return false
}

/** The finding category of a secretlint message: `secret/<kind>`. */
export function categoryOf (ruleId: string, messageId: string | undefined): string {
  const rule = ruleId.startsWith(RULE_PREFIX) ? ruleId.slice(RULE_PREFIX.length) : ruleId
  if (rule === 'aws') {
    if (messageId === 'AWSAccessKeyID') return 'secret/aws-access-key'
    if (messageId === 'AWSSecretAccessKey') return 'secret/aws-secret-key'
    if (messageId === 'AWSAccountID') return 'secret/aws-account-id'
  }
  if (rule === 'privatekey') return 'secret/private-key'
  if (rule === 'basicauth') return 'secret/basic-auth'
  if (rule === 'database-connection-string') return 'secret/database-url'
  return `secret/${rule.replace(/[^a-z0-9-]/gi, '-').toLowerCase()}`
}

/** Secretlint's findings in `text` (offsets only; secretlint's own messages, which quote masked values, are dropped). */
export async function scanSecrets (text: string): Promise<DetectorHit[]> {
  if (!mightHoldSecret(text)) return []
  const result = await lintSource({
    source: { content: text, filePath: '/agentnet-message.txt', contentType: 'text' },
    options: { config, maskSecrets: true, noPhysicFilePath: true }
  })
  const out: DetectorHit[] = []
  for (const m of result.messages) {
    if (m.range === undefined) continue
    const [start, end] = m.range
    if (end <= start) continue
    out.push({ detector: 'secretlint', category: categoryOf(m.ruleId, m.messageId), start, end })
  }
  return out
}
