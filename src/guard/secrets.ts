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
 * secretlint and its preset (a 230 KB module of rules) are imported on the
 * first message that passes the prefilter, not when the node starts: most
 * nodes run for a long while, or for ever, without such a message, and the
 * import costs start-up time (test/bench/startup.bench.ts). A node warms it
 * in the background once it runs ({@link warmSecretScanner}), so that the
 * first such message does not wait for the import.
 *
 * @module
 */

import { scanRuns } from './decode.ts'
import type { DetectorHit } from './detectors.ts'

const MARKERS = /private.key|_authtoken|aws|secret|access|xox|ghs_|sg\.|tskey-|glc_|ops_|hooks\.slack\.com|:\/\/[^\s/:@]*:[^\s/@]*@/i
const RULE_PREFIX = '@secretlint/secretlint-rule-'

type LintSource = typeof import('@secretlint/core').lintSource

interface Linter {
  lintSource: LintSource
  config: Parameters<LintSource>[0]['options']['config']
}

let linter: Promise<Linter> | undefined

/** secretlint with the recommended preset, imported once, on first use */
async function loadLinter (): Promise<Linter> {
  linter ??= Promise.all([import('@secretlint/core'), import('@secretlint/secretlint-rule-preset-recommend'), import('@secretlint/profiler')]).then(([core, preset, profiler]) => {
    // secretlint profiles every run by default: a `performance.mark` per rule and per text, kept in Node's
    // performance timeline and in the profiler's own arrays for the life of the process (a leak in a
    // long-running node, and a quarter of a busy node's screening time); nothing here reads the profile
    profiler.secretLintProfiler.setEnabled(false)
    return {
      lintSource: core.lintSource,
      // the AWS rule scans for access key IDs only when asked; an access key ID names a credential and
      // is half of it, so it is reported (`secret/aws-access-key`)
      config: {
        rules: [{
          id: `${RULE_PREFIX}preset-recommend`,
          rule: preset.creator,
          rules: [{ id: `${RULE_PREFIX}aws`, options: { enableIDScanRule: true } }]
        }]
      }
    }
  }, (err: unknown) => {
    // a failed import (e.g. EMFILE) is not remembered: the next message tries again
    linter = undefined
    throw err
  })
  return await linter
}

/**
 * Import secretlint now unless it is loaded already: for a node that has
 * started and wants its first message not to wait. Never rejects: a failure
 * is left for the first scan to report.
 */
export async function warmSecretScanner (): Promise<void> {
  await loadLinter().then(() => {}, () => {})
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
  const { lintSource, config } = await loadLinter()
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
