/**
 * Commands of issue 15, registered on the program by
 * {@link registerPostureCommands}: `doctor` (posture review, baseline),
 * `card export` / `card verify` (A2A-style JWS agent cards). Their modules
 * (jose, canonicalize, the posture checks) load only when one of these
 * commands runs, so other commands and `start` do not pay for them.
 */

import { readFile, writeFile } from 'node:fs/promises'
import { connectClient, NodeNotRunningError } from '../client/index.ts'
import { CliError, homeOf, print, SilentExit, withCommon } from './common.ts'
import type { GlobalOptions } from './common.ts'
import type { Profile } from '../config/index.ts'
import type { Command } from 'commander'

interface ConfigOptions {
  config?: string
  profile: Profile
}

/** What the program module hands over (it owns commander and the option parsers) */
export interface PostureCommandDeps {
  Option: typeof import('commander').Option
  parseDuration: (value: string) => number
}

async function configFor (opts: ConfigOptions) {
  const { loadConfig, profilePath } = await import('../config/index.ts')
  return loadConfig({ defaultsFile: profilePath(opts.profile), file: opts.config })
}

async function loadIdentity (home: string) {
  return (await import('../identity/index.ts')).loadIdentity(home)
}

export function registerPostureCommands (program: Command, deps: PostureCommandDeps): void {
  const { Option, parseDuration } = deps
  const withConfig = (command: Command): Command => command
    .option('--config <file>', 'the JSON config the node runs with (as for start)')
    .addOption(new Option('--profile <name>', 'set of defaults the node runs with').choices(['default', 'bootstrap']).default('default'))

  withCommon(withConfig(program.command('doctor').description('review this node\'s security posture and drift from the approved baseline; exit 1 on any high-severity finding')))
    .option('--record-baseline', 'approve the current posture: store it signed by the node key')
    .option('--offline', 'do not ask the running node (home and config only)')
    .option('--verbose', 'also print info findings')
    .action(async (opts: GlobalOptions & ConfigOptions & { recordBaseline?: boolean, offline?: boolean, verbose?: boolean }) => {
      const { formatReport, recordBaseline, runDoctor } = await import('../posture/index.ts')
      const home = homeOf(opts)
      const config = await configFor(opts)
      const configSource = opts.config ?? `${opts.profile} profile defaults`
      if (opts.recordBaseline === true) {
        const { privateKey } = await loadIdentity(home)
        const recorded = await recordBaseline({ home, config, configSource, privateKey })
        print(opts.json, recorded, () => `baseline recorded in ${recorded.file}: ${recorded.settings} settings, ${recorded.trustedPeers} trusted peers, signed by ${recorded.peerId}`)
        return
      }
      const report = await runDoctor({ home, config, configSource, live: opts.offline !== true })
      print(opts.json, report, () => formatReport(report, opts.verbose === true))
      if (report.high) throw new SilentExit(1)
    })

  const card = program.command('card').description('A2A-style agent cards signed with JWS (EdDSA, did:key)')
  withCommon(withConfig(card.command('export').description('print (or write) this node\'s signed agent card')))
    .option('--out <file>', 'write the card to this file instead of stdout')
    .action(async (opts: GlobalOptions & ConfigOptions & { out?: string }) => {
      const home = homeOf(opts)
      const config = await configFor(opts)
      const { privateKey } = await loadIdentity(home)
      const { installedVersions } = await import('../posture/versions.ts')
      const { createAgentCard } = await import('../did/agent-card.ts')
      const versions = await installedVersions()
      const signed = await createAgentCard({ name: config.card.name, services: config.card.services, metadata: config.card.metadata, version: versions.agentnet ?? '0.0.0' }, privateKey)
      const text = JSON.stringify(signed, null, 2) + '\n'
      if (opts.out !== undefined) {
        await writeFile(opts.out, text, { mode: 0o644 })
        print(opts.json, { file: opts.out, peerId: signed.agentnet.peerId, did: signed.agentnet.did }, () => `agent card of ${signed.agentnet.peerId} written to ${opts.out ?? ''}`)
      } else {
        process.stdout.write(opts.json === true ? JSON.stringify(signed) + '\n' : text)
      }
    })
  withCommon(card.command('verify').description('check a card\'s JWS signature against the peer ID it claims').argument('<file>', 'agent card JSON'))
    .action(async (file: string, opts: GlobalOptions) => {
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 'CardUnreadable')
      }
      const { verifyAgentCard } = await import('../did/agent-card.ts')
      const verified = await verifyAgentCard(text)
      print(opts.json, { ok: true, ...verified }, () => `valid card of ${verified.peerId} (${verified.did}), signed by ${verified.kid}`)
    })

  const identity = program.command('identity').description('key rotation with succession')
  withCommon(identity.command('rotate').description('replace this node\'s key; trusted peers follow to the new peer ID (a running node restarts on the new key in place; a stopped one tells them at its next start)'))
    .option('--grace <duration>', 'how long the old ID keeps answering with a pointer to the new one: 90s, 30m, 12h, 7d (default 7d, at most 90d)', parseDuration)
    .action(async (opts: GlobalOptions & { grace?: number }) => {
      const home = homeOf(opts)
      await loadIdentity(home)
      const { didKeyFromPeerId } = await import('../did/did-key.ts')
      let client
      try {
        client = await connectClient({ home })
      } catch (err) {
        if (!(err instanceof NodeNotRunningError)) throw err
      }
      if (client !== undefined) {
        // the node runs: it rotates live (src/daemon/rotate.ts) and tells its trusted peers at once
        try {
          const r = await client.identityRotate(opts.grace === undefined ? {} : { graceMs: opts.grace })
          print(opts.json, { ...r, did: didKeyFromPeerId(r.new), live: true }, () =>
            `rotated ${r.old}\n     to ${r.new}\nthe node runs on the new key and is telling its trusted peers; the old ID answers with a pointer until ${r.graceEndsAt}` +
            (r.handedOver.length > 0 ? `\ncommitter role handed over in ${r.handedOver.length} group(s)` : ''))
        } finally {
          client.close()
        }
        return
      }
      const { rotateHome } = await import('../rotation/index.ts')
      const s = await rotateHome(home, { graceMs: opts.grace })
      const graceEndsAt = new Date(s.ts + s.graceMs).toISOString()
      print(opts.json, { old: s.old, new: s.new, did: didKeyFromPeerId(s.new), ts: s.ts, graceMs: s.graceMs, graceEndsAt, record: s.record, live: false }, () =>
        `rotated ${s.old}\n     to ${s.new}\nthe next start tells the trusted peers; the old ID answers with a pointer until ${graceEndsAt}`)
    })
  withCommon(identity.command('status').description('the key rotation in progress, if any'))
    .action(async (opts: GlobalOptions) => {
      const home = homeOf(opts)
      const { readRotation } = await import('../identity/succession.ts')
      const s = await readRotation(home)
      const out = s === undefined ? { rotating: false } : { rotating: true, state: s.state, old: s.old, new: s.new, ts: s.ts, graceMs: s.graceMs, graceEndsAt: new Date(s.ts + s.graceMs).toISOString(), notified: s.notified }
      print(opts.json, out, () => s === undefined ? 'no key rotation in progress' : `rotating ${s.old} → ${s.new} (${s.state}) until ${out.graceEndsAt ?? ''}; ${s.notified.length} peer(s) took note`)
    })
}
