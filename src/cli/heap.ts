/**
 * Keeps V8's young generation small while a node starts.
 *
 * Loading the node's modules allocates tens of MiB of objects that live for
 * ever (compiled functions, module namespaces, tables). V8 reads a young
 * generation whose objects survive as a reason to grow it, and doubles it at
 * each such scavenge, up to its maximum (two 16 MiB semi-spaces): an idle node
 * then keeps 32 MiB of young generation it never uses, and whether start-up
 * reached 16 or 32 MiB depended on GC timing, so the idle RSS varied by
 * ~16 MiB from start to start. V8 gives the space back only on a
 * memory-reducing GC, which an idle node never runs.
 *
 * During start-up the growth factor is 1 (no growth); once the node runs and
 * has loaded what it loads soon after (secretlint, `AgentNode.warmedUp`) it
 * is V8's default again, so traffic grows the young generation as before.
 * `--semi-space-growth-factor` is read by V8 each time it considers growing,
 * so changing it at run time takes effect (`test/bench/startup.bench.ts`
 * shows the idle RSS). A flag given on the command line
 * (`node --semi-space-growth-factor=…`) wins: it is left alone.
 *
 * @module
 */

import { setFlagsFromString } from 'node:v8'

/** V8's default `--semi-space-growth-factor` */
export const V8_SEMI_SPACE_GROWTH_FACTOR = 2

const FLAG = /^--semi[-_]space[-_]growth[-_]factor\b/

/**
 * Stop the young generation from growing until the returned function is
 * called (once start-up is over); a no-op when the flag was given to Node.
 */
export function holdYoungGeneration (): () => void {
  if (process.execArgv.some(a => FLAG.test(a)) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).some(a => FLAG.test(a))) {
    return () => {}
  }
  setFlagsFromString('--semi-space-growth-factor=1')
  let released = false
  return () => {
    if (released) return
    released = true
    setFlagsFromString(`--semi-space-growth-factor=${V8_SEMI_SPACE_GROWTH_FACTOR}`)
  }
}
