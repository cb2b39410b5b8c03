/**
 * The serving side of `/agentnet/mls/2.0.0`: every frame on an inbound stream
 * is a request, opened by the verification core, handled by `Inbound`, and
 * answered on the same stream (unsigned, see `wire.ts`); the requests of one stream are served
 * concurrently (`channels.ts`).
 *
 * @module
 */

import { errorCodeOf } from '../errors/index.ts'
import { Channel, MAX_IN_FLIGHT } from './channels.ts'
import { GroupsError, InvalidArgumentError, RateLimitedError } from './errors.ts'
import { encodeReply, openFrame } from './wire.ts'
import type { GroupsService } from './groups.ts'
import type { GroupFrame } from './wire.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/** Serve one inbound stream of `remote`. */
export function serveStream (svc: GroupsService, stream: Stream, remote: PeerId): void {
  const channel: Channel = new Channel(stream, remote.toString(), (data) => {
    if (channel.inFlight >= MAX_IN_FLIGHT) {
      channel.abort(new RateLimitedError('too many unanswered frames on one stream'))
      return
    }
    channel.inFlight++
    void answer(svc, data, remote)
      .then(async reply => channel.write(reply))
      .catch(() => {})
      .finally(() => { channel.settled() })
  }, () => {})
}

/** Open one request frame, handle it, and encode the reply (an error reply for anything refused). */
export async function answer (svc: GroupsService, data: Uint8Array, remote: PeerId): Promise<Uint8Array> {
  const signal = svc.signal(svc.options.requestTimeoutMs)
  let reply: Partial<GroupFrame> & { groupId: Uint8Array }
  let id = ''
  try {
    const take = svc.inbound.frames.take(remote.toString(), svc.now())
    if (!take.allowed) throw new RateLimitedError('too many frames', { repeat: !take.firstRefusal })
    const opened = openFrame(data, { local: svc.self, remote, replayCache: svc.replayCache, now: svc.now(), windowMs: svc.options.replayWindowMs })
    id = opened.id
    svc.framesIn[opened.type] = (svc.framesIn[opened.type] ?? 0) + 1
    if (opened.kind !== 'request') throw new InvalidArgumentError('expected a request')
    reply = await svc.inbound.handle(opened.type, remote.toString(), opened.frame, signal)
  } catch (err) {
    const code = errorCodeOf(err) ?? 'InternalError'
    const meta: Record<string, unknown> = { error: { code, message: (err as Error).message } }
    if (err instanceof GroupsError && err.meta !== undefined) Object.assign(meta, err.meta)
    reply = { groupId: new Uint8Array([0]), meta }
    if (!(err instanceof GroupsError && err.meta?.repeat === true)) svc.inbound.rejected(remote.toString(), code, (err as Error).message, '', undefined, err)
  }
  return encodeReply(id, reply)
}
