/** `agentnet group …`: MLS groups, thin clients of the running node */

import { connectClient } from '../../client/index.ts'
import { homeOf, print, untilInterrupted, withClient } from '../common.ts'
import type { GroupSummary } from '../../client/index.ts'
import type { GlobalOptions } from '../common.ts'

export async function groupCreate (name: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.groupCreate(name))
  print(opts.json, result, () => `created group ${result.groupId} (${name}); add members with "agentnet group add ${result.groupId} <peer>"`)
}

export async function groupAdd (groupId: string, peer: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.groupAdd(groupId, peer))
  print(opts.json, result, () => `added; the group is at epoch ${result.epoch}`)
}

export async function groupRemove (groupId: string, peer: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.groupRemove(groupId, peer))
  print(opts.json, result, () => `removed; the group is at epoch ${result.epoch}`)
}

export async function groupSend (groupId: string, text: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.groupSend({ groupId, body: text }))
  print(opts.json, result, () => `sent at epoch ${result.epoch}: delivered to ${result.delivered}${result.queued > 0 ? `, ${result.queued} queued for offline members` : ''}`)
}

export async function groupList (opts: GlobalOptions): Promise<void> {
  const groups: GroupSummary[] = await withClient(opts, async client => client.groupList())
  print(opts.json, groups, () => groups.length === 0 ? 'no groups' : groups.map(g => `${g.groupId}  ${g.name}  epoch ${g.epoch}  committer ${g.committer}\n${g.members.map(m => `  ${m}`).join('\n')}`).join('\n'))
}

export async function groupLeave (groupId: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.groupLeave(groupId))
  print(opts.json, result, () => `left ${groupId}`)
}

/** Print `group.received` notifications as NDJSON until interrupted */
export async function groupListen (groupId: string, opts: GlobalOptions): Promise<void> {
  const client = await connectClient({ home: homeOf(opts) })
  client.on('notification', (method: string, params: unknown) => {
    if (method === 'group.received') process.stdout.write(JSON.stringify(params) + '\n')
  })
  await client.request('group.subscribe', { groupId })
  process.stderr.write(`listening on group ${groupId}\n`)
  await untilInterrupted(client)
}
