import { createConnection } from 'node:net'
import type { Socket } from 'node:net'

/**
 * A bare NDJSON socket client, the way a shell or Python agent would talk to
 * the node: no SDK, just lines.
 */
export class RawSocket {
  readonly socket: Socket
  private buffer = ''
  private readonly lines: string[] = []
  private waiters: Array<() => void> = []
  closed = false

  private constructor (socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('utf8')
      let nl: number
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        this.lines.push(this.buffer.slice(0, nl))
        this.buffer = this.buffer.slice(nl + 1)
      }
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    socket.on('error', () => {})
  }

  static async connect (path: string): Promise<RawSocket> {
    const socket = createConnection(path)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawSocket(socket)
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  write (data: string | Uint8Array): void {
    this.socket.write(data)
  }

  send (message: unknown): void {
    this.socket.write(JSON.stringify(message) + '\n')
  }

  /** Wait for the next line that satisfies `match` (all lines are consumed in order) */
  async next (match: (msg: any) => boolean = () => true, timeoutMs = 10_000): Promise<any> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      while (this.lines.length > 0) {
        const msg = JSON.parse(this.lines.shift() as string)
        if (match(msg)) return msg
      }
      await this.moreLines(deadline)
    }
  }

  /**
   * Wait for a line that satisfies `match` and take only that one: the lines
   * before it stay for other waiters. For calls that run concurrently on one
   * socket ({@link next} would drop another call's answer).
   */
  async take (match: (msg: any) => boolean, timeoutMs = 10_000): Promise<any> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const at = this.lines.findIndex(line => match(JSON.parse(line)))
      if (at >= 0) return JSON.parse(this.lines.splice(at, 1)[0] as string)
      await this.moreLines(deadline)
    }
  }

  /** Until a line arrives or the socket closes; throws once closed or past `deadline` */
  private async moreLines (deadline: number): Promise<void> {
    if (this.closed) throw new Error('socket closed')
    const left = deadline - Date.now()
    if (left <= 0) throw new Error('timed out waiting for a line')
    await new Promise<void>(resolve => {
      const t = setTimeout(resolve, left)
      this.waiters.push(() => { clearTimeout(t); resolve() })
    })
  }

  /** Send a request and wait for the response with the same id */
  async call (method: string, params: unknown, id: string | number = Math.random().toString(36).slice(2)): Promise<any> {
    this.send({ jsonrpc: '2.0', id, method, params })
    return this.next(m => m.id === id)
  }

  async waitClosed (timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close')
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, 100)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  close (): void {
    this.socket.destroy()
  }
}
