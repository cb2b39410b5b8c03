/**
 * @packageDocumentation
 *
 * The red-team harness: adversarial agents that try to elicit what a target
 * agent holds through plausible multi-turn dialog, over the real agent
 * protocol, and a leak detector built on the guard's matcher (canaries in
 * every variant the guard knows, plus its secret and PII detectors). Reports
 * name what leaked by label and category, never the value. Also the
 * dialog-dataset audit over JSONL conversation logs.
 *
 * - Scenarios: JSON data (`scenario.ts`; the library is `scenarios/`).
 * - Runner: `runScenarios(scenarios, {ask, detector})`, where `ask` sends one
 *   message to the target and resolves to its reply.
 * - Optional LLM attacker: any OpenAI-compatible chat-completions endpoint.
 * - Report: per scenario and family, `--baseline` regressions.
 *
 * @example
 *
 * ```ts
 * import { connectClient } from './src/client/index.ts'
 * import { buildReport, createLeakDetector, libraryDir, loadScenarios, runScenarios } from './src/redteam/index.ts'
 *
 * const client = await connectClient({ home: '/tmp/attacker' })      // a node the target trusts
 * const scenarios = await loadScenarios(libraryDir())
 * const detector = createLeakDetector([{ label: 'visa', category: 'finance/card', value: '4111 1111 1111 1111' }])
 * const ask = async (text: string) => String((await client.send({ to: '12D3KooW…', service: 'assistant', body: text })).body)
 * const results = await runScenarios(scenarios, { ask, detector })
 * console.log(buildReport({ target: '12D3KooW…', service: 'assistant', startedAt: new Date(), attacker: 'templates', results }).totals)
 * ```
 */

export * from './constants.ts'
export * from './errors.ts'
export * from './scenario.ts'
export * from './detect.ts'
export * from './runner.ts'
export * from './report.ts'
export * from './llm.ts'
export * from './audit-dialogs.ts'
