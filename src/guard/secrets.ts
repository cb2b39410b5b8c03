/**
 * Secrets through secretlint's recommended preset (`@secretlint/core`
 * `lintSource` with `@secretlint/secretlint-rule-preset-recommend`), run
 * programmatically on the message text.
 *
 * `lintSource` costs ~0.15–0.35 ms per 1 KiB message here, several times the
 * whole guard budget, so it runs only on messages that could hold something
 * a rule of the preset (13.1) can match ({@link mightHoldSecret}). Every
 * rule needs one of:
 * - a run of ≥ 16 characters of `[A-Za-z0-9_=+-]` holding a letter: every
 *   prefixed or bare token shape (AWS `AKIA…` is 20; GitHub, GitLab, Stripe,
 *   Slack, OpenAI, Anthropic, npm, Hugging Face, Groq, Linear, Notion,
 *   Shopify, Databricks, Docker, Figma, Cloudflare, Vercel, Vault tokens are
 *   longer runs); `.` and `/` split runs on purpose, so ordinary URLs and
 *   paths do not wake secretlint;
 * - a URL with credentials `://user:pass@` (basic auth, database URLs, the
 *   GitHub `x-oauth-basic` form);
 * - a marker word: `private key` / `private_key` (PEM, GCP service-account
 *   JSON), `_authToken` (npm), `aws`, `secret`, `access` (AWS secret key and
 *   account ID), or a short or slash-bearing prefix (`xox`, `ghs_`, `SG.`,
 *   `tskey-`, `glc_`, `ops_`, `hooks.slack.com`).
 * A message with none of these cannot trigger a rule, so the prefilter loses
 * no detection; `test/unit/guard/detectors.test.ts` holds one positive
 * fixture per kind.
 *
 * @module
 */

import { lintSource } from '@secretlint/core'
import { secretLintProfiler } from '@secretlint/profiler'
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend'
import { scanRuns } from './decode.ts'
import type { DetectorHit } from './detectors.ts'

// secretlint's profiler is on by default: every lintSource() adds performance marks and
// measures to Node's global timeline, which nobody clears. At 50 messages/s that grew the
// heap ~50 KB per message (a million entries, ~100 MiB/min of RSS in the soak bench).
secretLintProfiler.setEnabled(false)

const MARKERS = /private.key|_authtoken|aws|secret|access|xox|ghs_|sg\.|tskey-|glc_|ops_|hooks\.slack\.com|:\/\/[^\s/:@]*:[^\s/@]*@/i
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
export function mightHoldSecret (text: string, secretRun = scanRuns(text, Number.MAX_SAFE_INTEGER).secretRun): boolean {
  return secretRun || MARKERS.test(text)
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

/**
 * Secretlint's findings in `text` (offsets only; secretlint's own messages,
 * which quote masked values, are dropped). `secretRun`: the prefilter's token
 * test when the caller already scanned the text ({@link scanRuns}).
 */
export async function scanSecrets (text: string, secretRun?: boolean): Promise<DetectorHit[]> {
  if (!mightHoldSecret(text, secretRun)) return []
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
