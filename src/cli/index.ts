/**
 * @packageDocumentation
 *
 * The `agentnet` command line (see `main.ts`): `main(argv)` runs it and
 * resolves to the exit code.
 */

export { main, buildProgram, VERSION, CliError, SilentExit } from './main.ts'
